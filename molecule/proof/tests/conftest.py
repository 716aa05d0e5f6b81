"""Helpers for the proof scenario: the containers, server-side jobs, and the real playbooks run from the control
node against this scenario's inventory (results into a temporary reports folder, never the project's)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import testinfra
import yaml

SERVER, DB, FILES = "mp-backup-01", "mp-dpi-db-01", "mp-files-01"
SERVER_ADDRESS = "10.89.66.10"
FINESS = "340999903"
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = PROJECT / "molecule" / "proof" / "inventory"
METRICS = "/var/lib/prometheus/node-exporter"


def secrets_of_the_lab() -> list[str]:
    """Every secret of the scenario's vault (none may appear in a result, a journal or a report)."""
    vault = yaml.safe_load((INVENTORY / "group_vars" / "all" / "vault.yml").read_text(encoding="utf-8"))
    return [v for mapping in vault.values() if isinstance(mapping, dict) for v in mapping.values()]


class Proof:
    def __init__(self, reports: Path) -> None:
        self.server = testinfra.get_host(f"podman://{SERVER}")
        self.db = testinfra.get_host(f"podman://{DB}")
        self.files = testinfra.get_host(f"podman://{FILES}")
        self.reports = reports
        self.runs = 0

    def job(self, dataset: str) -> int:
        self.server.run(f"systemctl reset-failed rempart-backup@{dataset}.service")
        self.server.run(f"systemctl start rempart-backup@{dataset}.service")
        out = self.server.run(f"systemctl show -p ExecMainStatus --value rempart-backup@{dataset}.service")
        return int(out.stdout.strip() or -1)

    def playbook(self, name: str | Path, *extra: str) -> subprocess.CompletedProcess[str]:
        """Run playbooks/<name> (or the playbook at a path) against this scenario's inventory."""
        env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_ROLES_PATH": str(PROJECT / "roles")}  # fmt: skip
        command = [str(PROJECT / ".venv" / "bin" / "ansible-playbook"), "-i", str(INVENTORY),
                   str(PROJECT / "playbooks" / name), "-e", f"rempart_reports_dir={self.reports}", *extra]  # fmt: skip
        result = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, check=False)
        self.runs += 1
        log = self.reports / f"{self.runs:02d}-{Path(name).name}.log"
        log.write_text(" ".join(command) + "\n" + result.stdout + result.stderr, encoding="utf-8")
        return result

    def results(self, kind: str) -> list[Path]:
        return sorted((self.reports / FINESS / kind).glob("*.json"))

    def last(self, kind: str) -> dict:
        return json.loads(self.results(kind)[-1].read_text(encoding="utf-8"))

    def metric(self, line_start: str) -> float:
        text = self.server.run(f"cat {METRICS}/rempart_drill.prom").stdout
        line = next(x for x in text.splitlines() if x.startswith(line_start + " "))
        return float(line.split()[-1])


@pytest.fixture(scope="session")
def proof(tmp_path_factory: pytest.TempPathFactory) -> Proof:
    return Proof(tmp_path_factory.mktemp("reports"))
