"""The snapshot every restore, drill and copy uses (issue 15, item 2): the newest TRUSTED one, never `latest`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2] / "roles/backup_server/files/rempart_backup_server")
)

from rempart_backup_server.trust import newest_trusted, resolve, trusted_ids

DAY = 86400.0
T0 = 1_796_000_000.0  # 2026-11-30


def snap(sid: str, arrived: float, **extra) -> dict:
    return {"event": "snapshot", "id": sid, "arrived": arrived, "admitted": True, "trusted": True, "anomaly": [],
            **extra}  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> dict:
    (tmp_path / "ledger").mkdir()
    return {"state_dir": str(tmp_path)}


def write(config: dict, entries: list[dict], hold: float | None = None) -> None:
    state = Path(config["state_dir"])
    (state / "ledger" / "dpi.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    if hold is not None:
        (state / "holds").mkdir(exist_ok=True)
        (state / "holds" / "dpi.json").write_text(json.dumps({"since": hold, "reasons": ["x"]}))


def test_newest_trusted_skips_untrusted_anomalous_unadmitted_forgotten_and_quarantined(config):
    write(config, [
        snap("a" * 64, T0),
        snap("b" * 64, T0 + DAY),
        snap("c" * 64, T0 + 2 * DAY, anomaly=["mass-change"]),
        snap("d" * 64, T0 + 3 * DAY, trusted=False),
        snap("e" * 64, T0 + 4 * DAY, admitted=False),
        {"event": "snapshot", "id": "f" * 64, "arrived": T0 + 5 * DAY, "trusted": True},  # before admission
        snap("1" * 64, T0 + 6 * DAY),
        {"event": "quarantine", "files": ["snapshots/" + "1" * 64]},
        snap("2" * 64, T0 + 7 * DAY),
        {"event": "forgotten", "ids": ["2" * 64]},
    ])  # fmt: skip
    assert newest_trusted(config, "dpi") == "b" * 64


def test_copies_carry_every_trusted_snapshot_oldest_first_and_nothing_after_a_hold(config):
    """What the offsite and offline copies pass to restic copy (they run on the backup server, same ledger)."""
    write(config, [snap("b" * 64, T0 + DAY), snap("a" * 64, T0), snap("c" * 64, T0 + 2 * DAY, anomaly=["x"]),
                   snap("d" * 64, T0 + 3 * DAY), snap("e" * 64, T0 + 4 * DAY)], hold=T0 + 4 * DAY)  # fmt: skip
    assert trusted_ids(config["state_dir"], "dpi") == ["a" * 64, "b" * 64, "d" * 64]
    assert trusted_ids(config["state_dir"], "unknown") == []


def test_nothing_newer_than_an_unresolved_hold_is_trusted(config):
    write(config, [snap("a" * 64, T0), snap("b" * 64, T0 + DAY)], hold=T0 + DAY)
    assert newest_trusted(config, "dpi") == "a" * 64
    write(config, [snap("b" * 64, T0 + DAY)], hold=T0)
    assert newest_trusted(config, "dpi") is None
    with pytest.raises(LookupError, match="no trusted snapshot"):
        resolve(config, "dpi", None)


def test_snapshot_option_takes_an_id_a_prefix_or_a_time_never_latest(config):
    write(
        config, [snap("ab" * 32, T0), snap("cd" * 32, T0 + DAY), snap("ce" * 32, T0 + 2 * DAY, trusted=False)]
    )
    assert resolve(config, "dpi", None) == "cd" * 32
    assert resolve(config, "dpi", "abababab") == "ab" * 32
    assert resolve(config, "dpi", "ce" * 32) == "ce" * 32  # an admin may name an admitted, untrusted one
    assert resolve(config, "dpi", "2026-11-30T12:00:00Z") == "ab" * 32
    assert resolve(config, "dpi", "2026-12-31") == "cd" * 32
    for bad, message in (("latest", "latest"), ("c", "not a snapshot id"), ("cdcdcdcd" * 8 + "0", "not a"),
                         ("2020-01-01", "no trusted snapshot arrived by"), ("9" * 8, "0 admitted")):  # fmt: skip
        with pytest.raises(LookupError, match=message):
            resolve(config, "dpi", bad)
