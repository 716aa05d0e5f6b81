"""Helpers for the offsite scenario: the server, the stand-in bucket (the inventory's offsite variables, as the
drills read them), restic on the host against the stand-in."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import testinfra
import yaml
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))  # refusal.py: bad-input runs

SERVER, FILES = "mo-backup-01", "mo-files-01"
METRICS = "/var/lib/prometheus/node-exporter"
COPY_UNIT = "rempart-offsite-copy.service"


def _inventory_vars() -> dict[str, Any]:
    folder = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "inventory" / "group_vars" / "all"
    found: dict[str, Any] = {}
    for name in ("offsite_outputs.yml", "vault_offsite.yml", "vault.yml"):
        found.update(yaml.safe_load((folder / name).read_text(encoding="utf-8")) or {})
    return found


class Lab:
    def __init__(self) -> None:
        self.server = testinfra.get_host(f"podman://{SERVER}")
        self.files = testinfra.get_host(f"podman://{FILES}")
        self.vars = _inventory_vars()
        self.bucket = self.vars["offsite_bucket"]
        self.endpoint = self.vars["offsite_endpoint"]

    # --- units on the server
    def run_unit(self, unit: str) -> int:
        self.server.run(f"systemctl reset-failed {unit}")
        self.server.run(f"systemctl start {unit}")
        return int(self.server.run(f"systemctl show -p ExecMainStatus --value {unit}").stdout.strip() or -1)

    def backup(self, dataset: str) -> int:
        return self.run_unit(f"rempart-backup@{dataset}.service")

    def copy(self) -> int:
        return self.run_unit(COPY_UNIT)

    def metric(self, name: str, dataset: str) -> float:
        text = self.server.run(f"cat {METRICS}/rempart_offsite_{dataset}.prom").stdout
        match = re.search(rf'^{name}{{dataset="{dataset}",[^}}]*}} (\S+)$', text, re.MULTILINE)
        assert match, f"metric {name} for {dataset} not found in:\n{text}"
        return float(match.group(1))

    def local_snapshot_ids(self, dataset: str) -> set[str]:
        import json

        out = self.server.check_output(f"rempart-backup-admin restic {dataset} snapshots --json --no-lock")
        return {s["id"] for s in json.loads(out or "[]")}

    # --- the bucket, seen from the host
    def s3(self, identity: str) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.vars["offsite_region"],
            aws_access_key_id=self.vars[f"offsite_{identity}_access_key_id"],
            aws_secret_access_key=self.vars[f"vault_offsite_{identity}_secret_access_key"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def restic(
        self, dataset: str, *args: str, identity: str = "restore", cache: Path
    ) -> subprocess.CompletedProcess[str]:
        """restic on the host against the offsite repository (restore identity unless told)."""
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(cache),
            "RESTIC_REPOSITORY": self.vars["offsite_restic_repositories"][dataset],
            "RESTIC_PASSWORD": self.vars["vault_repository_passwords"][dataset],
            "RESTIC_CACHE_DIR": str(cache),
            "AWS_ACCESS_KEY_ID": self.vars[f"offsite_{identity}_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": self.vars[f"vault_offsite_{identity}_secret_access_key"],
            "AWS_DEFAULT_REGION": self.vars["offsite_region"],
        }
        return subprocess.run(
            ["restic", *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    def cut_offsite(self) -> None:
        """The stand-in becomes unreachable from the server (connections refused at once), its state kept."""
        address = self.endpoint.split("//")[1].split(":")[0]
        self.server.check_output(f"ip route replace prohibit {address}/32")

    def restore_offsite(self) -> None:
        address = self.endpoint.split("//")[1].split(":")[0]
        self.server.run(f"ip route del prohibit {address}/32")


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def remote_digest(host: Any, root: str, excludes: tuple[str, ...] = ()) -> dict[str, str]:
    out = host.check_output(f"cd {root} && find . -type f -print0 | sort -z | xargs -0 sha256sum")
    digest = {}
    for line in out.splitlines():
        value, path = line.split(maxsplit=1)
        path = path.removeprefix("./")
        if not any(Path(path).match(pattern) for pattern in excludes):
            digest[path] = value
    return digest


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def lab() -> Lab:
    return Lab()
