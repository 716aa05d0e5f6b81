"""playbooks/validate.yml publishes the establishment's computed plan (fact rempart_plan of localhost), per
establishment in a GHT; a role used on its own computes the same plan from its defaults (controller only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from rempart.model.establishment import Establishment
from rempart.vault.secrets import init_vault

BIN = Path(sys.executable).parent
PLAYBOOK = Path(__file__).with_name("plan.yml")


def run(project: Path, inventory: Path, out: Path, vault_password: Path | None) -> dict[str, dict]:
    out.mkdir()
    env = os.environ | {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    if vault_password is not None:
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(vault_password)
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOK), "-e", f"plan_dir={out}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}


def model_plan(establishment_file: Path, ght_view: bool = False) -> dict[str, dict]:
    """The model's plan; a GHT view's instance is its FINESS (inventories/ght-lab/group_vars/backup_servers)."""
    model = Establishment.model_validate(yaml.safe_load(establishment_file.read_text())["establishment"])
    return model.roles_plan(instance=model.finess if ght_view else "")


def role_names(server: dict[str, str]) -> dict[str, list[str]]:
    """What each role used on its own must name, from the plan's names of the backup service's instance."""
    return {
        "backup_server": [server["user"], server["repos_dir"], server["state_dir"], server["config_dir"]],
        "restore_drill": [server["user"], server["repos_dir"], server["state_dir"], server["config_file"]],
        "red_button": [server["config_dir"]],
        "supervision": [server["user"], server["repos_dir"], server["config_dir"]],
        "offsite_copy": [
            server["user"],
            server["repos_dir"],
            server["state_dir"],
            server["config_dir"],
            server["secrets_dir"],
        ],
    }


def unit_names(suffix: str) -> dict[str, list]:
    """The unit and command names each role wrote before issue 20 (rempart-<unit>[-<finess>])."""
    return {
        "backup_server": [
            {
                "rest": f"rempart-rest-server{suffix}.service",
                "backup": f"rempart-backup{suffix}@.service",
                "retention": f"rempart-retention{suffix}@.service",
                "check": f"rempart-check{suffix}@.service",
                "offsite_copy": f"rempart-offsite-copy{suffix}.service",
            },
            f"/usr/local/sbin/rempart-backup-admin{suffix}",
        ],
        "red_button": [
            f"rempart{suffix}",
            f"rempart-rest-server{suffix}.service",
            [f"rempart-backup{suffix}@.service", f"rempart-retention{suffix}@.service"],
        ],
        "supervision": [f"rempart-backup{suffix}"],
        "offsite_copy": [f"rempart-offsite-copy{suffix}"],
        "ransomware_drill": [
            f"/usr/local/sbin/rempart-backup-admin{suffix}",
            f"rempart-offsite-copy{suffix}.service",
        ],
    }


def configured(expected: dict) -> dict[str, dict]:
    """The quota and thresholds check_rempart's configuration holds per dataset: the plan's."""
    return {
        name: {"quota_bytes": expected["quota_bytes"][name], "thresholds": expected["thresholds"][name]}
        for name in expected["datasets"]
    }


def assert_host_plans(found: dict[str, dict], host: str, expected: dict[str, dict], server: bool) -> None:
    for values in (
        found[host].get("limits", {}).get("configured", {}).values()
    ):  # host, rpo_hours...: not the plan's
        for key in set(values) - {"quota_bytes", "thresholds"}:
            del values[key]
    assert found[host] == {
        "published": expected,  # finess included: the host's own establishment
        "backup_server": expected["datasets"],
        "backup_client": expected["datasets"],
        "names": role_names(expected["server"]) if server else {},
        "units": unit_names(expected["server"]["suffix"]) if server else {},
        "lock": {
            "backup_server": expected["retention"],
            "offsite_copy": [
                expected["offsite"]["retention_days"],
                expected["offsite"]["retention_cap_days"],
            ],
            "limits": [expected["limits"]["retention_floor"], expected["limits"]["offsite_regions"]],
        }
        if server
        else {},
        "limits": {
            "supervision": [expected["quota_bytes"], expected["thresholds"]],
            "configured": configured(expected),
        }
        if server
        else {},
        "client_public_key": None if server else expected["server"]["ssh_public_key"],
    }, host


def test_lab_hosts_get_the_plan_the_model_computes(project, tmp_path):
    folder = tmp_path / "inventory"
    shutil.copytree(project / "inventories/lab", folder, ignore=shutil.ignore_patterns("vault.yml"))
    (folder / "hosts.yml").write_text((folder / "hosts.yml").read_text().replace("10.89.60.", "192.0.2."))
    init_vault(folder, tmp_path / "vault-password")
    found = run(project, folder, tmp_path / "plan", tmp_path / "vault-password")
    expected = model_plan(folder / "group_vars/all/establishment.yml")
    assert len(found) == 4 and expected["datasets"]["partages"] == {
        "tunnel_port": 18101,
        "schedule": "*-*-* 01:47:00",
    }
    assert expected["server"]["suffix"] == "" and expected["server"]["config_dir"] == "/etc/rempart"
    for host in found:
        assert_host_plans(found, host, expected, server=host == "backup-01")


def test_ght_each_establishment_gets_its_own_plan(project, tmp_path):
    inventory = project / "inventories/ght-lab"
    found = run(project, inventory, tmp_path / "plan", None)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]
    for group in ("ch_nord", "ch_centre", "ch_sud"):
        expected = model_plan(inventory / "group_vars" / group / "establishment.yml", ght_view=True)
        assert len(hosts[group]["hosts"]) == 2
        assert expected["server"]["suffix"] == f"-{expected['finess']}"
        for host in hosts[group]["hosts"]:
            assert_host_plans(found, host, expected, server=host.startswith("mg-backup-01-"))
