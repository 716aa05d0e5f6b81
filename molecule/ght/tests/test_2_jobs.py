"""One job per establishment: each repository receives its own establishment's files, nothing else."""

from __future__ import annotations

import pytest
from conftest import DATASET, ESTABLISHMENTS, run_job, snapshots


@pytest.mark.parametrize("establishment", ESTABLISHMENTS, ids=lambda e: e.group)
def test_job_fills_the_establishments_own_repository(server, establishment) -> None:
    assert run_job(server, establishment) == 0
    found = snapshots(server, establishment)
    assert found and {s["hostname"] for s in found} == {establishment.client}
    dumped = server.check_output(
        f"rempart-backup-admin{establishment.suffix} restic {DATASET} dump --no-lock latest /srv/partages/finess.txt"
    )
    assert dumped.strip() == establishment.finess
    ledger = server.file(f"/var/lib/rempart{establishment.suffix}/ledger/{DATASET}.jsonl").content_string
    assert {s["id"] for s in found} <= {
        line.split('"id": "')[1][:64] for line in ledger.splitlines() if '"id": "' in line
    }
