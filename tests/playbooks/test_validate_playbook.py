"""playbooks/validate.yml and site.yml refuse a bad inventory before touching any host."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rempart.vault.secrets import init_vault

BIN = Path(sys.executable).parent


@pytest.fixture
def inventory(tmp_path: Path, project: Path) -> Path:
    """A copy of the lab inventory whose hosts are unreachable (TEST-NET-1) and whose vault is complete."""
    folder = tmp_path / "inventory"
    shutil.copytree(project / "inventories/lab", folder, ignore=shutil.ignore_patterns("vault.yml"))
    hosts = (folder / "hosts.yml").read_text().replace("10.89.60.", "192.0.2.")
    (folder / "hosts.yml").write_text(hosts)
    init_vault(folder, tmp_path / "vault-password")
    return folder


def edit_establishment(folder: Path, change: Any) -> None:
    path = folder / "group_vars/all/establishment.yml"
    document = yaml.safe_load(path.read_text())
    change(document["establishment"])
    path.write_text(yaml.safe_dump(document, allow_unicode=True))


def run_playbook(project: Path, folder: Path, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_VAULT_PASSWORD_FILE": str(folder.parent / "vault-password"),
        "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(folder), str(project / "playbooks" / playbook), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
        timeout=300,
    )


def test_valid_inventory_passes(project, inventory):
    result = run_playbook(project, inventory, "validate.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "340999903" in result.stdout


def test_each_violation_is_printed_with_its_path(project, inventory):
    def break_it(establishment: dict[str, Any]) -> None:
        establishment["offsite"]["region"] = "us-east-1"
        establishment["datasets"][1]["host"] = "files-99"

    edit_establishment(inventory, break_it)
    result = run_playbook(project, inventory, "validate.yml")
    assert result.returncode != 0
    assert "establishment.offsite.region: 'us-east-1' is not an EEA region" in result.stdout
    assert "establishment.datasets[1].host: host 'files-99' is not in the inventory" in result.stdout


def test_missing_secret_is_named_and_no_secret_is_printed(project, inventory, tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret((tmp_path / "vault-password").read_bytes().strip()))])
    vault_file = inventory / "group_vars/all/vault.yml"
    secrets = yaml.safe_load(vault.decrypt(vault_file.read_bytes()))
    kept = secrets["vault_repository_passwords"]["partages"]
    del secrets["vault_repository_passwords"]["dpi-postgresql"]
    vault_file.write_bytes(vault.encrypt(yaml.safe_dump(secrets).encode()))
    result = run_playbook(project, inventory, "validate.yml")
    assert result.returncode != 0
    assert "vault_repository_passwords.dpi-postgresql: missing secret" in result.stdout
    assert kept not in result.stdout + result.stderr


def test_site_stops_before_any_host_is_contacted(project, inventory):
    edit_establishment(inventory, lambda e: e["retention"].update(daily=2))
    result = run_playbook(project, inventory, "site.yml")
    assert result.returncode != 0
    assert "establishment.retention.daily" in result.stdout
    recap = result.stdout.split("PLAY RECAP")[-1]
    assert "localhost" in recap
    for host in ("backup-01", "dpi-db-01", "files-01", "station-01"):
        assert host not in recap, recap


def test_missing_establishment_file_is_explained(project, inventory):
    (inventory / "group_vars/all/establishment.yml").unlink()
    result = run_playbook(project, inventory, "validate.yml")
    assert result.returncode != 0
    assert "group_vars/all/establishment.yml" in result.stdout


def assert_no_host_contacted(result: subprocess.CompletedProcess[str]) -> None:
    recap = result.stdout.split("PLAY RECAP")[-1]
    assert "localhost" in recap
    for host in ("backup-01", "dpi-db-01", "files-01", "station-01"):
        assert host not in recap, recap


def test_ransomware_drill_refuses_an_establishment_inventory(project, inventory):
    # an establishment's inventory has no lab network: the drill, which destroys data, stops on localhost
    lab = inventory / "group_vars/all/lab.yml"
    document = yaml.safe_load(lab.read_text())
    del document["lab_network"]
    lab.write_text(yaml.safe_dump(document))
    result = run_playbook(project, inventory, "drill-ransomware.yml")
    assert result.returncode != 0
    assert "it runs only on a lab inventory" in result.stdout
    assert_no_host_contacted(result)


def test_ransomware_drill_refuses_an_attacked_host_without_a_dataset(project, inventory):
    result = run_playbook(
        project,
        inventory,
        "drill-ransomware.yml",
        "-e",
        '{"ransomware_drill_hosts": ["dpi-db-01", "backup-01"]}',
    )
    assert result.returncode != 0
    assert "ransomware_drill_hosts: backup-01 hold no dataset" in result.stdout
    assert_no_host_contacted(result)
