"""Each invalid establishment is rejected with the offending key path; valid ones pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rempart.model.dependencies import restore_order
from rempart.model.inventory import inventory_hosts, load_establishment_data
from rempart.model.validation import EstablishmentInvalid, load_valid, validate
from rempart.vault.layout import required_secrets

LAB_HOSTS = {"backup-01", "dpi-db-01", "files-01", "station-01"}
SECRETS = {
    "vault_repository_passwords": {"dpi-postgresql": "x" * 20, "partages": "y" * 20},
    "vault_rest_server_passwords": {"dpi-postgresql": "z" * 20, "partages": "w" * 20},
}

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]

    return mutate


INVALID: list[tuple[str, Mutation, str, str]] = [
    ("finess wrong key", _set("finess", "340999904"), "establishment.finess", "must be 3"),
    ("finess too short", _set("finess", "34099990"), "establishment.finess", "9 characters"),
    ("finess letters", _set("finess", "3A0999903"), "establishment.finess", "2A/2B"),
    ("finess as number", _set("finess", 340999903), "establishment.finess", "quote it"),
    ("finess missing", _delete("finess"), "establishment.finess", "required"),
    ("name missing", _delete("name"), "establishment.name", "required"),
    ("unknown top-level key", _set("finness", "x"), "establishment.finness", "valid keys here: finess"),
    ("daily retention below policy", _set("retention.daily", 3), "establishment.retention.daily", "policy"),
    ("monthly retention zero", _set("retention.monthly", 0), "establishment.retention.monthly", "policy"),
    ("yearly retention negative", _set("retention.yearly", -1), "establishment.retention.yearly", "policy"),
    ("retention typo", _set("retention.weekly", 4), "establishment.retention.weekly", "unknown key"),
    ("region outside EEA", _set("offsite.region", "us-east-1"), "establishment.offsite.region", "HDS-02"),
    ("region London", _set("offsite.region", "eu-west-2"), "establishment.offsite.region", "eu-west-3"),
    ("region Zurich", _set("offsite.region", "eu-central-2"), "establishment.offsite.region", "EEA"),
    ("unknown provider", _set("offsite.provider", "gcp"), "establishment.offsite.provider", "'aws'"),
    (
        "offsite retention 7 days",
        _set("offsite.retention_days", 7),
        "establishment.offsite.retention_days",
        "14",
    ),
    (
        "offsite retention below daily",
        _set("offsite.retention_days", 14),
        "establishment.offsite.retention_days",
        "retention.daily",
    ),
    ("offsite missing", _delete("offsite"), "establishment.offsite", "required"),
    ("no datasets", _set("datasets", []), "establishment.datasets", "at least 1"),
    ("unknown kind", _set("datasets.0.kind", "oracle"), "establishment.datasets[0].kind", "'postgresql'"),
    (
        "bad criticality",
        _set("datasets.1.criticality", "high"),
        "establishment.datasets[1].criticality",
        "vital",
    ),
    ("rpo zero", _set("datasets.0.rpo_hours", 0), "establishment.datasets[0].rpo_hours", "PDMA"),
    ("rto missing", _delete("datasets.0.rto_hours"), "establishment.datasets[0].rto_hours", "required"),
    (
        "dataset name uppercase",
        _set("datasets.1.name", "Partages"),
        "establishment.datasets[1].name",
        "lowercase",
    ),
    (
        "relative path",
        _set("datasets.1.paths", ["srv/partages"]),
        "establishment.datasets[1].paths[0]",
        "absolute",
    ),
    ("files without paths", _set("datasets.1.paths", []), "establishment.datasets[1].paths", "absolute path"),
    (
        "postgresql without database",
        _delete("datasets.0.database"),
        "establishment.datasets[0].database",
        "dump",
    ),
    (
        "host not in inventory",
        _set("datasets.1.host", "files-02"),
        "establishment.datasets[1].host",
        "hosts.yml",
    ),
    (
        "duplicate dataset name",
        _set("datasets.1.name", "dpi-postgresql"),
        "establishment.datasets[1].name",
        "duplicate",
    ),
    (
        "unknown dependency",
        _set("datasets.1.depends_on", ["annuaire"]),
        "establishment.datasets[1].depends_on[0]",
        "unknown dataset",
    ),
    (
        "self dependency",
        _set("datasets.1.depends_on", ["partages"]),
        "establishment.datasets[1].depends_on[0]",
        "itself",
    ),
    (
        "dependency cycle",
        lambda d: (
            _set("datasets.0.depends_on", ["partages"])(d),
            _set("datasets.1.depends_on", ["dpi-postgresql"])(d),
        ),
        "establishment.datasets[0].depends_on",
        "cycle dpi-postgresql -> partages -> dpi-postgresql",
    ),
    ("dataset typo key", _set("datasets.0.rpo", 4), "establishment.datasets[0].rpo", "valid keys here: name"),
    (
        "recovery step of no duration",
        _set("datasets.0.recovery_steps", [{"step": "réinstallation du serveur", "hours": 0}]),
        "establishment.datasets[0].recovery_steps[0].hours",
        "greater than 0",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "path", "hint"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_establishment_is_rejected_with_its_key_path(establishment_data, case, mutate, path, hint):
    mutate(establishment_data)
    _, violations = validate(establishment_data, LAB_HOSTS, SECRETS)
    matching = [v for v in violations if v.path == path]
    assert matching, f"{case}: expected a violation at {path}, got {[str(v) for v in violations]}"
    assert any(hint in v.message for v in matching), [str(v) for v in matching]


def test_at_least_25_invalid_cases():
    assert len(INVALID) >= 25


def test_missing_secret_names_the_variable(establishment_data):
    needed = required_secrets(load_valid(establishment_data))
    secrets = {variable: {key: "s" * 32 for key in keys} for variable, keys in needed.items()}
    del secrets["vault_repository_passwords"]["dpi-postgresql"]
    _, violations = validate(establishment_data, LAB_HOSTS, secrets)
    assert [v.path for v in violations] == ["vault_repository_passwords.dpi-postgresql"]
    assert "ansible-vault edit" in violations[0].message


def test_every_required_secret_is_checked(establishment_data):
    _, violations = validate(establishment_data, LAB_HOSTS, {})
    needed = required_secrets(load_valid(establishment_data))
    assert {v.path for v in violations} == {f"{var}.{key}" for var, keys in needed.items() for key in keys}


def test_not_a_mapping_is_rejected():
    _, violations = validate(["finess"])
    assert violations[0].path == "establishment"


def test_every_violation_is_reported_at_once(establishment_data):
    establishment_data["offsite"]["region"] = "us-east-1"
    establishment_data["retention"]["daily"] = 1
    _, violations = validate(establishment_data)
    assert {v.path for v in violations} == {"establishment.offsite.region", "establishment.retention.daily"}


@pytest.mark.parametrize("name", ["lab", "example-ch"])
def test_shipped_inventories_are_valid(project, name):
    folder = project / "inventories" / name
    establishment, violations = validate(load_establishment_data(folder), inventory_hosts(folder))
    assert violations == []
    assert establishment is not None


def test_load_valid_raises_with_every_violation(establishment_data):
    establishment_data["finess"] = "123"
    with pytest.raises(EstablishmentInvalid) as raised:
        load_valid(establishment_data)
    assert "establishment.finess" in str(raised.value)


def test_restore_order_puts_dependencies_first(project):
    model = load_valid(load_establishment_data(project / "inventories/example-ch"))
    order = restore_order(
        {d.name: d.depends_on for d in model.datasets}, {d.name: d.criticality for d in model.datasets}
    )
    assert order.index("dns") < order.index("annuaire") < order.index("dpi-postgresql")
    assert order.index("ntp") < order.index("annuaire")
    # among datasets ready together, the most critical comes first
    assert order.index("dpi-postgresql") < order.index("gam-mariadb") < order.index("partages")
    assert sorted(order) == sorted(d.name for d in model.datasets)
