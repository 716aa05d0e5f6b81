"""What evidence.yml collects reaches the report from the real JSON its producers write: `rempart verify-offsite
--json` against the lab's offsite stand-in (strict moto, the lab bucket and writer identity), an OpenSCAP score
counted by tests/benchmarks/hardening_report.py, and the ransomware drill's offsite leg as the drill wrote it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from lab_stand_in import lab_bucket, stand_in  # noqa: F401 (fixtures)
from test_evidence import generate, requirement
from xccdf_sample import xccdf_result

from rempart.commands.cli import main

PROJECT = Path(__file__).resolve().parents[2]
FIXTURES = PROJECT / "tests" / "fixtures" / "proof"


def verify_offsite(monkeypatch: pytest.MonkeyPatch, bucket: dict[str, Any], record: Path, days: int) -> int:
    import boto3

    writer = bucket["identities"]["writer"]
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # the CLI's own process would resolve these afresh
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", writer["id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", writer["secret"])
    return main(["verify-offsite", "--bucket", bucket["bucket"], "--endpoint-url", bucket["endpoint"],
                 "--region", "eu-west-3", "--min-retention-days", str(days), "--json", str(record)])  # fmt: skip


def test_offsite_verification_reaches_the_report(monkeypatch, lab_bucket, inventory, results, now):  # noqa: F811
    record = results / "offsite" / "verify.json"
    record.unlink()  # the fixture's hand-written one: only the verifier's output counts here
    assert verify_offsite(monkeypatch, lab_bucket, record, 30) == 0
    written = json.loads(record.read_text())
    assert written["bucket"] == lab_bucket["bucket"] and written["compliant"] is True
    assert written["location"] == "eu-west-3"  # read from the bucket, not from the inventory
    html, document = generate(inventory, results, now)
    assert requirement(document, "BP100-EXT-03")["status"] == "conforme"
    assert requirement(document, "HDS-02")["status"] == "conforme"
    assert "situé en eu-west-3 selon le fournisseur" in requirement(document, "HDS-02")["evidence"]
    assert lab_bucket["bucket"] in html

    # the same bucket judged against a longer retention than it locks: the finding reaches the report
    assert verify_offsite(monkeypatch, lab_bucket, record, 400) == 1
    html, document = generate(inventory, results, now)
    assert requirement(document, "BP100-EXT-03")["status"] == "non conforme"
    assert "default retention 30 days &lt; required 400" in html


XCCDF_RESULT = xccdf_result(
    {
        "sshd_disable_root_login": "pass",
        "sudo_require_authentication": "pass",
        "package_aide_installed": "pass",
        "grub2_audit_argument": "fail",
        "partition_for_tmp": "notapplicable",
    }
)


def test_openscap_score_reaches_the_report(tmp_path, inventory, results, now):
    spec = importlib.util.spec_from_file_location(
        "hardening_report", PROJECT / "tests/benchmarks/hardening_report.py"
    )
    assert spec and spec.loader
    hardening_report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hardening_report)
    xml = tmp_path / "backup-01-enhanced.xml"
    xml.write_text(XCCDF_RESULT)
    counts = hardening_report.counts(xml)  # what the benchmark records per profile
    shutil.rmtree(results / "hardening")
    (results / "hardening").mkdir()
    (results / "hardening" / "backup-01.json").write_text(json.dumps({
        "host": "backup-01", "profile": "xccdf_org.ssgproject.content_profile_anssi_bp28_enhanced",
        "scanned_at": now.isoformat(), "content": "ssg-debian 0.1.76", **counts}))  # fmt: skip
    html, document = generate(inventory, results, now)
    assert counts["rate"] == 75.0
    bp028 = requirement(document, "BP028-01")
    assert bp028["evidence"].startswith(
        "backup-01 (niveau renforcé) : 75 % le 30/11/2026 à 13:00 (UTC+01:00)"
    )
    assert "seuil 85 %" in bp028["evidence"] and bp028["status"] == "non conforme"  # 75 % < 85 % (enhanced)
    assert "75 %" in html and "grub2_audit_argument" in html

    # one more failing rule recorded: the score follows
    (results / "hardening" / "backup-01.json").write_text(json.dumps({
        "host": "backup-01", "profile": "xccdf_org.ssgproject.content_profile_anssi_bp28_enhanced",
        "scanned_at": now.isoformat(), **counts, "pass": 2, "fail": 2}))  # fmt: skip
    html, document = generate(inventory, results, now)
    assert "50 %" in html and "75 %" not in html


def test_ransomware_offsite_leg_reaches_the_report(inventory, results, now):
    drills = sorted((FIXTURES / "ransomware").glob("*.json"))
    recorded = [p for p in drills if isinstance(json.loads(p.read_text()).get("offsite"), dict)]
    assert recorded, "no ransomware result with an offsite leg under tests/fixtures/proof/ransomware"
    shutil.rmtree(results / "ransomware")
    (results / "ransomware").mkdir()
    target = results / "ransomware" / recorded[-1].name
    shutil.copy(recorded[-1], target)
    leg = json.loads(target.read_text())["offsite"]
    html, document = generate(inventory, results, now)
    assert requirement(document, "TK-RANSOM")["status"] == "conforme"
    assert f"{leg['refused']}/{leg['attempts']} refusées" in requirement(document, "TK-RANSOM")["evidence"]
    assert f"{leg['attempts']} tentatives, {leg['refused']} refusées" in html
    assert f"<strong>0</strong> sur {leg['files_checked']}" in html

    content = json.loads(target.read_text())
    content["offsite"] |= {"rows_lost": 7, "status": "failed"}
    target.write_text(json.dumps(content))
    html, document = generate(inventory, results, now)
    assert requirement(document, "TK-RANSOM")["status"] == "non conforme"
    assert f"<strong>7</strong> sur {leg['rows_checked']}" in html


def test_installed_versions_reach_the_report_against_the_tested_set(inventory, results, now):
    from rempart.model.tested_set import read_tested

    tested = read_tested()
    (results / "packages").mkdir()
    (results / "packages" / "backup-01.json").write_text(json.dumps({
        "host": "backup-01", "collected_at": now.isoformat(),
        "packages": {"restic": tested["restic"].version, "nftables": "1.0.6-9", "vendor-agent": "3.1"}}))  # fmt: skip
    html, document = generate(inventory, results, now)
    [host] = document["software"]
    assert host["versions"] == {"restic": tested["restic"].version, "nftables": "1.0.6-9"}
    assert host["differences"] == [f"nftables: 1.0.6-9 (testé : {tested['nftables'].version})"]
    assert f"nftables: 1.0.6-9 (testé : {tested['nftables'].version})" in html

    # no record: the section says so, nothing is invented
    (results / "packages" / "backup-01.json").unlink()
    html, document = generate(inventory, results, now)
    assert document["software"] == [] and "Versions installées non relevées" in html
