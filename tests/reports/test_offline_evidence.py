"""The offline column of the 3-2-1-1-0 table comes from the backup server's offline ledger (roles/offline_copy):
no record, no offline copy; a record proven detached within the rotation policy, "conforme"; too old, not."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from test_evidence import dataset, generate, requirement

DATASETS = ("dpi-postgresql", "partages", "classeur-degrade")


def write_ledger(results: Path, offline_at: datetime | None, medium: str = "lab-disque-a") -> None:
    """As rempart_offline_copy.py writes it: one verified entry per dataset, then the moment it went offline."""
    copied = (offline_at or datetime.now().astimezone()).timestamp() - 5
    lines = [
        {"event": "refused", "at": copied - 600, "device": "sdc", "why": "no declared medium", "serial": "X"}
    ]
    lines += [
        {"event": "offline-copy", "dataset": name, "medium": medium, "device": "sdb", "started": copied - 60,
         "copied": copied, "at": copied, "offline_at": offline_at.timestamp() if offline_at else None,
         "detach": "scsi-deleted" if offline_at else "unsupported", "verified": True, "snapshots": 2,
         "latest_snapshot": "4f1c2a9b" + "0" * 56, "repository_sha256": "ab" * 32, "read_data": "100%"}
        for name in DATASETS
    ]  # fmt: skip
    path = results / "offline" / "ledger.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")


def test_without_offline_record_the_column_is_empty(inventory, results, now):
    html, document = generate(inventory, results, now)
    assert requirement(document, "BP100-OPS-02")["status"] == "non mesuré"
    assert dataset(document, "partages")["offline_since"] is None
    assert "support lab-disque-a" not in html


def test_a_recent_detached_copy_makes_the_offline_leg(inventory, results, now):
    write_ledger(results, now - timedelta(days=2))
    html, document = generate(inventory, results, now)
    partages = dataset(document, "partages")
    assert partages["offline_medium"] == "lab-disque-a"
    assert partages["offline_current"] is True
    assert partages["rule_32110"]["1 hors ligne ou immuable"] is True
    assert "support amovible hors ligne (lab-disque-a)" in partages["media"]
    assert requirement(document, "BP100-OPS-02")["status"] == "conforme"
    assert "rotation tous les 7 jours" in requirement(document, "BP100-OPS-02")["evidence"]
    assert "support lab-disque-a déconnecté le 28/11/2026" in html


def test_a_copy_older_than_the_rotation_is_not_conforming(inventory, results, now):
    write_ledger(results, now - timedelta(days=9))
    html, document = generate(inventory, results, now)
    assert dataset(document, "dpi-postgresql")["offline_current"] is False
    assert requirement(document, "BP100-OPS-02")["status"] == "non conforme"
    assert "(trop ancienne)" in html


def test_a_medium_never_proven_detached_is_no_offline_copy(inventory, results, now):
    write_ledger(results, None)
    _, document = generate(inventory, results, now)
    assert dataset(document, "partages")["offline_since"] is None
    assert requirement(document, "BP100-OPS-02")["status"] == "non conforme"
