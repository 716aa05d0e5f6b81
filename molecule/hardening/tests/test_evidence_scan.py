"""playbooks/evidence.yml scores the hardened hosts itself (BP028-01): each host's file tree is copied to the
control node and scanned offline by OpenSCAP >= 1.4 with ssg-debian 0.1.76 at the host's declared level
(`rempart hardening-scan`); the report judges the score against the catalogue's threshold for that level."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from rempart.catalogue import catalogue
from rempart.model.inventory import load_establishment_data
from rempart.model.validation import load_valid
from rempart.reports.evidence import build_evidence
from rempart.reports.measures import hardening_figures
from rempart.reports.results import load_results

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = PROJECT / "molecule" / "hardening" / "inventory"
LEVELS = {"hardening-backup-01": "enhanced", "hardening-client-01": "intermediary"}
SCANNER = PROJECT / ".lab" / "oscap-trixie"  # built once by the first scan (debootstrap trixie), then reused


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    reports = tmp_path_factory.mktemp("reports")
    python_bin = Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin"
    done = subprocess.run(
        [str(python_bin / "ansible-playbook"), "-i", str(INVENTORY), str(PROJECT / "playbooks" / "evidence.yml"),
         "--tags", "hardening_scan", "--skip-tags", "always",  # validate.yml needs secrets this inventory lacks
         "-e", "rempart_hardening_scan=true", "-e", f"rempart_reports_dir={reports}",
         "-e", f"rempart_hardening_scanner_dir={SCANNER}"],
        cwd=PROJECT, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return reports / "340999903"


@pytest.mark.parametrize("host", sorted(LEVELS))
def test_each_hardened_host_is_scored_at_its_level(scanned, host):
    record = json.loads((scanned / "hardening" / f"{host}.json").read_text())
    assert record["level"] == LEVELS[host]
    assert record["profile"].endswith(f"anssi_bp28_{LEVELS[host]}")
    assert record["content"].startswith("ssg-debian 0.1.7")
    assert record["pass"] + record["fail"] > 50, record  # Debian 12 rules evaluated, not "not applicable"
    assert (scanned / "hardening" / f"{host}.xml").exists()
    print(f"{host}: {record['pass']} pass, {record['fail']} fail, {record['notapplicable']} n/a")


def test_the_report_judges_the_scores_against_the_levels_thresholds(scanned):
    establishment = load_valid(load_establishment_data(INVENTORY / "group_vars/all/establishment.yml"))
    results = load_results(scanned)
    evidence = build_evidence(establishment, results, datetime.now().astimezone())
    bp028 = next(r for r in evidence.requirements if r.id == "BP028-01")
    requirement = catalogue().get("BP028-01")
    below = [
        s.host
        for s in results.hardening
        if hardening_figures(s, requirement)[0] < requirement.thresholds[s.level]
    ]
    assert bp028.status == ("non conforme" if below else "conforme"), bp028.evidence
    print(bp028.evidence)
