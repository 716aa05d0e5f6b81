"""Secrets never in the converge output nor in the copy's journal; bad input fails before any change, naming
the variable."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from conftest import COPY_UNIT


def _secrets(lab) -> list[str]:
    values = [
        lab.vars["vault_offsite_writer_secret_access_key"],
        lab.vars["vault_offsite_restore_secret_access_key"],
    ]
    values += list(lab.vars["vault_repository_passwords"].values())
    return values


def test_secrets_never_appear_in_the_converge_output_nor_the_journal(lab):
    with open(
        os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ansible.log"), encoding="utf-8"
    ) as handle:
        text = handle.read()
    assert "offsite_copy" in text  # the log does hold the converge
    journal = lab.server.run(f"journalctl -u {COPY_UNIT} --no-pager").stdout
    metrics = lab.server.run("cat /var/lib/prometheus/node-exporter/rempart_offsite_*.prom").stdout
    for value in _secrets(lab):
        assert value not in text, "a secret leaked into the converge output"
        assert value not in journal and value not in metrics


def _offsite_only(tmp_path, extra: dict) -> subprocess.CompletedProcess[str]:
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra), encoding="utf-8")
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=f"{project}/roles",
        ANSIBLE_LOG_PATH="/dev/null",
        ANSIBLE_NOCOLOR="1",
    )
    return subprocess.run(
        ["ansible-playbook", "-i", f"{os.environ['MOLECULE_EPHEMERAL_DIRECTORY']}/inventory",
         f"{scenario}/offsite_only.yml", "-e", f"@{extra_file}"],
        capture_output=True, text=True, env=env, cwd=project, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"vault_offsite_writer_secret_access_key": ""}, "offsite_copy_writer_secret_access_key"),
        ({"offsite_region": "us-east-1"}, "offsite_copy_region (offsite_region) us-east-1 is not an EEA region"),
        ({"offsite_copy_datasets": ["partages", "radiologie"]}, "unknown dataset(s) radiologie"),
        ({"offsite_restic_repositories": {"partages": "s3:elsewhere/other-bucket/partages"}}, "offsite_restic_repositories"),
    ],
    ids=["missing-writer-secret", "region-outside-eea", "unknown-dataset", "repository-outside-bucket"],
)  # fmt: skip
def test_bad_input_fails_before_any_change(tmp_path, extra, message):
    result = _offsite_only(tmp_path, extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output, output[-3000:]
    for changed in re.findall(r"changed=(\d+)", output):
        assert changed == "0", output[-2000:]
