"""The VM playing backup-01, its media (disk images hot-plugged through QMP) and the test data."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml
from qmp import Qmp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))  # refusal.py: bad-input runs

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
RUN = PROJECT / ".lab/vm/run/rempart-vm-offline"
PORT = 2231
METRICS = "/var/lib/prometheus/node-exporter/rempart_offline.prom"
LEDGER = "/var/lib/rempart/offline/ledger.jsonl"
DATA = "/srv/offline-test"
# a known file whose plaintext must never appear on a raw medium
MARKER = "REMPART-OFFLINE-PLAINTEXT-MARKER-0f3c9a"
SERIALS = {"lab-disque-a": "RMP-OFF-A", "lab-disque-b": "RMP-OFF-B", "lab-disque-c": "RMP-OFF-C"}


def vault() -> dict[str, Any]:
    return yaml.safe_load((SCENARIO / "inventory/group_vars/all/vault.yml").read_text())


class Vm:
    untrusted = ""  # a snapshot of the repository the server never admitted (set by the vm fixture)

    def __init__(self) -> None:
        self.host = testinfra.get_host(
            f"ssh://root@127.0.0.1:{PORT}",
            ssh_identity_file=str(PROJECT / ".lab/ssh/id_ed25519"),
            ssh_extra_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            timeout=120,
        )
        self.qmp = Qmp(RUN / "qmp.sock")
        self.media = RUN / "media"
        self.media.mkdir(exist_ok=True)

    def run(self, command: str) -> Any:
        return self.host.run(command)

    def check(self, command: str) -> str:
        result = self.host.run(command)
        assert result.rc == 0, f"{command}: rc {result.rc}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    # ---------------------------------------------------------------- media

    def image(self, name: str, mib: int) -> Path:
        path = self.media / f"{name}.img"
        if not path.exists():
            with path.open("wb") as handle:
                handle.truncate(mib * 2**20)
        return path

    def disks(self) -> set[str]:
        return (
            set(self.check("ls /sys/class/block").split()) - {"vda", "sr0"} - {f"loop{i}" for i in range(8)}
        )

    def attach_jobs(self) -> set[str]:
        """Kernel names of the attach jobs systemd knows (running, or failed and not reset yet)."""
        out = self.run("systemctl list-units --all --plain --no-legend 'rempart-offline-attach@*'").stdout
        return {
            line.split()[0].split("@", 1)[1].removesuffix(".service")
            for line in out.splitlines()
            if "@" in line
        }

    def plug(self, image: Path, device_id: str, serial: str) -> str:
        """Attach the image; the kernel name of the new disk once udev has settled. A job that fails fast (a
        missing key) powers the disk off before a poll sees it: its attach job names the disk all the same."""
        self.run("systemctl reset-failed 'rempart-offline-attach@*'")
        before, jobs = self.disks(), self.attach_jobs()
        self.qmp.plug(image, device_id, serial)
        # a software-emulated VM on a loaded machine can take minutes, or miss the hot-plug event: scan the bus
        # as udev would, every 30 s, as long as neither a disk nor its job has shown up
        deadline, rescan = time.monotonic() + 360, time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = (self.disks() - before) or (self.attach_jobs() - jobs)
            if seen:
                self.run("udevadm settle -t 60")
                return sorted(seen)[0]
            if time.monotonic() > rescan:
                self.run("for scan in /sys/class/scsi_host/host*/scan; do echo '- - -' > $scan; done")
                rescan = time.monotonic() + 30
            time.sleep(0.5)
        raise TimeoutError(f"no new disk in the VM after plugging {image.name}")

    def unplug(self, device_id: str) -> None:
        self.qmp.unplug(device_id)

    def wait_attach_job(self, kernel: str, timeout: float = 900) -> int:
        """Exit status of rempart-offline-attach@KERNEL.service once it ran (started by udev)."""
        unit = f"rempart-offline-attach@{kernel}.service"
        deadline = time.monotonic() + timeout
        seen = False
        while time.monotonic() < deadline:
            props = self.unit(unit)
            seen = (
                seen or props["ActiveState"] != "inactive" or props["ExecMainExitTimestampMonotonic"] != "0"
            )
            if seen and props["ActiveState"] in ("inactive", "failed"):
                return int(props["ExecMainStatus"] or -1)
            time.sleep(1)
        raise TimeoutError(f"{unit} did not finish in {timeout} s")

    def unit(self, unit: str) -> dict[str, str]:
        out = self.check(
            f"systemctl show -p ActiveState -p ExecMainStatus -p ExecMainExitTimestampMonotonic {unit}"
        )
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def reset(self, kernel: str) -> None:
        self.run(f"systemctl reset-failed rempart-offline-attach@{kernel}.service")

    # ---------------------------------------------------------------- records

    def ledger(self) -> list[dict[str, Any]]:
        text = self.check(f"cat {LEDGER} 2>/dev/null || true")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def metric(self, name: str, labels: str = "") -> float:
        text = self.check(f"cat {METRICS}")
        braces = (
            rf"{{{re.escape(labels)}}}" if labels else r"(?:\{\})?"
        )  # rempart_host writes `name 0` unlabelled
        match = re.search(rf"^{name}{braces} (\S+)$", text, re.MULTILINE)
        assert match, f"metric {name}{{{labels}}} not in {text}"
        return float(match.group(1))

    def status(self) -> int:
        self.run("systemctl reset-failed rempart-offline-status.service")
        self.run("systemctl start rempart-offline-status.service")
        return int(self.unit("rempart-offline-status.service")["ExecMainStatus"])

    def journal(self, since: str) -> str:
        return self.check(f"journalctl -q -o cat --since '{since}' -t rempart-offline-copy")

    # ---------------------------------------------------------------- data

    def backup(self, dataset: str) -> str:
        """A snapshot of the dataset's test folder straight into the server's repository: its id."""
        password = vault()["vault_repository_passwords"][dataset]
        out = self.check(
            f"cd {DATA}/{dataset} && RESTIC_PASSWORD='{password}' runuser -u rempart -- "
            f"restic --no-cache -r /srv/rempart/repos/{dataset} backup --json --quiet . | tail -1"
        )
        snapshot = json.loads(out)["snapshot_id"]
        # what the server's job writes once admission passed: a copy carries trusted snapshots only
        entry = {"event": "snapshot", "id": snapshot, "arrived": time.time(), "admitted": True, "trusted": True,
                 "anomaly": [], "problems": []}  # fmt: skip
        line = base64.b64encode((json.dumps(entry) + "\n").encode()).decode()
        self.check(f"runuser -u rempart -- sh -c 'mkdir -p /var/lib/rempart/ledger && echo {line} | base64 -d "
                   f">> /var/lib/rempart/ledger/{dataset}.jsonl'")  # fmt: skip
        return snapshot

    def untrusted_backup(self, dataset: str) -> str:
        """A snapshot written straight into the repository that the server never admitted (no ledger entry)."""
        password = vault()["vault_repository_passwords"][dataset]
        out = self.check(
            f"cd {DATA}/{dataset} && RESTIC_PASSWORD='{password}' runuser -u rempart -- "
            f"restic --no-cache -r /srv/rempart/repos/{dataset} backup --json --quiet . | tail -1"
        )
        return json.loads(out)["snapshot_id"]

    def sha256(self, path: str) -> str:
        return self.check(f"sha256sum {path}").split()[0]

    @contextlib.contextmanager
    def medium_opened_read_only(self, image: Path, medium: str) -> Iterator[str]:
        """A COPY of the medium's image, attached read-only under a serial no rotation knows (refused by the
        job, untouched), opened with the medium's escrowed key alone: the restore needs nothing else."""
        copy = self.media / f"restore-{medium}.img"
        shutil.copyfile(image, copy)
        self.qmp.execute("blockdev-add", driver="raw", **{"node-name": "node-restore", "read-only": True},
                         file={"driver": "file", "filename": str(copy), "read-only": True})  # fmt: skip
        before = self.disks()
        self.qmp.execute("device_add", driver="scsi-hd", id="restore", bus="media.0", drive="node-restore",
                         serial="RESTORE-RO")  # fmt: skip
        kernel = self._wait_new(before)
        self.wait_attach_job(kernel)
        key = vault()["vault_offline_media_keys"][medium]
        mount = f"/mnt/restore-{medium}"
        try:
            self.check(
                f"install -m 0600 /dev/null /run/restore.key && printf %s '{key}' > /run/restore.key && "
                f"cryptsetup open --readonly --key-file /run/restore.key /dev/{kernel} restore-{medium}; "
                f"rc=$?; rm -f /run/restore.key; exit $rc"
            )
            self.check(f"mkdir -p {mount} && mount -o ro,noload /dev/mapper/restore-{medium} {mount}")
            yield mount
        finally:
            self.run(f"umount {mount}; cryptsetup close restore-{medium}")
            self.run(f"echo 1 > /sys/class/block/{kernel}/device/delete")
            self.unplug("restore")
            copy.unlink(missing_ok=True)
            self.run(f"systemctl reset-failed rempart-offline-attach@{kernel}.service")
            self.status()

    def _wait_new(self, before: set[str]) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = self.disks() - before
            if new:
                self.check("udevadm settle -t 60")
                return sorted(new)[0]
            time.sleep(0.5)
        raise TimeoutError("no new disk")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="session")
def vm() -> Vm:
    machine = Vm()
    machine.check(
        f"mkdir -p {DATA}/dossiers/patients {DATA}/partages && "
        f"printf '%s\\n' '{MARKER}' > {DATA}/dossiers/patients/compte-rendu.txt && "
        f"head -c 3M /dev/urandom > {DATA}/dossiers/patients/imagerie.bin && "
        f'for i in $(seq 1 40); do echo "note de service $i {MARKER}" > {DATA}/partages/note-$i.txt; done && '
        f"chown -R rempart {DATA}"
    )
    for dataset in ("dossiers", "partages"):
        machine.backup(dataset)
    machine.untrusted = machine.untrusted_backup("partages")  # never admitted: no medium may carry it
    return machine


@pytest.fixture(scope="session")
def medium_a(vm: Vm) -> Path:
    """Medium A: attached, refused until enrolled (not LUKS yet), enrolled by the admin command, which copies,
    verifies and powers it off; then pulled out. The image file is the removable disk."""
    image = vm.image("lab-disque-a", 96)
    enrolled = image.read_bytes()[:6] == b"LUKS\xba\xbe"  # a second verify run on the same VM
    kernel = vm.plug(image, "medium-a", SERIALS["lab-disque-a"])
    if enrolled:
        assert vm.wait_attach_job(kernel) == 0  # the routine rotation: copy on attach
    else:
        assert vm.wait_attach_job(kernel) == 1  # declared but not enrolled: nothing written
        vm.reset(kernel)
        vm.check(f"rempart-offline-admin enroll lab-disque-a /dev/{kernel}")
    vm.reset(kernel)
    vm.unplug("medium-a")
    return image
