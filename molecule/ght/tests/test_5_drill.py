"""playbooks/drill.yml on the GHT: each establishment's drill restores its own repositories only, in its own
instance (user, unit, state), and its result lands in its own reports/<finess>/drills/ (BP100-OPS-11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATASET, ESTABLISHMENTS, playbook, snapshots, view

FIRST, OTHERS = ESTABLISHMENTS[0], ESTABLISHMENTS[1:]


def results_on_server(server, establishment) -> list[str]:
    return server.run(f"ls /var/lib/rempart-drill{establishment.suffix}/results").stdout.split()


@pytest.fixture(scope="module")
def drills(tmp_path_factory, server) -> dict[str, Path]:
    """One establishment's drill alone, then the two others' together: three report folders."""
    first, others = tmp_path_factory.mktemp("drill-first"), tmp_path_factory.mktemp("drill-others")
    alone = playbook("drill.yml", "--limit", f"localhost,{view(FIRST)}", "-e", f"rempart_reports_dir={first}")
    assert alone.returncode == 0, alone.stdout[-3000:] + alone.stderr[-2000:]
    # the first establishment's drill touched no other instance
    assert [results_on_server(server, e) for e in OTHERS] == [[] for _ in OTHERS]
    assert sorted(p.name for p in first.iterdir()) == [FIRST.finess]
    together = playbook(
        "drill.yml",
        "--limit",
        ",".join(["localhost", *(view(e) for e in OTHERS)]),
        "-e",
        f"rempart_reports_dir={others}",
    )
    assert together.returncode == 0, together.stdout[-3000:] + together.stderr[-2000:]
    assert sorted(p.name for p in others.iterdir()) == sorted(e.finess for e in OTHERS)
    return {FIRST.finess: first / FIRST.finess} | {e.finess: others / e.finess for e in OTHERS}


@pytest.mark.parametrize("establishment", ESTABLISHMENTS, ids=lambda e: e.group)
def test_each_drill_restores_its_own_establishments_data(drills, server, establishment) -> None:
    reports = sorted((drills[establishment.finess] / "drills").glob("*.json"))
    assert len(reports) == 1  # its own instance holds its own drills only
    assert [p.name for p in reports] == results_on_server(server, establishment)
    result = json.loads(reports[0].read_text())
    assert result["passed"] is True
    [dataset] = result["datasets"]
    assert dataset["dataset"] == DATASET and dataset["status"] == "passed"
    assert dataset["files_verified"] == 21 and dataset["files_failed"] == 0  # 20 documents + finess.txt
    own = {s["id"] for s in snapshots(server, establishment)}
    others = {s["id"] for e in ESTABLISHMENTS if e is not establishment for s in snapshots(server, e)}
    assert dataset["snapshot"] in own and dataset["snapshot"] not in others


@pytest.mark.parametrize("establishment", ESTABLISHMENTS, ids=lambda e: e.group)
def test_each_drill_ran_in_its_own_instance(drills, server, establishment) -> None:
    unit = f"rempart-drill{establishment.suffix}@.service"
    shown = server.check_output(f"systemctl cat {unit}")
    # root without secrets nor repositories; each restore runs as the establishment's user (restore_drill README)
    assert "\nUser=" not in shown
    assert f"REMPART_RESTORE_DRILL_CONFIG=/etc/rempart{establishment.suffix}/restore-drill.json" in shown
    assert (
        f"InaccessiblePaths=/etc/rempart{establishment.suffix}/secrets {establishment.repos_dir}\n" in shown
    )
    config = json.loads(server.check_output(f"cat /etc/rempart{establishment.suffix}/restore-drill.json"))
    assert config["server_user"] == establishment.user
    assert config["backup_config"] == f"/etc/rempart{establishment.suffix}/backup-server.json"
    assert config["results_dir"] == f"/var/lib/rempart-drill{establishment.suffix}/results"
    state = server.file(f"/var/lib/rempart-drill{establishment.suffix}")
    assert state.user == establishment.user and state.mode == 0o700
    assert server.service(f"rempart-drill{establishment.suffix}.timer").is_enabled
    metrics = server.file(
        f"/var/lib/prometheus/node-exporter/rempart-{establishment.finess}/rempart_drill.prom"
    )
    assert "rempart_drill_success 1" in metrics.content_string
    # the drill's user cannot open another establishment's repositories
    other = next(e for e in ESTABLISHMENTS if e is not establishment)
    denied = server.run(f"runuser -u {establishment.user} -- ls {other.repos_dir}/{DATASET}")
    assert denied.rc != 0 and "Permission denied" in denied.stderr
