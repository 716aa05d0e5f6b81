"""Restore drill (BP100-OPS-11 / R22, order R23): every dataset restored in a network-less sandbox, every file
checked against its job's manifest, the dump loaded into a scratch database and its rows counted; a bad
dataset name fails before any change."""

from __future__ import annotations

from conftest import SERVER

from rempart.results import Drill


def test_backups_exist(proof):
    for dataset in ("dpi-postgresql", "partages"):
        assert proof.job(dataset) in (0, 2), dataset


def test_drill_passes_and_writes_a_valid_result(proof):
    result = proof.playbook("drill.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    drill = Drill.model_validate(proof.last("drills"))
    assert drill.passed
    by_name = {d.dataset: d for d in drill.datasets}
    # restore order: partages depends on dpi-postgresql
    assert [d.dataset for d in drill.datasets] == ["dpi-postgresql", "partages"]
    dpi = by_name["dpi-postgresql"]
    assert dpi.files_verified == 1 and dpi.files_failed == 0
    assert dpi.rows_checked == 25000  # 5,000 patients + 20,000 stays, counted by the client at backup time
    assert proof.last("drills")["datasets"][0]["rows_source"].startswith("backup-time")
    partages = by_name["partages"]
    assert partages.files_verified == 160 and partages.files_failed == 0  # brouillon.tmp is excluded
    assert all(d.duration_s < d.rto_hours * 3600 for d in drill.datasets)
    assert proof.metric("rempart_drill_success") == 1
    # the drill ran without network, as the backup service user, and left nothing behind
    props = proof.server.run("systemctl show rempart-drill@probe.service -p PrivateNetwork -p User").stdout
    assert "PrivateNetwork=yes" in props and "User=rempart" in props
    assert proof.server.run("ls -A /var/lib/rempart-drill/work").stdout.strip() == ""
    assert proof.server.run("ss -Hltn").stdout.count(":5432") == 0


def test_unknown_dataset_fails_before_any_change(proof):
    before = proof.server.run("ls /var/lib/rempart-drill/requests").stdout
    result = proof.playbook("drill.yml", "-e", '{"restore_drill_datasets": ["dossiers-inconnus"]}')
    assert result.returncode != 0
    assert "restore_drill_datasets: unknown dataset(s) dossiers-inconnus" in result.stdout
    assert proof.server.run("ls /var/lib/rempart-drill/requests").stdout == before
    assert SERVER in result.stdout
