"""Helpers for the backup scenario: the three containers, jobs started from the server's units, metrics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))  # refusal.py: bad-input runs

SERVER, DB, FILES = "mb-backup-01", "mb-dpi-db-01", "mb-files-01"
NETWORK = "rempart-molecule-backup"
METRICS = "/var/lib/prometheus/node-exporter"
PORTS = {"dpi-postgresql": 18100, "partages": 18101, "imagerie": 18102, "classeur-degrade": 18103}


class Lab:
    def __init__(self) -> None:
        self.server = testinfra.get_host(f"podman://{SERVER}")
        self.db = testinfra.get_host(f"podman://{DB}")
        self.files = testinfra.get_host(f"podman://{FILES}")

    def job(self, dataset: str) -> int:
        """Start the dataset's job unit on the server (as its timer would) and wait for it: its exit status."""
        self.server.run(f"systemctl reset-failed rempart-backup@{dataset}.service")
        self.server.run(f"systemctl start rempart-backup@{dataset}.service")
        return self.exit_status(f"rempart-backup@{dataset}.service")

    def start_job(self, dataset: str) -> None:
        self.server.run(f"systemctl reset-failed rempart-backup@{dataset}.service")
        assert self.server.run(f"systemctl start --no-block rempart-backup@{dataset}.service").rc == 0

    def wait_job(self, dataset: str, timeout: float = 120) -> int:
        unit = f"rempart-backup@{dataset}.service"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.server.run(f"systemctl show -p ActiveState --value {unit}").stdout.strip()
            if state not in ("activating", "active", "deactivating"):
                return self.exit_status(unit)
            time.sleep(1)
        raise TimeoutError(f"{unit} still running after {timeout} s")

    def exit_status(self, unit: str) -> int:
        return int(self.server.run(f"systemctl show -p ExecMainStatus --value {unit}").stdout.strip() or -1)

    def wait_client_restic(self, timeout: float = 60) -> int:
        """PID of the restic process of a running job on the file server."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.files.run("pgrep -f '^/usr/bin/restic backup'").stdout.split()
            if out:
                return int(out[0])
            time.sleep(0.3)
        raise TimeoutError("no restic job started on the client")

    def snapshots(self, dataset: str) -> list[dict]:
        out = self.server.check_output(f"rempart-backup-admin restic {dataset} snapshots --json --no-lock")
        return json.loads(out or "[]")

    def ids(self, dataset: str) -> set[str]:
        return {s["id"] for s in self.snapshots(dataset)}

    def ledger(self, dataset: str) -> list[dict]:
        text = self.server.file(f"/var/lib/rempart/ledger/{dataset}.jsonl").content_string
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def metric(self, name: str, dataset: str) -> float:
        text = self.server.run(f"cat {METRICS}/*.prom").stdout
        match = re.search(rf'^{name}{{dataset="{dataset}",[^}}]*}} (\S+)$', text, re.MULTILINE)
        assert match, f"metric {name} for {dataset} not found"
        return float(match.group(1))

    def new_random_file(self, path: str, mib: int) -> None:
        self.files.check_output(f"head -c {mib}M /dev/urandom > {path}")


@pytest.fixture(scope="session")
def lab() -> Lab:
    return Lab()


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
