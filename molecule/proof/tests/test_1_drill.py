"""Restore drill (BP100-OPS-11 / R22, order R23): every dataset restored in a network-less sandbox with only its own
credential, every file checked against its job's manifest, the PostgreSQL and MariaDB dumps loaded as data by a
non-superuser into throw-away servers in a secret-less DynamicUser unit, their rows counted; a bad dataset name
fails before any change."""

from __future__ import annotations

import json

from conftest import SERVER

from rempart.reports.results import Drill


def test_backups_exist(proof):
    for dataset in ("dpi-postgresql", "partages", "gam-mariadb"):
        assert proof.job(dataset) in (0, 2), dataset


def ledger_entry(proof, dataset: str, snapshot: str) -> dict:
    lines = proof.server.check_output(f"cat /var/lib/rempart/ledger/{dataset}.jsonl").splitlines()
    return next(e for e in map(json.loads, lines) if e.get("id") == snapshot)


def test_drill_passes_and_writes_a_valid_result(proof):
    result = proof.playbook("drill.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    drill = Drill.model_validate(proof.last("drills"))
    assert drill.passed
    by_name = {d.dataset: d for d in drill.datasets}
    raw = {d["dataset"]: d for d in proof.last("drills")["datasets"]}
    # restore order: partages depends on dpi-postgresql, the vital one comes first
    order = [d.dataset for d in drill.datasets]
    assert sorted(order) == ["dpi-postgresql", "gam-mariadb", "partages"] and order[0] == "dpi-postgresql"
    dpi = by_name["dpi-postgresql"]
    assert dpi.files_verified == 1 and dpi.files_failed == 0
    assert dpi.rows_checked == 25000  # 5,000 patients + 20,000 stays
    entry = ledger_entry(proof, "dpi-postgresql", raw["dpi-postgresql"]["snapshot"])
    expected_source = "server:" if entry.get("server_rows") is not None else "client-asserted:"
    assert raw["dpi-postgresql"]["rows_source"].startswith(expected_source)
    gam = by_name["gam-mariadb"]
    assert gam.status == "passed" and gam.files_verified == 1
    assert gam.rows_checked == 6000  # 3,000 admissions + 3,000 journal rows written by the trigger
    assert raw["gam-mariadb"]["load"]["skipped"]["definer_clauses"] >= 2  # the trigger's and the view's
    for name in ("dpi-postgresql", "gam-mariadb"):
        sandbox = raw[name]["load"]["sandbox"]  # measured from inside the loading unit
        assert sandbox["uid"] >= 61184 and sandbox["interfaces"] == ["lo"], sandbox
        assert sandbox["readable_forbidden_paths"] == [], sandbox
    assert raw["dpi-postgresql"]["load"]["skipped"]["ownership_and_privileges"] >= 2
    partages = by_name["partages"]
    assert partages.files_verified == 160 and partages.files_failed == 0  # brouillon.tmp is excluded
    assert all(d.duration_s < d.rto_hours * 3600 for d in drill.datasets)
    assert proof.metric("rempart_drill_success") == 1
    # the drill unit holds no secret and sees no repository; nothing is left behind, nothing listens
    props = proof.server.run(
        "systemctl show rempart-drill@probe.service -p PrivateNetwork -p InaccessiblePaths -p User"
    ).stdout
    assert "PrivateNetwork=yes" in props and "/etc/rempart/secrets" in props and "/srv/rempart/repos" in props
    assert proof.server.run("ls -A /var/lib/rempart-drill/work").stdout.strip() == ""
    assert proof.server.run("ss -Hltn").stdout.count(":5432") == 0


def test_unknown_dataset_fails_before_any_change(proof):
    before = proof.server.run("ls /var/lib/rempart-drill/requests").stdout
    result = proof.playbook("drill.yml", "-e", '{"restore_drill_datasets": ["dossiers-inconnus"]}')
    assert result.returncode != 0
    assert "restore_drill_datasets: unknown dataset(s) dossiers-inconnus" in result.stdout
    assert proof.server.run("ls /var/lib/rempart-drill/requests").stdout == before
    assert SERVER in result.stdout
