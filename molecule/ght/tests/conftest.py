"""The GHT lab: one shared backup server, one file server per establishment (inventories/ght-lab)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra
import yaml

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = PROJECT / "inventories" / "ght-lab"
SERVER = "mg-backup-01"
DATASET = "partages"


@dataclass(frozen=True)
class Establishment:
    group: str
    finess: str
    client: str
    port: int
    http_password: str
    repository_password: str

    @property
    def suffix(self) -> str:
        return f"-{self.finess}"

    @property
    def config_dir(self) -> str:
        return f"/etc/rempart{self.suffix}"

    @property
    def repos_dir(self) -> str:
        return f"/srv/rempart{self.suffix}/repos"

    @property
    def user(self) -> str:
        return f"rempart{self.suffix}"

    def url(self, password: str, port: int | None = None) -> str:
        return f"rest:https://{DATASET}:{password}@127.0.0.1:{port or self.port}/{DATASET}/"


def _establishments() -> list[Establishment]:
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]
    found = []
    for group in yaml.safe_load((INVENTORY / "group_vars/all/ght.yml").read_text())["rempart_ght"][
        "establishments"
    ]:
        members = list(hosts[group]["hosts"])
        view = next(m for m in members if m in hosts["backup_servers"]["hosts"])
        client = next(m for m in members if m in hosts["backup_clients"]["hosts"])
        data = yaml.safe_load((INVENTORY / "group_vars" / group / "establishment.yml").read_text())
        vault = yaml.safe_load((INVENTORY / "group_vars" / group / "vault.yml").read_text())
        found.append(
            Establishment(
                group,
                data["establishment"]["finess"],
                client,
                int(hosts["backup_servers"]["hosts"][view]["rempart_backup_rest_port"]),
                vault["vault_rest_server_passwords"][DATASET],
                vault["vault_repository_passwords"][DATASET],
            )
        )
    return found


ESTABLISHMENTS = _establishments()


@pytest.fixture(scope="session")
def server() -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{SERVER}")


def run_job(server: testinfra.host.Host, establishment: Establishment, timeout: float = 180) -> int:
    """Start the establishment's job unit for the dataset (as its timer would) and wait: its exit status."""
    unit = f"rempart-backup{establishment.suffix}@{DATASET}.service"
    server.run(f"systemctl reset-failed {unit}")
    server.run(f"systemctl start --no-block {unit}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = server.run(f"systemctl show -p ActiveState --value {unit}").stdout.strip()
        if state not in ("activating", "active", "deactivating"):
            break
        time.sleep(1)
    return int(server.run(f"systemctl show -p ExecMainStatus --value {unit}").stdout.strip() or -1)


def snapshots(server: testinfra.host.Host, establishment: Establishment) -> list[dict]:
    command = f"rempart-backup-admin{establishment.suffix} restic {DATASET} snapshots --json --no-lock"
    return json.loads(server.check_output(command) or "[]")


def playbook(name: str, *extra: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """ansible-playbook playbooks/<name> (or an absolute path) on the GHT inventory (extra: -e, --limit, -i)."""
    python_bin = Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin"
    return subprocess.run(
        [str(python_bin / "ansible-playbook"), "-i", str(INVENTORY), str(PROJECT / "playbooks" / name), *extra],
        cwd=PROJECT, check=False, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def view(establishment: Establishment) -> str:
    """The establishment's view of the shared server (its backup_servers host)."""
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]
    return next(h for h in hosts[establishment.group]["hosts"] if h in hosts["backup_servers"]["hosts"])
