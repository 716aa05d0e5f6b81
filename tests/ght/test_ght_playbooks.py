"""validate.yml and summary.yml on a GHT inventory (controller only: no host is contacted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ght_harness import GHT_LAB, edit_yaml

BIN = Path(sys.executable).parent
PROJECT = GHT_LAB.parents[1]
FINESS = {"ch_nord": "340999911", "ch_centre": "340999929", "ch_sud": "340999937"}


def run_playbook(folder: Path, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(folder), str(PROJECT / "playbooks" / playbook), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT,
        timeout=300,
    )


def test_validate_checks_every_establishment() -> None:
    result = run_playbook(GHT_LAB, "validate.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(f"{finess} (" in result.stdout for finess in FINESS.values())


def test_validate_names_the_establishment_missing_a_secret(ght: Path) -> None:
    edit_yaml(ght / "group_vars/ch_sud/vault.yml", lambda d: d["vault_rest_server_passwords"].pop("partages"))
    result = run_playbook(ght, "validate.yml")
    assert result.returncode != 0
    assert "ch_sud.vault_rest_server_passwords.partages: missing secret" in result.stdout


def test_validate_refuses_two_views_on_one_port(ght: Path) -> None:
    def same_port(document: dict) -> None:
        document["all"]["children"]["backup_servers"]["hosts"]["mg-backup-01-centre"][
            "rempart_backup_rest_port"
        ] = 8441

    edit_yaml(ght / "hosts.yml", same_port)
    result = run_playbook(ght, "validate.yml")
    assert result.returncode != 0 and "port 8441 on mg-backup-01 is also" in result.stdout


def test_summary_writes_each_establishment_with_its_own_hosts(tmp_path: Path) -> None:
    result = run_playbook(GHT_LAB, "summary.yml", "-e", f"rempart_reports_dir={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    for group, finess in FINESS.items():
        summary = json.loads((tmp_path / finess / "etablissement.json").read_text())
        assert summary["finess"] == finess
        assert summary["hosts"] and all(group.removeprefix("ch_") in host for host in summary["hosts"])
