"""The offline-copy declaration (``establishment.offline_copy``): bad input named by key path, keys in the vault."""

from __future__ import annotations

from typing import Any

import pytest

from rempart.model.validation import load_valid, validate
from rempart.vault.layout import OFFLINE_MEDIA_KEYS, required_secrets


def _offline(data: dict[str, Any]) -> dict[str, Any]:
    data["offline_copy"] = {
        "rotation": {"every_days": 7, "media_count": 2, "offsite_count": 1},
        "media": [
            {"id": "disque-a", "serial": "SER-A"},
            {"id": "disque-b", "uuid": "0" * 8 + "-0000-4000-8000-" + "0" * 12},
        ],
    }
    return data["offline_copy"]


INVALID: list[tuple[str, str, Any, str, str]] = [
    ("medium without identity", "media.1", {"id": "disque-b"}, "offline_copy.media[1]", "ID_SERIAL_SHORT"),
    ("bad medium id", "media.0.id", "Disque A", "offline_copy.media[0].id", "pattern"),
    ("duplicate id", "media.1.id", "disque-a", "offline_copy.media[1].id", "duplicate id"),
    (
        "duplicate serial",
        "media.1",
        {"id": "disque-b", "serial": "SER-A"},
        "offline_copy.media[1].serial",
        "duplicate",
    ),
    ("uuid not a uuid", "media.1.uuid", "not-a-uuid", "offline_copy.media[1].uuid", "pattern"),
    ("rotation too slow", "rotation.every_days", 365, "offline_copy.rotation.every_days", "92"),
    ("one medium only", "rotation.media_count", 1, "offline_copy.rotation.media_count", "2"),
    ("all media off-site", "rotation.offsite_count", 2, "offline_copy.rotation", "at least one medium"),
    ("fewer media than the rotation", "rotation.media_count", 3, "offline_copy", "only 2 media"),
    ("typo", "rotation.every_day", 7, "offline_copy.rotation.every_day", "unknown key"),
]


@pytest.mark.parametrize(("case", "key", "value", "path", "hint"), INVALID, ids=[c[0] for c in INVALID])
def test_bad_offline_copy_is_named_by_key_path(establishment_data, case, key, value, path, hint):
    target: Any = _offline(establishment_data)
    *parents, last = key.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    _, violations = validate(establishment_data)
    matching = [v for v in violations if v.path == f"establishment.{path}"]
    assert matching, f"{case}: expected establishment.{path}, got {[str(v) for v in violations]}"
    assert any(hint in v.message for v in matching), [str(v) for v in matching]


def test_offline_copy_is_optional(establishment_data):
    establishment_data.pop("offline_copy", None)
    establishment = load_valid(establishment_data)
    assert establishment.offline_copy is None
    assert OFFLINE_MEDIA_KEYS not in required_secrets(establishment)


def test_each_medium_needs_its_luks_key_in_the_vault(establishment_data):
    _offline(establishment_data)
    needed = required_secrets(load_valid(establishment_data))
    assert needed[OFFLINE_MEDIA_KEYS] == {"disque-a": None, "disque-b": None}
    secrets = {variable: {key: "s" * 32 for key in keys} for variable, keys in needed.items()}
    del secrets[OFFLINE_MEDIA_KEYS]["disque-b"]
    _, violations = validate(establishment_data, None, secrets)
    assert [v.path for v in violations] == [f"{OFFLINE_MEDIA_KEYS}.disque-b"]
