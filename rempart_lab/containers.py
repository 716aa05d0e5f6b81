"""``rempart-lab up|down|status``: the podman lab described by an inventory.

Every inventory host with an ``ansible_host`` becomes a Debian 12 systemd container of the same name, with
that address on the inventory's private network (``lab_network`` in ``group_vars/all/lab.yml``); a small
mirror container serves the lab's apt repository there. Image and host preparation: ``lab/``.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rempart.model.inventory import load_yaml

IMAGE = "localhost/rempart-debian12:latest"
LAB_VARS = Path("group_vars/all/lab.yml")
PROJECT = Path(__file__).resolve().parent.parent
STATE = PROJECT / ".lab"


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str


@dataclass(frozen=True)
class Lab:
    network: str
    subnet: str
    mirror_address: str
    hosts: tuple[LabHost, ...]

    @property
    def mirror(self) -> str:
        return f"{self.network}-mirror"


def _hosts(group: dict, found: dict[str, str]) -> None:
    for name, variables in (group.get("hosts") or {}).items():
        if variables and "ansible_host" in variables:
            found[name] = str(variables["ansible_host"])
    for child in (group.get("children") or {}).values():
        _hosts(child or {}, found)


def load_lab(inventory_dir: Path) -> Lab:
    network = load_yaml(inventory_dir / LAB_VARS)["lab_network"]
    found: dict[str, str] = {}
    for group in (load_yaml(inventory_dir / "hosts.yml") or {}).values():
        _hosts(group or {}, found)
    subnet = ipaddress.ip_network(network["subnet"])
    for name, address in found.items():
        if ipaddress.ip_address(address) not in subnet:
            raise ValueError(f"{name}: ansible_host {address} is outside lab_network.subnet {subnet}")
    return Lab(
        network=network["name"],
        subnet=str(subnet),
        mirror_address=network["mirror_address"],
        hosts=tuple(LabHost(n, a) for n, a in sorted(found.items())),
    )


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, capture_output=True, text=True)


def _running(name: str) -> bool:
    result = _podman("container", "inspect", name, "--format", "{{.State.Running}}", check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def _wait_for_ssh(address: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=2) as connection:
                if connection.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{address}: no SSH banner after {timeout:.0f} s")


def up(lab: Lab) -> None:
    if _podman("network", "exists", lab.network, check=False).returncode != 0:
        _podman("network", "create", "--internal", "--subnet", lab.subnet, lab.network)
    if not _running(lab.mirror):
        _podman("rm", "-f", lab.mirror, check=False)
        _podman(
            "run", "-d", "--name", lab.mirror, "--network", lab.network, "--ip", lab.mirror_address,
            "-v", f"{STATE / 'repo'}:/srv/repo:ro", "--read-only", IMAGE,
            "python3", "-m", "http.server", "80", "--directory", "/srv/repo",
        )  # fmt: skip
    public_key = STATE / "ssh" / "id_ed25519.pub"
    for host in lab.hosts:
        if _running(host.name):
            continue
        _podman("rm", "-f", host.name, check=False)
        _podman(
            "run", "-d", "--name", host.name, "--hostname", host.name,
            "--network", lab.network, "--ip", host.address,
            "--systemd=always", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
            "-v", f"{public_key}:/root/.ssh/authorized_keys:ro",
            "--label", f"rempart.lab={lab.network}", IMAGE,
        )  # fmt: skip
    for host in lab.hosts:
        _wait_for_ssh(host.address)


def down(lab: Lab) -> None:
    for name in [host.name for host in lab.hosts] + [lab.mirror]:
        _podman("rm", "-f", "-t", "5", name, check=False)
    _podman("network", "rm", "-f", lab.network, check=False)


def status(lab: Lab) -> list[str]:
    return [
        f"{host.name:<14} {host.address:<15} {'running' if _running(host.name) else 'absent'}"
        for host in lab.hosts
    ]


def run(args: argparse.Namespace) -> int:
    """``rempart-lab up|down|status [--inventory DIR]`` (rempart_lab/cli.py)."""
    lab = load_lab(args.inventory)
    if args.action == "up":
        up(lab)
    elif args.action == "down":
        down(lab)
    for line in status(lab):
        print(line)
    return 0
