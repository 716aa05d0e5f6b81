"""Bad input fails before any change: unknown dataset, retention below policy, missing secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from refusal import assert_refused, converge


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
        ({"hardening_firewall_input_policy": "block"}, "hardening_firewall_input_policy must be one of: drop, accept"),
    ],
    ids=["missing-secret", "unknown-dataset", "retention-below-policy", "unknown-firewall-policy"],
)  # fmt: skip
def test_bad_input_fails_before_any_change(tmp_path, extra, message):
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    inventory = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
    assert_refused(converge(scenario / "converge.yml", inventory, extra, tmp_path), message)
