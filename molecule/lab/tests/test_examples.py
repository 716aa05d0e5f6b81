"""The examples a hospital starts from converge as shipped: a copy of inventories/example-ch, and what
``rempart new-establishment`` writes, each in its own podman lab, converge playbooks/site.yml with no failed and
no unreachable host.

Only lab plumbing is added to the copy: an ``ansible_host`` per host (the address ``rempart-lab up`` gives its
container) and group_vars/all/lab.yml: the lab network and apt mirror, and the connection — SSH (pipelined: the
podman connection plugin cannot pipeline, and took 576 s to reach hardening's logging tasks on the 7 hosts) as a
lab automation account added to the example's administrators, from the control node added to its admin networks.
The example's own administrators and admin network stay declared and converged. Before the converge, hospital_state.yml gives the servers what a hospital's servers already run
(database servers, the patient record the degraded mode exports); the offsite bucket is the lab's stand-in
(``rempart-lab offsite``). Each lab is removed at the end, whatever happened.

``site.yml`` itself runs from the built collection, installed offline into a temporary folder outside the
repository: Ansible is told of that folder and the venv's PyPI bundle only (no ansible.cfg, role or plugin path of
the repository), as an integrator who installed the tarball would run it. The lab steps before it (bootstrap,
the hospital's existing state) run from the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
LOGS = PROJECT / ".lab" / "examples"
HOSPITAL_STATE = Path(__file__).with_name("hospital_state.yml")
LAB_ADMIN = "rempart-lab"  # the control node's account on the lab containers (key, sudo without password)

# One private network per example, distinct from every other scenario's (10.89.60-70, 74, 75).
NETWORKS = {
    "example-ch": ("rempart-examples-ch", "10.89.71"),
    "new-establishment": ("rempart-examples-new", "10.89.72"),
}
NEW_ESTABLISHMENT_ARGS = [
    "--finess", "750712184", "--name", "Centre hospitalier du Nouveau Départ", "--ght", "GHT Exemple",
    "--domain", "ch-nouveau-depart.local", "--folder-name", "ch-nouveau-depart",
]  # fmt: skip
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)

pytestmark = pytest.mark.lab


def _environment(password_file: Path) -> dict[str, str]:
    """This venv's tools and the project's ansible.cfg; nothing of molecule's own Ansible settings."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    return {
        **kept,
        "PATH": f"{BIN}:{kept['PATH']}",
        "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
        "ANSIBLE_VAULT_PASSWORD_FILE": str(password_file),
        "ANSIBLE_FORCE_COLOR": "0",
    }


def _run(log: Path, command: list[str], env: dict[str, str], timeout: int = 600, cwd: Path = PROJECT) -> str:
    """Run ``command`` (from the project unless told), append its output to ``log``; fail with the output's tail."""
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(command)}  # rc {result.returncode}, {time.monotonic() - started:.0f} s\n")
        handle.write(output + "\n")
    assert result.returncode == 0, f"{' '.join(command)} failed (rc {result.returncode}):\n{output[-6000:]}"
    return output


def _hosts(group: dict) -> list[dict]:
    """The host mappings of a hosts.yml group and of its children, in file order."""
    found = [group["hosts"]] if group.get("hosts") else []
    for child in (group.get("children") or {}).values():
        found += _hosts(child or {})
    return found


def add_lab_plumbing(inventory: Path, network: str, prefix: str) -> list[str]:
    """Give every host an address on the example's lab network and write group_vars/all/lab.yml: the network,
    the mirror, and the lab's automation account (key, sudo) added to the example's administrators, reachable
    from the control node (the network's gateway) added to the example's admin networks."""
    hosts_file = inventory / "hosts.yml"
    data = yaml.safe_load(hosts_file.read_text(encoding="utf-8"))
    addresses: dict[str, str] = {}
    for mapping in _hosts(data["all"]):
        for name in mapping:
            addresses.setdefault(name, f"{prefix}.{10 + len(addresses)}")
            mapping[name] = {"ansible_host": addresses[name]}
    hosts_file.write_text("---\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    hardening = yaml.safe_load((inventory / "group_vars/all/hardening.yml").read_text(encoding="utf-8"))
    key = PROJECT / ".lab" / "ssh" / "id_ed25519"
    lab = {
        "lab_network": {"name": network, "subnet": f"{prefix}.0/24", "mirror_address": f"{prefix}.5"},
        "rempart_apt_mirror": {"uri": f"http://{prefix}.5/", "suites": ["./"], "trusted": True},
        "ansible_user": LAB_ADMIN,
        "ansible_become": True,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        "hardening_admin_users": [
            *hardening["hardening_admin_users"],
            {
                "name": LAB_ADMIN,
                "ssh_keys": [key.with_suffix(".pub").read_text().strip()],
                "sudo_nopasswd": True,
            },
        ],
        "hardening_firewall_admin_networks": [
            *hardening["hardening_firewall_admin_networks"],
            f"{prefix}.1/32",
        ],
    }
    # group_vars/all/lab.yml is read after hardening.yml: its two lists replace the example's, which they contain
    (inventory / "group_vars/all/lab.yml").write_text("---\n" + yaml.safe_dump(lab), encoding="utf-8")
    return list(addresses)


def shipped_example(name: str, workdir: Path, env: dict[str, str], log: Path) -> Path:
    if name == "example-ch":
        inventory = workdir / name
        shutil.copytree(PROJECT / "inventories" / name, inventory)
        (inventory / "group_vars/all/vault.yml").unlink(missing_ok=True)
        return inventory
    _run(
        log,
        [str(BIN / "rempart"), "new-establishment", *NEW_ESTABLISHMENT_ARGS, "--inventories", str(workdir)],
        env,
    )
    return workdir / "ch-nouveau-depart"


def installed_collection(workdir: Path, env: dict[str, str], log: Path) -> tuple[Path, dict[str, str]]:
    """The collection tarball built and installed offline under ``workdir``, and the environment that sees only
    it and the venv's `ansible` bundle (site.yml's collection dependencies)."""
    _run(
        log,
        [str(BIN / "ansible-galaxy"), "collection", "build", str(PROJECT), "--output-path", str(workdir)],
        env,
    )
    tarball = next(workdir.glob("rempart-rempart-*.tar.gz"))
    collections = workdir / "collections"
    config = workdir / "ansible.cfg"
    config.write_text("[defaults]\nhost_key_checking = false\n[ssh_connection]\npipelining = true\n")
    outside = {k: v for k, v in env.items() if k != "ANSIBLE_CONFIG"}
    outside |= {
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_COLLECTIONS_PATH": f"{collections}:{sysconfig.get_paths()['purelib']}",
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
    }
    _run(log, [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", str(tarball), "-p", str(collections)], outside)  # fmt: skip
    return collections / "ansible_collections" / "rempart" / "rempart", outside


def _recap(output: str) -> dict[str, tuple[int, int]]:
    return {
        host: (int(unreachable), int(failed)) for host, _, _, unreachable, failed in RECAP.findall(output)
    }


@pytest.mark.parametrize("example", list(NETWORKS))
def test_example_converges_in_the_lab(example: str, tmp_path: Path) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{example}.log"
    log.write_text("", encoding="utf-8")
    password = tmp_path / "vault-password"
    env = _environment(password)
    inventory = shipped_example(example, tmp_path, env, log)
    hosts = add_lab_plumbing(inventory, *NETWORKS[example])
    rempart = str(BIN / "rempart")
    rempart_lab = str(BIN / "rempart-lab")
    playbook = [str(BIN / "ansible-playbook"), "-i", str(inventory)]
    started = time.monotonic()
    try:
        _run(log, [rempart, "init-vault", str(inventory), "--vault-password-file", str(password)], env)
        _run(log, [rempart_lab, "up", "--inventory", str(inventory)], env)
        _run(log, [rempart_lab, "offsite", "up", "--inventory", str(inventory), "--vault-password-file", str(password)], env)  # fmt: skip
        _run(log, [*playbook, "playbooks/lab-bootstrap.yml"], env)
        _run(log, [*playbook, str(HOSPITAL_STATE)], env)
        collection, outside = installed_collection(tmp_path, env, log)
        assert PROJECT not in collection.parents
        output = _run(log, [*playbook, str(collection / "playbooks" / "site.yml")], outside, 2400, tmp_path)
    finally:
        subprocess.run([rempart_lab, "offsite", "down", "--inventory", str(inventory)], env=env, check=False)
        subprocess.run([rempart_lab, "down", "--inventory", str(inventory)], env=env, check=False)
        with log.open("a", encoding="utf-8") as handle:
            handle.write(
                f"# {example}: {len(hosts)} hosts, {time.monotonic() - started:.0f} s up to lab down\n"
            )
    recap = _recap(output)
    assert set(hosts) <= set(recap), f"hosts missing from the play recap: {set(hosts) - set(recap)}"
    assert {host: counts for host, counts in recap.items() if counts != (0, 0)} == {}
    assert "rempart.rempart.backup_server" in output  # the tasks ran from the installed collection's roles
