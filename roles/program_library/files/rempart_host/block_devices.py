"""Block devices as the kernel shows them (/sys/class/block, udev): which disk a partition is on, whether the
system holds it, and how to detach it. Used by the offline copy (roles/offline_copy) for hot-plugged media."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def udev_properties(device: str) -> dict[str, str]:
    result = subprocess.run(["udevadm", "info", "--query=property", f"--name={device}"],
                            capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    if result.returncode != 0:  # the message the offline copy gave before (its ledger and journal show it)
        raise RuntimeError(f"udevadm info failed ({result.returncode}): {result.stderr.strip()[-600:]}")
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def disk_of(kernel: str) -> str:
    """The whole disk holding ``kernel`` (itself for a disk, the parent for a partition)."""
    sys_path = Path("/sys/class/block", kernel).resolve()
    return sys_path.parent.name if (sys_path / "partition").exists() else kernel


def in_use(kernel: str) -> bool:
    """Opened or mounted by the system (e.g. an encrypted system disk at boot): not a medium to handle."""
    if any(Path("/sys/class/block", kernel, "holders").iterdir()):
        return True
    mounts = Path("/proc/self/mounts").read_text(encoding="utf-8").split()
    return f"/dev/{kernel}" in mounts


def partitions_of(kernel: str) -> list[str]:
    base = Path("/sys/class/block", kernel)
    return sorted(p.name for p in base.iterdir() if p.name.startswith(kernel) and (p / "partition").exists())


def power_off(disk: str) -> str:
    """Detach the disk from the kernel: USB port removal, else SCSI device deletion. The device node is gone
    afterwards; the medium can only come back by being plugged in again (a new ``add`` event)."""
    sys_path = Path("/sys/class/block", disk).resolve()
    usb = next(
        (p for p in [sys_path, *sys_path.parents] if (p / "remove").exists() and (p / "idVendor").exists()),
        None,
    )
    if usb is not None:
        (usb / "remove").write_text("1\n", encoding="utf-8")
        method = "usb-port-removed"
    elif (sys_path / "device" / "delete").exists():
        (sys_path / "device" / "delete").write_text("1\n", encoding="utf-8")
        method = "scsi-deleted"
    else:
        return "unsupported"
    deadline = time.monotonic() + 30
    while Path("/sys/class/block", disk).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if Path("/sys/class/block", disk).exists():
        raise RuntimeError(f"/dev/{disk} still present 30 s after {method}")
    return method
