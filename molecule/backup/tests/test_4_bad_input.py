"""Bad input fails before any change: unknown dataset, retention below policy, missing secret."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml


def _converge(tmp_path, extra: dict) -> subprocess.CompletedProcess[str]:
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra), encoding="utf-8")
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=f"{project}/roles",
        ANSIBLE_ACTION_PLUGINS=f"{project}/playbooks/action_plugins",
        ANSIBLE_FILTER_PLUGINS=f"{project}/playbooks/filter_plugins",
        ANSIBLE_LOG_PATH="/dev/null",
        ANSIBLE_NOCOLOR="1",
    )
    return subprocess.run(
        ["ansible-playbook", "-i", f"{os.environ['MOLECULE_EPHEMERAL_DIRECTORY']}/inventory",
         f"{scenario}/converge.yml", "-e", f"@{extra_file}"],
        capture_output=True, text=True, env=env, cwd=project, check=False,
    )  # fmt: skip


def _establishment() -> dict:
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    with open(f"{scenario}/inventory/group_vars/all/establishment.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)["establishment"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"vault_rest_server_passwords": {"partages": "x", "dpi-postgresql": "y"}}, "vault_rest_server_passwords.imagerie"),
        ({"backup_server_datasets": ["partages", "radiologie"]}, "unknown dataset(s) radiologie"),
        ({"establishment": {**_establishment(), "retention": {"daily": 3, "monthly": 12, "yearly": 5}}}, "retention"),
    ],
    ids=["missing-secret", "unknown-dataset", "retention-below-policy"],
)  # fmt: skip
def test_bad_input_fails_before_any_change(tmp_path, extra, message):
    result = _converge(tmp_path, extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    for changed in re.findall(r"changed=(\d+)", output):
        assert changed == "0", output[-2000:]
