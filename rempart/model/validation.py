"""Validation of an establishment, shared by Ansible (``rempart_validate`` action plugin, used by
``playbooks/validate.yml`` and the first play of every playbook), the ``rempart validate`` command and the
Pulumi program. Every violation names the offending key path and what would be valid."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from rempart.model.dependencies import find_cycle
from rempart.model.establishment import OFFSITE_MIN_RETENTION_DAYS, RETENTION_FLOOR, Establishment, Kind
from rempart.vault.layout import required_secrets

ROOT = "establishment"


@dataclass(frozen=True)
class Violation:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class EstablishmentInvalid(Exception):
    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        super().__init__("invalid establishment:\n" + "\n".join(f"  - {v}" for v in violations))


def _format_path(location: tuple[int | str, ...]) -> str:
    path = ROOT
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _model_at(location: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model class that holds the last element of ``location``."""
    model: Any = Establishment
    for part in location[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next(
            (a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


_HINTS = {
    "name": "lowercase letters, digits and dashes, starting with a letter (e.g. 'dpi-postgresql')",
    "database": "a database name such as 'dpi'",
    "paths": "absolute paths such as '/srv/partages'",
    "rpo_hours": "hours between 1 and 8760 (the PDMA of the dataset)",
    "rto_hours": "hours between 1 and 8760 (the DMIA of the dataset)",
    "retention_days": "days between 14 and 3650, and not fewer than retention.daily",
    "break_glass_role_arn": "an IAM role ARN such as 'arn:aws:iam::123456789012:role/rempart-break-glass'",
    "email": "mail addresses such as 'astreinte-informatique@ch-exemple.fr'",
    "sender": "a mail address such as 'rempart@ch-exemple.fr'",
    "expected_size_gib": "the repository's expected size in GiB (every retained snapshot), e.g. 250",
}


def _message(error: Mapping[str, Any]) -> str:
    location = tuple(error["loc"])
    kind = error["type"]
    field = next((p for p in reversed(location) if isinstance(p, str)), "")
    if kind == "missing":
        return f"required key missing: add '{location[-1]}'"
    if kind == "extra_forbidden":
        model = _model_at(location)
        valid = ", ".join(model.model_fields) if model else "see the documented keys"
        return f"unknown key '{location[-1]}' (a typo?); valid keys here: {valid}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    message = str(error["msg"])
    if field in RETENTION_FLOOR and location[0] == "retention":
        return (
            f"{message}: below Rempart's retention policy (minimum {RETENTION_FLOOR[field]}; "
            "ANSSI-BP-100 example: 15 daily, 12 monthly, 5 yearly)"
        )
    hint = _HINTS.get(field) if field != "name" or "datasets" in location else None
    return f"{message}: expected {hint}" if hint else message


def _datasets(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    datasets = data.get("datasets")
    return [d if isinstance(d, dict) else {} for d in datasets] if isinstance(datasets, list) else []


def _cross_checks(data: Mapping[str, Any], inventory_hosts: Collection[str] | None) -> list[Violation]:
    """Checks across fields, on the raw mapping so that they run even when a field is invalid."""
    violations: list[Violation] = []
    datasets = _datasets(data)
    names = {str(d.get("name")) for d in datasets if d.get("name")}
    seen: dict[str, int] = {}
    for index, dataset in enumerate(datasets):
        path = f"{ROOT}.datasets[{index}]"
        name, kind, host = dataset.get("name"), dataset.get("kind"), dataset.get("host")
        if name in seen:
            violations.append(
                Violation(
                    f"{path}.name",
                    f"duplicate dataset name {name!r} (also datasets[{seen[name]}]); names must be unique",
                )
            )
        if isinstance(name, str):
            seen.setdefault(name, index)
        if kind == Kind.files and not dataset.get("paths"):
            violations.append(
                Violation(f"{path}.paths", "a 'files' dataset needs at least one absolute path")
            )
        if kind in (Kind.postgresql, Kind.mariadb) and not dataset.get("database"):
            violations.append(
                Violation(f"{path}.database", f"a '{kind}' dataset needs 'database' (the name to dump)")
            )
        if inventory_hosts is not None and isinstance(host, str) and host and host not in inventory_hosts:
            violations.append(
                Violation(
                    f"{path}.host",
                    f"host {host!r} is not in the inventory; declare it in hosts.yml "
                    f"or use one of {', '.join(sorted(inventory_hosts))}",
                )
            )
        depends_on = dataset.get("depends_on") or []
        for position, dependency in enumerate(depends_on if isinstance(depends_on, list) else []):
            if dependency == name:
                violations.append(
                    Violation(f"{path}.depends_on[{position}]", "a dataset cannot depend on itself")
                )
            elif dependency not in names:
                violations.append(
                    Violation(
                        f"{path}.depends_on[{position}]",
                        f"unknown dataset {dependency!r}; known datasets: {', '.join(sorted(names))}",
                    )
                )
    graph = {
        str(d["name"]): [x for x in d.get("depends_on") or [] if x != d["name"]]
        for d in datasets
        if isinstance(d.get("name"), str) and isinstance(d.get("depends_on") or [], list)
    }
    if cycle := find_cycle(graph):
        index = next(i for i, d in enumerate(datasets) if d.get("name") == cycle[0])
        violations.append(
            Violation(
                f"{ROOT}.datasets[{index}].depends_on",
                f"dependency cycle {' -> '.join(cycle)}: no restore order exists; remove one dependency",
            )
        )
    violations += _offline_media_checks(data.get("offline_copy"))
    violations += _alert_override_checks(data.get("alerts"), names)
    offsite, retention = data.get("offsite"), data.get("retention") or {}
    if isinstance(offsite, dict) and isinstance(retention, dict):
        days, daily = offsite.get("retention_days"), retention.get("daily", 15)
        if (
            isinstance(days, int)
            and isinstance(daily, int)
            and days >= OFFSITE_MIN_RETENTION_DAYS
            and days < daily
        ):
            violations.append(
                Violation(
                    f"{ROOT}.offsite.retention_days",
                    f"{days} is shorter than retention.daily ({daily}): the offsite copy must keep at least "
                    "every daily backup",
                )
            )
    return violations


def _alert_override_checks(alerts: Any, names: Collection[str]) -> list[Violation]:
    """An override names a dataset of this establishment (a typo would silently keep the default thresholds)."""
    overrides = alerts.get("overrides") if isinstance(alerts, dict) else None
    if not isinstance(overrides, dict):
        return []
    return [
        Violation(
            f"{ROOT}.alerts.overrides.{name}",
            f"unknown dataset {name!r}; an override names a declared dataset: {', '.join(sorted(names))}",
        )
        for name in overrides
        if name not in names
    ]


def _offline_media_checks(offline: Any) -> list[Violation]:
    """Each medium's id, serial and LUKS UUID name one medium only (else an attached disk is ambiguous)."""
    media = offline.get("media") if isinstance(offline, dict) else None
    if not isinstance(media, list):
        return []
    violations: list[Violation] = []
    for key in ("id", "serial", "uuid"):
        seen: dict[str, int] = {}
        for index, medium in enumerate(media):
            value = medium.get(key) if isinstance(medium, dict) else None
            if not isinstance(value, str) or not value:
                continue
            if value in seen:
                violations.append(
                    Violation(
                        f"{ROOT}.offline_copy.media[{index}].{key}",
                        f"duplicate {key} {value!r} (also media[{seen[value]}]); each medium needs its own",
                    )
                )
            seen.setdefault(value, index)
    return violations


HARDENING_LEVEL_VARIABLE = "hardening_level"


def hardening_level_set_in_inventory(places: Collection[str]) -> list[Violation]:
    """The establishment is the one place a hardening level is declared: a group_vars/host_vars override is refused."""
    if not places:
        return []
    return [
        Violation(
            HARDENING_LEVEL_VARIABLE,
            f"set in the inventory ({', '.join(sorted(places))}); declare the level per host group in the "
            "establishment instead (establishment.hardening.<group>: none, minimal, intermediary or enhanced) "
            "and remove hardening_level",
        )
    ]


def plain(value: Any) -> Any:
    """Plain Python containers and scalars (Ansible hands over lazy, tagged subclasses)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool | None):
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def validate(
    data: Any,
    inventory_hosts: Collection[str] | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> tuple[Establishment | None, list[Violation]]:
    """Check an establishment mapping. ``inventory_hosts``/``secrets`` enable the checks that need them."""
    if not isinstance(data, Mapping):
        return None, [Violation(ROOT, "must be a mapping with finess, name, retention, offsite, datasets")]
    data = plain(data)
    establishment: Establishment | None = None
    violations: list[Violation] = []
    try:
        establishment = Establishment.model_validate(data)
    except ValidationError as error:
        violations = [Violation(_format_path(tuple(e["loc"])), _message(e)) for e in error.errors()]
    violations += _cross_checks(data, inventory_hosts)
    if establishment is not None and secrets is not None:
        violations += _missing_secrets(establishment, plain(secrets))
    return establishment, violations


def _missing_secrets(establishment: Establishment, secrets: Mapping[str, Any]) -> list[Violation]:
    return [
        Violation(
            f"{variable}.{key}",
            "missing secret: add it to the establishment's vault (ansible-vault edit group_vars/all/vault.yml) "
            "or let `rempart init-vault` generate it",
        )
        for variable, keys in required_secrets(establishment).items()
        for key in keys
        if not (secrets.get(variable) or {}).get(key)
    ]


def load_valid(
    data: Any,
    inventory_hosts: Collection[str] | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> Establishment:
    """The establishment, or :class:`EstablishmentInvalid` listing every violation."""
    establishment, violations = validate(data, inventory_hosts, secrets)
    if violations or establishment is None:
        raise EstablishmentInvalid(violations)
    return establishment
