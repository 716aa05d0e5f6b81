"""Bad-input runs shared by the molecule scenarios: converge again with wrong values and read what Ansible said.

Results are printed as one-line JSON (`result_format = json`), so a role's fail message is never folded by the
YAML result format, whose line breaks depend on the message's position and would split the text a test looks for.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Refusal:
    returncode: int
    output: str

    @property
    def changed(self) -> list[int]:
        """The changed= count of every host in the recap."""
        return [int(count) for count in re.findall(r"changed=(\d+)", self.output)]


def converge(
    playbook: Path, inventory: Path, extra: dict[str, Any], tmp_path: Path, tags: str | None = None
) -> Refusal:
    """Run `playbook` with the project's roles and plugins (collection rempart.rempart) and `extra` as extra vars (written to a file)."""
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra), encoding="utf-8")
    command = ["ansible-playbook", "-i", str(inventory), str(playbook), "-e", f"@{extra_file}"]
    if tags:
        command += ["--tags", tags]
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
        "ANSIBLE_COLLECTIONS_PATH": str(PROJECT / "collections"),  # rempart.rempart: the repository itself
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_LOG_PATH": "/dev/null",
        "ANSIBLE_NOCOLOR": "1",
    }
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=PROJECT, check=False, timeout=1800
    )
    return Refusal(result.returncode, result.stdout + result.stderr)


def assert_refused(refusal: Refusal, message: str) -> None:
    """The run failed, said `message`, and changed nothing on any host."""
    assert refusal.returncode != 0, refusal.output[-3000:]
    assert message in refusal.output, refusal.output[-3000:]
    assert refusal.changed and set(refusal.changed) == {0}, refusal.output[-3000:]
