"""The Python locks (requirements/*.txt, made by `make lock`): what make setup installs is exactly what they say,
every file is pinned by its hash, and the runtime lock alone gives a working control node."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonical(match[1])] = match[2]
    return pins


def entries(path: Path) -> list[str]:
    """One text block per locked package: its pin line and its continuation lines."""
    blocks: list[str] = []
    for line in path.read_text().splitlines():
        if PIN.match(line):
            blocks.append(line)
        elif line.startswith("    --hash") and blocks:
            blocks[-1] += "\n" + line
    return blocks


def test_the_venv_holds_exactly_the_locked_versions():
    installed = {
        canonical(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions()
        if canonical(d.metadata["Name"]) != "rempart"
    }
    lock = locked(PROJECT / "requirements" / "dev.txt")
    differences = {
        name: {"locked": lock.get(name), "installed": installed.get(name)}
        for name in sorted(set(lock) | set(installed))
        if lock.get(name) != installed.get(name)
    }
    assert differences == {}, "the venv differs from requirements/dev.txt: rm -rf .venv && make setup"


@pytest.mark.parametrize("lock", ["runtime.txt", "dev.txt"])
def test_every_locked_file_is_pinned_by_its_hash_and_names_no_local_path(lock):
    path = PROJECT / "requirements" / lock
    blocks = entries(path)
    assert len(blocks) > 10
    assert [b.split("\n")[0] for b in blocks if "--hash=sha256:" not in b] == []
    text = path.read_text()
    for local in ("file://", "--find-links", "--index-url", "/opt/", "/work/", "/root/"):
        assert local not in text


def test_the_runtime_lock_is_the_dev_lock_s_runtime_part():
    runtime = locked(PROJECT / "requirements" / "runtime.txt")
    dev = locked(PROJECT / "requirements" / "dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime
    for tool in ("pytest", "molecule", "moto", "pulumi", "ansible-lint"):
        assert tool not in runtime  # test and offsite tools stay out of a control node


def test_the_offsite_lab_s_moto_is_the_one_its_iam_canary_passed_with():
    # moto 5.2.6 answers AccessDenied to the lab writer's ListBucket/HeadObject (tests/offsite/test_lab_offsite.py
    # test_lab_identities_*): an upgrade is judged by that canary, not by make demo.
    assert locked(PROJECT / "requirements" / "dev.txt")["moto"] == "5.2.5"


@pytest.mark.skipif(os.environ.get("REMPART_SKIP_RUNTIME_VENV") == "1", reason="REMPART_SKIP_RUNTIME_VENV=1")
def test_the_runtime_lock_alone_gives_a_working_control_node(tmp_path):
    """A control node installed from requirements/runtime.txt only: validate, init-vault and a playbook check."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "--require-hashes", "--no-deps", "-r", "requirements/runtime.txt"], cwd=PROJECT, check=True
    )
    subprocess.run([*pip, "--no-build-isolation", "--no-deps", str(PROJECT)], cwd=tmp_path, check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], check=True)
    rempart = str(venv / "bin" / "rempart")
    validate = subprocess.run(
        [rempart, "validate", str(PROJECT / "inventories" / "example-ch")], capture_output=True, text=True
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    inventory = tmp_path / "inventory"
    subprocess.run(["cp", "-r", str(PROJECT / "inventories" / "example-ch"), str(inventory)], check=True)
    (inventory / "group_vars" / "all" / "vault.yml").unlink(missing_ok=True)
    password = tmp_path / "vault-password"
    password.write_text("control-node-test\n")
    init = subprocess.run(
        [rempart, "init-vault", str(inventory), "--vault-password-file", str(password)],
        capture_output=True,
        text=True,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
        "ANSIBLE_VAULT_PASSWORD_FILE": str(password),
    }
    check = subprocess.run(
        [
            str(venv / "bin" / "ansible-playbook"),
            "-i",
            str(inventory),
            "--syntax-check",
            "playbooks/site.yml",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert check.returncode == 0, check.stdout + check.stderr
