"""evidence.yml on the scenario's real results: the ledgers fetched from the backup server, the offsite bucket
checked by `rempart verify-offsite`, and the report's numbers are those of the drill and ransomware JSON files."""

from __future__ import annotations

import json

from conftest import DB, FILES, FINESS, SERVER, secrets_of_the_lab

from rempart.model.tested_set import compare_installed, read_tested


def test_evidence_report_from_the_recorded_results(proof):
    result = proof.playbook("evidence.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    folder = proof.reports / FINESS
    html = (folder / "rapport-care.html").read_text(encoding="utf-8")
    report = json.loads((folder / "rapport-care.json").read_text(encoding="utf-8"))
    assert (folder / "plan-sauvegarde.html").exists()
    # the canary drills' results (test_1_drill_canary.py) are among those fetched: no secret reached the report
    fetched = "".join(p.read_text(encoding="utf-8") for p in proof.results("drills"))
    assert not [s for s in secrets_of_the_lab() if s in html + json.dumps(report) + fetched]
    assert sorted(p.name for p in (folder / "ledger").glob("*.jsonl")) == [
        "dpi-postgresql.jsonl",
        "gam-mariadb.jsonl",
        "partages.jsonl",
    ]

    verification = json.loads((folder / "offsite" / "verify.json").read_text(encoding="utf-8"))
    assert verification["compliant"] is True, verification["findings"]
    requirements = {r["id"]: r for r in report["requirements"]}
    assert requirements["BP100-EXT-03"]["status"] == "conforme"
    assert verification["bucket"] in html

    # each dataset's measured restore time is that of its newest drill (test_2's, with the corrupted pack), extrapolated
    # to the full size for a sampled dataset; the RTO adds the declared steps of the scenario's establishment
    drills = [json.loads(p.read_text(encoding="utf-8")) for p in proof.results("drills")]
    newest = max(drills, key=lambda d: d["finished"])
    for entry in newest["datasets"]:
        dataset = next(d for d in report["datasets"] if d["name"] == entry["dataset"])
        assert dataset["rto_measured_hours"] == round(
            (entry.get("rto_estimated_s") or entry["duration_s"]) / 3600, 4
        )
        assert dataset["rto_steps"][0]["source"] == "mesuré"

    ransomware = proof.last("ransomware")
    assert requirements["TK-RANSOM"]["status"] == "conforme"
    assert f"{len(ransomware['attempts'])} tentatives" in requirements["TK-RANSOM"]["evidence"]
    leg = ransomware["offsite"]
    assert f"{leg['refused']}/{leg['attempts']} refusées" in requirements["TK-RANSOM"]["evidence"]
    assert f"<strong>0</strong> sur {leg['files_checked']}" in html
    assert requirements["BP100-OPS-13"]["status"] == "conforme"  # the red button test of test_3

    # every host's installed versions, read on the host and dated, against the tested set
    software = {h["host"]: h for h in report["software"]}
    assert sorted(software) == sorted([SERVER, DB, FILES])
    installed = proof.server.run("dpkg-query -W -f '${Version}' restic").stdout.strip()
    assert software[SERVER]["versions"]["restic"] == installed
    tested = read_tested()
    expected = [d.describe() for d in compare_installed(tested, {"restic": installed})]
    assert [d for d in software[SERVER]["differences"] if d.startswith("restic:")] == expected
    assert 'id="logiciels"' in html
