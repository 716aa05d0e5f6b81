"""A dropped database is an attack too (BP100-OPS-10 / R21): its dump shrinks to a header and nothing is
"added", so the change, entropy and volume rules stay silent; the shrink rules (dump size, rows and tables
counted in the dump vs the recent median) raise the anomaly, the alert and the prune hold. A normal day of
inserts and deletes does not."""

from __future__ import annotations

import subprocess

from conftest import DB, SERVER

DATASET = "dpi-postgresql"
PSQL = "runuser -u postgres -- psql -qtA -v ON_ERROR_STOP=1"
COUNTS = "SELECT (SELECT count(*) FROM patients) || '|' || (SELECT count(*) FROM sejours)"


def test_a_normal_day_of_changes_does_not_fire(lab):
    lab.db.check_output(
        f'{PSQL} -d dpi -c "INSERT INTO patients (ipp, nom, naissance) '
        "SELECT 'IPP9' || lpad(g::text, 7, '0'), md5(g::text), date '1990-01-01' FROM generate_series(1, 50) g; "
        'DELETE FROM sejours WHERE id % 500 = 0"'
    )
    assert lab.job(DATASET) == 0, lab.server.run(f"journalctl -u rempart-backup@{DATASET} -n 20").stdout
    assert lab.metric("rempart_backup_anomaly", DATASET) == 0
    assert lab.metric("rempart_prune_hold", DATASET) == 0
    stats = lab.ledger(DATASET)[-1]["stats"]
    assert stats["tables"] == 2 and stats["tables_lost"] == 0 and stats["rows"] == 5050 + 19960


def test_dropped_database_triggers_anomaly_alert_and_prune_hold(lab, tmp_path):
    good = lab.ledger(DATASET)[-1]["id"]
    before = lab.db.check_output(f'{PSQL} -d dpi -c "{COUNTS}"')
    # the attacker drops the database and leaves an empty one in its place: pg_dump still succeeds
    lab.db.check_output("runuser -u postgres -- dropdb dpi && runuser -u postgres -- createdb dpi")
    count = len(lab.snapshots(DATASET))
    try:
        assert lab.job(DATASET) == 2  # the (empty) dump is stored, the unit fails loudly
        assert len(lab.snapshots(DATASET)) == count + 1
        hold = lab.server.file(f"/var/lib/rempart/holds/{DATASET}.json")
        assert hold.exists
        reasons = hold.content_string
        assert "shrink" in reasons and "rows-lost" in reasons and "tables-lost: 2 of 2" in reasons
        assert lab.metric("rempart_backup_anomaly", DATASET) == 1
        assert lab.metric("rempart_prune_hold", DATASET) == 1
        journal = lab.server.run("journalctl -n 200 --no-pager").stdout
        assert f"PRUNE HOLD on {DATASET}" in journal
        assert "rempart-alert" in journal and "tables-lost" in journal  # backup_server_alert_command ran
        # retention does nothing while the hold stands: the last good dumps cannot age out
        assert lab.server.run(f"systemctl start rempart-retention@{DATASET}.service").rc == 0
        assert lab.metric("rempart_retention_skipped_hold", DATASET) == 1
        assert good in lab.ids(DATASET)
    finally:  # recovery: the database comes back from the last good snapshot
        lab.server.check_output(
            f"rempart-backup-admin restic {DATASET} dump {good} /dpi.sql > /tmp/dpi-good.sql"
        )
        local = tmp_path / "dpi-good.sql"
        subprocess.run(["podman", "cp", f"{SERVER}:/tmp/dpi-good.sql", str(local)], check=True)
        subprocess.run(["podman", "cp", str(local), f"{DB}:/tmp/dpi-good.sql"], check=True)
        lab.db.check_output(
            "runuser -u postgres -- dropdb --if-exists dpi && runuser -u postgres -- createdb dpi"
        )
        lab.db.check_output(f"{PSQL} -d dpi -f /tmp/dpi-good.sql")
    assert lab.db.check_output(f'{PSQL} -d dpi -c "{COUNTS}"') == before
    lab.server.check_output(
        f"rempart-backup-admin clear-hold {DATASET} --by test --reason 'drill: database restored'"
    )
    assert lab.metric("rempart_prune_hold", DATASET) == 0
    assert lab.job(DATASET) == 0  # the restored database is back to its usual size: no anomaly
    assert lab.metric("rempart_backup_anomaly", DATASET) == 0
