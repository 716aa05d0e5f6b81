"""Secrets never in the converge output nor in the copy's journal; bad input fails before any change, naming
the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import COPY_UNIT
from refusal import assert_refused, converge


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


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"vault_offsite_writer_secret_access_key": ""}, "offsite_copy_writer_secret_access_key"),
        ({"offsite_region": "us-east-1"}, "offsite_copy_region (offsite_region) us-east-1 is not an EEA region"),
        ({"offsite_copy_datasets": ["partages", "radiologie"]}, "unknown dataset(s) radiologie"),
        ({"offsite_restic_repositories": {"partages": "s3:elsewhere/other-bucket/partages"}}, "offsite_restic_repositories"),
        ({"offsite_retention_days": 45}, "the Pulumi stack outputs (offsite_retention_days 45,"),
    ],
    ids=["missing-writer-secret", "region-outside-eea", "unknown-dataset", "repository-outside-bucket",
         "stack-outputs-of-another-lock-period"],
)  # fmt: skip
def test_bad_input_fails_before_any_change(tmp_path, extra, message):
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    inventory = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
    assert_refused(converge(scenario / "offsite_only.yml", inventory, extra, tmp_path), message)
