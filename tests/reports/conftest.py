"""Result files as jobs and drills write them, for a report to be computed from."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, default=str, indent=1))


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def inventory(tmp_path: Path, project: Path) -> Path:
    folder = tmp_path / "inventory"
    shutil.copytree(project / "inventories/lab", folder, ignore=shutil.ignore_patterns("vault.yml"))
    return folder


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """reports/<finess>/ with two days of backups, a passed drill, a ransomware drill, scores, offsite check."""
    folder = tmp_path / "reports" / "340999903"
    for dataset, minutes in (("dpi-postgresql", 3.0), ("partages", 7.5)):
        jobs = []
        for index in range(6):
            started = NOW - timedelta(hours=6 + 8 * (5 - index))
            jobs.append(
                {
                    "started": started.isoformat(),
                    "finished": (started + timedelta(minutes=minutes)).isoformat(),
                    "duration_s": minutes * 60 + index,
                    "status": "success",
                    "bytes_added": 1000 * index,
                    "anomaly": False,
                }
            )
        write(folder / "backups" / f"{dataset}.json", {"dataset": dataset, "jobs": jobs, "prune_hold": False})
    drill_end = NOW - timedelta(hours=2)
    write(
        folder / "drills" / "2026-11-30T10-00.json",
        {
            "kind": "restore",
            "started": (drill_end - timedelta(minutes=20)).isoformat(),
            "finished": drill_end.isoformat(),
            "datasets": [
                {"dataset": "dpi-postgresql", "status": "passed", "files_verified": 1, "rows_checked": 5400,
                 "duration_s": 540.0, "rto_hours": 4},
                {"dataset": "partages", "status": "passed", "files_verified": 812, "duration_s": 660.0, "rto_hours": 24},
            ],
        },
    )  # fmt: skip
    write(
        folder / "ransomware" / "2026-11-30T09-00.json",
        {
            "started": (NOW - timedelta(hours=3)).isoformat(),
            "finished": (NOW - timedelta(hours=2, minutes=30)).isoformat(),
            "attempts": [
                {"actor": "root@dpi-db-01", "action": "restic forget --prune", "outcome": "refused"},
                {"actor": "root@files-01", "action": "HTTP DELETE data pack", "outcome": "refused"},
                {
                    "actor": "offsite writer",
                    "action": "delete markers on every object",
                    "outcome": "recovered",
                },
            ],
            "files_lost": 0,
            "rows_lost": 0,
            "restore_time_s": 900,
            "status": "passed",
        },
    )
    write(
        folder / "hardening" / "backup-01.json",
        {"host": "backup-01", "level": "enhanced", "profile": "anssi_bp28_enhanced", "pass": 180, "fail": 20,
         "notapplicable": 40, "scanned_at": NOW.isoformat()},
    )  # fmt: skip
    write(
        folder / "offsite" / "verify.json",
        {
            "bucket": "rempart-340999903-offsite",
            "checked_at": NOW.isoformat(),
            "compliant": True,
            "findings": [],
        },
    )
    return folder
