"""roles/offline_copy's program, the parts that need no disk: which medium a device is, the rotation policy."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import rempart_offline_copy as offline

UUID_A = "6f1f3c2e-0b7a-4c1d-9a51-3b0d2f6e8a11"
DAY = 86400.0


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return {
        "media": [
            {"id": "disque-a", "serial": "SER-A", "uuid": UUID_A},
            {"id": "disque-b", "serial": "SER-B", "uuid": None},
        ],
        "rotation": {"every_days": 7, "media_count": 2, "offsite_count": 1},
        "datasets": {"dpi": {"criticality": "vital"}, "partages": {"criticality": "important"}},
        "state_dir": str(tmp_path / "state"),
        "metrics_dir": str(tmp_path / "metrics"),
        "stale_grace_hours": 12,
        "max_attached_minutes": 60,
        "alert_command": "",
    }


def luks(serial: str, uuid: str) -> dict[str, str]:
    return {"ID_SERIAL_SHORT": serial, "ID_FS_TYPE": "crypto_LUKS", "ID_FS_UUID": uuid}


def test_declared_serial_or_uuid_identifies_the_medium(config):
    assert offline.identify(config, luks("SER-A", UUID_A))["id"] == "disque-a"
    assert offline.identify(config, {"ID_SERIAL_SHORT": "SER-B"})["id"] == "disque-b"  # not enrolled yet


def test_unknown_device_is_no_medium(config):
    assert offline.identify(config, luks("VISITOR", "11111111-2222-4333-8444-555555555555")) is None


def test_serial_and_uuid_must_both_match_when_both_are_declared(config):
    with pytest.raises(offline.Refused, match="matches medium disque-a only in part"):
        offline.identify(config, luks("SER-A", "11111111-2222-4333-8444-555555555555"))


def copy(dataset: str, offline_at: float | None) -> dict[str, Any]:
    return {"event": "offline-copy", "dataset": dataset, "medium": "disque-a", "verified": True,
            "copied": (offline_at or time.time()) - 1, "offline_at": offline_at}  # fmt: skip


def metrics(config: dict[str, Any]) -> str:
    return (Path(config["metrics_dir"]) / "rempart_offline.prom").read_text()


def test_fresh_copies_are_within_policy(config):
    offline.ledger(config).append([copy("dpi", time.time() - DAY), copy("partages", time.time() - DAY)])
    assert offline.status(config) == offline.EXIT_OK
    assert 'rempart_offline_copy_stale{dataset="dpi"} 0' in metrics(config)
    assert "\nrempart_offline_alerts 0\n" in metrics(config)


def test_copy_older_than_the_rotation_alerts(config, capsys):
    offline.ledger(config).append([copy("dpi", time.time() - 8 * DAY), copy("partages", time.time() - DAY)])
    assert offline.status(config) == offline.EXIT_FAILED
    assert 'rempart_offline_copy_stale{dataset="dpi"} 1' in metrics(config)
    assert 'rempart_offline_copy_stale{dataset="partages"} 0' in metrics(config)
    assert "dpi: newest offline copy is 8.0 days old (policy: every 7 days)" in capsys.readouterr().err


def test_copy_never_proven_offline_does_not_count(config):
    offline.ledger(config).append([copy("dpi", None), copy("partages", time.time())])
    assert offline.status(config) == offline.EXIT_FAILED
    assert 'rempart_offline_copy_stale{dataset="dpi"} 1' in metrics(config)


def test_records_of_devices_gone_from_the_kernel_are_dropped(config):
    offline.ledger(config).append([copy("dpi", time.time()), copy("partages", time.time())])
    gone = Path(config["state_dir"], "unknown", "sdzz9.json")
    gone.parent.mkdir(parents=True)
    gone.write_text(json.dumps({"device": "sdzz9", "since": time.time()}))
    assert offline.status(config) == offline.EXIT_OK
    assert not gone.exists()
    assert "\nrempart_offline_unknown_media_attached 0\n" in metrics(config)


def test_medium_attached_longer_than_a_job_alerts(config, capsys):
    offline.ledger(config).append([copy("dpi", time.time()), copy("partages", time.time())])
    present = sorted(p.name for p in Path("/sys/class/block").iterdir())[0]  # any disk this machine has
    record = Path(config["state_dir"], "attached", "disque-b.json")
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"medium": "disque-b", "device": present, "since": time.time() - 2 * 3600}))
    assert offline.status(config) == offline.EXIT_FAILED
    assert 'rempart_offline_medium_attached_too_long{medium="disque-b"} 1' in metrics(config)
    assert f"medium disque-b attached on /dev/{present} for too long" in capsys.readouterr().err
