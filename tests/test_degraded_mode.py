"""The degraded_mode section of the establishment (DEG-02, DEG-06) and its secrets."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rempart.model.degraded_mode import DegradedMode
from rempart.model.validation import load_valid, validate
from rempart.vault.secrets import DEGRADED_SECRETS_VARIABLE, init_vault, required_secrets

BASE = {
    "finess": "340999903",
    "name": "Centre hospitalier du Lab (fictif)",
    "offsite": {"provider": "aws", "region": "eu-west-3", "retention_days": 30},
    "datasets": [
        {"name": "dpi-postgresql", "host": "dpi-db-01", "kind": "postgresql", "database": "dpi",
         "criticality": "vital", "rpo_hours": 12, "rto_hours": 4},
        {"name": "partages", "host": "files-01", "kind": "files", "paths": ["/srv/partages"],
         "criticality": "important", "rpo_hours": 24, "rto_hours": 24},
    ],
}  # fmt: skip


def with_degraded(**section: object) -> dict:
    data = copy.deepcopy(BASE)
    data["degraded_mode"] = section
    return data


def violations(data: dict) -> dict[str, str]:
    _, found = validate(data)
    return {v.path: v.message for v in found}


def test_safe_defaults_twice_a_day():
    establishment = load_valid(BASE)
    mode = establishment.degraded_mode
    assert mode.export_times == ["06:30", "18:30"]
    assert mode.on_calendar == ["*-*-* 06:30:00", "*-*-* 18:30:00"]
    assert mode.effective_staleness_limit_hours == 14  # 12 h gap + 2 h margin
    assert mode.generations >= 2
    assert mode.export is None  # nothing exported until the establishment declares it


def test_hourly_is_allowed_and_times_are_sorted():
    mode = DegradedMode(export_times=[f"{h:02d}:05" for h in reversed(range(24))])
    assert mode.export_times[0] == "00:05" and len(mode.export_times) == 24
    assert mode.effective_staleness_limit_hours == 3


def test_declared_export_is_valid():
    data = with_degraded(export={"source": "dpi-postgresql"}, stations=[{"host": "station-01"}])
    establishment = load_valid(data)
    assert establishment.degraded_mode.export.source == "dpi-postgresql"


@pytest.mark.parametrize(
    ("section", "path", "words"),
    [
        ({"export_times": ["6h30"]}, "establishment.degraded_mode.export_times", "'HH:MM'"),
        ({"export_times": ["06:30", "07:00"]}, "establishment.degraded_mode.export_times", "at most hourly"),
        ({"export_times": ["06:30", "06:30"]}, "establishment.degraded_mode.export_times", "duplicates"),
        ({"export_times": []}, "establishment.degraded_mode.export_times", "at least 1"),
        ({"generations": 1}, "establishment.degraded_mode.generations", "greater than or equal to 2"),
        (
            {"export_times": ["06:00"], "staleness_limit_hours": 12},
            "establishment.degraded_mode",
            "at least 24",
        ),
        ({"exports_times": ["06:00"]}, "establishment.degraded_mode.exports_times", "valid keys here"),
        ({"export": {"source": "partages"}}, "establishment", "degraded_mode.export.source"),
        ({"export": {"source": "absent"}}, "establishment", "dpi-postgresql"),
        (
            {"export": {"source": "dpi-postgresql", "queries": {"census": "DELETE FROM patient"}}},
            "establishment.degraded_mode.export.queries",
            "read-only SELECT",
        ),
        (
            {"export": {"source": "dpi-postgresql", "queries": {"censu": "SELECT 1 FROM patient"}}},
            "establishment.degraded_mode.export.queries.censu.[key]",
            "census",
        ),
        ({"stations": [{"host": "s1"}, {"host": "s1"}]}, "establishment.degraded_mode", "more than once"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(section, path, words):
    found = violations(with_degraded(**section))
    assert path in found, found
    assert words in found[path], found[path]


def test_secrets_only_when_export_declared():
    assert DEGRADED_SECRETS_VARIABLE not in required_secrets(load_valid(BASE))
    needed = required_secrets(load_valid(with_degraded(export={"source": "dpi-postgresql"})))
    assert set(needed[DEGRADED_SECRETS_VARIABLE]) == {"signing_key", "storage_passphrase"}


def test_init_vault_generates_an_ed25519_signing_key(tmp_path: Path):
    from ansible.parsing.vault import VaultLib, VaultSecret

    inventory = tmp_path / "inv"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"hosts": {"dpi-db-01": None, "files-01": None, "station-01": None}}})
    )
    (inventory / "group_vars/all/establishment.yml").write_text(
        yaml.safe_dump({"establishment": with_degraded(export={"source": "dpi-postgresql"})})
    )
    password = tmp_path / "pw"
    added = init_vault(inventory, password)
    assert f"{DEGRADED_SECRETS_VARIABLE}.signing_key" in added
    vault_file = inventory / "group_vars/all/vault.yml"
    raw = vault_file.read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT") and b"PRIVATE KEY" not in raw
    vault = VaultLib([("default", VaultSecret(password.read_bytes().strip()))])
    values = yaml.safe_load(vault.decrypt(raw))[DEGRADED_SECRETS_VARIABLE]
    assert values["signing_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert len(values["storage_passphrase"]) >= 40
    # a second run keeps existing values
    assert init_vault(inventory, password) == []
