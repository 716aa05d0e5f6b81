"""The roles' argument_specs refuse a value outside the choices before any task runs, naming the argument: the
roles' own copies of these checks (hardening's "unknown level", red_button's "unknown red_button_state") are gone
(issue 20 item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
PLAYBOOK = Path(__file__).with_name("choices.yml")


@pytest.mark.parametrize(
    ("role", "argument", "allowed"),
    [
        ("hardening", "hardening_level", "none, minimal, intermediary, enhanced"),
        ("red_button", "red_button_state", "isolate, release, install"),
    ],
)
def test_a_value_outside_the_choices_is_refused_before_any_task(
    project: Path, tmp_path: Path, role: str, argument: str, allowed: str
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    target: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_connection: ssh}\n"
    )
    env = os.environ | {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOK),
         "-e", f"role_under_test={role}", "-e", f"{argument}=bogus", "-e", f"@{project}/inventories/lab/group_vars/all/establishment.yml"],
        capture_output=True, text=True, env=env, cwd=project, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"value of {argument} must be one of: {allowed}, got: bogus" in output, output
    assert "UNREACHABLE" not in output and "changed=0" in output  # refused before contacting the host
