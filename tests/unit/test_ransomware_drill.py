"""The ransomware drill's judgement (rempart/reports/ransomware_drill.py, roles/ransomware_drill): one test per step of the
attack, on the data that step registers, then the result record against rempart.reports.results.RansomwareDrill."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from rempart.reports import ransomware_drill as drill
from rempart.reports.results import RansomwareDrill

DATASETS = [
    {"name": "partages", "host": "files", "kind": "files", "paths": ["/srv/partages"]},
    {"name": "dpi-postgresql", "host": "db", "kind": "postgresql", "database": "dpi"},
    {"name": "pacs", "host": "pacs", "kind": "files", "paths": ["/srv/pacs"]},
    {"name": "dpi-mariadb", "host": "db", "kind": "mariadb", "database": "dpi"},
]


def registered(name: str, **result: Any) -> dict[str, Any]:
    """One item of a registered loop, as Ansible gives it."""
    return {"item": {"name": name}, **result}


def snapshots(*pairs: tuple[str, str], **extra: str) -> str:
    return json.dumps([{"id": i, "time": t, **extra} for i, t in pairs])


# --------------------------------------------------------------------------- prepare


def test_prepare_attacks_the_files_and_postgresql_datasets_of_the_attacked_hosts_only() -> None:
    attacked = drill.attacked_datasets(DATASETS, ["files", "db"])
    assert [d["name"] for d in attacked] == ["partages", "dpi-postgresql"]  # no mariadb, not pacs
    assert drill.foreign_hosts(["files", "printer"], DATASETS) == ["printer"]
    # every dataset keeps its rank in the inventory, attacked or not (the backup server numbers them so)
    plan = {"partages": {"tunnel_port": 18100, "schedule": "x"}, "dpi-postgresql": {"tunnel_port": 18101}}
    assert drill.tunnel_ports(plan) == {
        "partages": 18100,
        "dpi-postgresql": 18101,
    }  # from the establishment's plan


def test_baseline_gives_each_host_its_own_datasets_and_every_tunnel_port() -> None:
    ports = {"partages": 18100, "dpi-postgresql": 18101, "pacs": 18102, "dpi-mariadb": 18103}
    spec = drill.host_spec(
        drill.attacked_datasets(DATASETS, ["files", "db"]), "db", "10.0.0.5", ports, "8443"
    )
    assert spec["files"] == [] and [d["name"] for d in spec["databases"]] == ["dpi-postgresql"]
    assert spec["ports"] == ports and spec["rest_port"] == 8443 and spec["server"] == "10.0.0.5"
    assert spec["offsite_endpoint"] == "" and spec["offsite_bucket"] == ""


# --------------------------------------------------------------------------- backup (before the attack)


def test_backup_remembers_the_pre_attack_snapshots_oldest_first() -> None:
    before = drill.snapshots_by_dataset(
        [
            registered(
                "partages", stdout=snapshots(("b", "2026-12-06T10:00:00Z"), ("a", "2026-12-05T10:00:00Z"))
            ),
            registered("dpi-postgresql", stdout="[]"),
        ]
    )
    assert before == {"partages": ["a", "b"], "dpi-postgresql": []}  # "b", the newest, is the restore point


# --------------------------------------------------------------------------- jobs and retention (after the attack)


def ledger(*events: dict[str, Any]) -> dict[str, str]:
    text = "".join(json.dumps(e) + "\n" for e in events)
    return {"content": base64.b64encode(text.encode()).decode()}


def test_jobs_judge_what_is_missing_what_retention_forgot_the_checks_and_the_holds() -> None:
    before = {"partages": ["a", "b", "c"], "dpi-postgresql": ["d"]}
    repositories = drill.judge_repositories(
        before,
        [registered("partages", stdout=snapshots(("c", "t3"), ("x", "t4"))),
         registered("dpi-postgresql", stdout=snapshots(("d", "t1")))],
        [registered("partages", **ledger({"event": "forgotten", "ids": ["a"]}, {"event": "job", "ids": ["x"]})),
         registered("dpi-postgresql", **ledger())],
        [registered("partages", rc=0), registered("dpi-postgresql", rc=1)],
        json.dumps({"partages": {"hold": True}, "dpi-postgresql": {"hold": False}}),
    )  # fmt: skip
    assert repositories == {
        "missing": {"partages": ["a", "b"], "dpi-postgresql": []},
        "forgotten": {"partages": ["a"], "dpi-postgresql": []},
        "checks": {"partages": 0, "dpi-postgresql": 1},
        "holds": ["partages"],
    }
    verdict = drill.snapshots_verdict(before, repositories)
    assert verdict["vanished"] == ["b"] and verdict["rotated"] == ["a"]  # b deleted outside retention
    assert verdict["restore_points_kept"] and not verdict["all_kept"] and not verdict["checks_ok"]


def test_jobs_step_is_refused_recovered_or_succeeded_by_what_the_repositories_kept() -> None:
    before = {"partages": ["a", "b"]}

    def outcome(missing: list[str], forgotten: list[str]) -> str:
        repositories = {"missing": {"partages": missing}, "forgotten": {"partages": forgotten},
                        "checks": {"partages": 0}, "holds": []}  # fmt: skip
        verdict = drill.snapshots_verdict(before, repositories)
        return drill.jobs_attempt(["files"], verdict, repositories)["outcome"]

    assert outcome([], []) == "refused"
    assert outcome(["a"], ["a"]) == "recovered"  # rotated out by policy, the restore point kept
    assert outcome(["b"], ["b"]) == "succeeded"  # the restore point itself is gone
    assert outcome(["a"], []) == "succeeded"  # deleted outside retention


# --------------------------------------------------------------------------- encryption (restore and compare)


def test_encrypt_step_is_recovered_only_if_the_restore_lost_nothing() -> None:
    assert drill.encrypt_attempt(["files", "db"], 0, 0) == {
        "actor": "root@files, root@db",
        "action": "encrypt every file in place and drop the databases",
        "outcome": "recovered",
        "detail": "restored from the on-site repository: 0 file(s) and 0 row(s) lost",
    }
    assert drill.encrypt_attempt(["files"], 0, 1)["outcome"] == "succeeded"


# --------------------------------------------------------------------------- offsite attack and recovery


def test_offsite_prefix_is_the_repository_key_in_its_bucket() -> None:
    repositories = {"partages": "s3:https://s3.example:9000/rempart-340999903/onsite/partages",
                    "pacs": "s3:https://s3.example:9000/rempart-340999903/onsite/pacs"}  # fmt: skip
    assert drill.offsite_prefix(repositories["partages"], "rempart-340999903") == "onsite/partages"
    assert drill.offsite_prefixes(["partages", "dpi-postgresql"], repositories, "rempart-340999903") == [
        "onsite/partages"
    ]


def test_offsite_recovery_finds_the_copy_of_each_restore_point() -> None:
    before = {"partages": ["a", "b"], "dpi-postgresql": ["d"]}
    points = drill.offsite_restore_points(
        [registered("partages", stdout=json.dumps([{"id": "z", "time": "t", "original": "b"},
                                                   {"id": "y", "time": "t", "original": "a"}])),
         registered("dpi-postgresql", stdout=json.dumps([{"id": "w", "time": "t"}]))],
        before,
    )  # fmt: skip
    assert points == {"partages": ["z"], "dpi-postgresql": []}
    assert drill.lacking(points) == ["dpi-postgresql"]


def test_offsite_attack_hidden_objects_are_recovered_only_if_the_offsite_restore_lost_nothing() -> None:
    result = {"attempts": [{"actor": "w", "action": "delete every current object", "outcome": "recovered"},
                           {"actor": "w", "action": "delete the bucket", "outcome": "refused"}]}  # fmt: skip
    assert [a["outcome"] for a in drill.offsite_attempts(result, 0)] == ["refused", "recovered"]
    assert [a["outcome"] for a in drill.offsite_attempts(result, 3)] == ["refused", "succeeded"]


# --------------------------------------------------------------------------- record


def comparison(files_lost: int = 0, rows_lost: int = 0) -> str:
    return json.dumps(
        {"files_lost": files_lost, "rows_lost": rows_lost, "files_total": 80, "rows_total": 12500}
    )


def steps(**changes: Any) -> dict[str, Any]:
    attack = [
        {
            "actor": "root@files",
            "action": "HTTP DELETE partages/config",
            "outcome": "refused",
            "detail": "403",
        }
    ]
    inflight = [{"actor": "root@files (stolen)", "action": "restic forget --prune", "outcome": "refused",
                 "detail": "2 snapshot(s) still listed"}]  # fmt: skip
    offsite = {"attempts": [{"actor": "writer key", "action": "delete every current object of b",
                             "outcome": "recovered", "detail": "4 object(s) hidden"},
                            {"actor": "writer key", "action": "delete the bucket", "outcome": "refused",
                             "detail": "AccessDenied"}],
               "objects_hidden": 4, "versions_tried": 4, "versions_deleted": 0}  # fmt: skip
    base = {
        "started": "2026-12-06T10:00:00+00:00",
        "finished": "2026-12-06T10:20:00+00:00",
        "victims": ["files", "db"],
        "before": {"partages": ["a", "b"], "dpi-postgresql": ["d"]},
        "repositories": {
            "missing": {"partages": [], "dpi-postgresql": []},
            "forgotten": {"partages": [], "dpi-postgresql": []},
            "checks": {"partages": 0, "dpi-postgresql": 0},
            "holds": ["partages"],
        },
        "attacks": [json.dumps(attack), "[]"],
        "inflight": [json.dumps({"attempts": inflight}), json.dumps({"attempts": []})],
        "comparisons": [comparison(), comparison()],
        "restore_started": 100.0,
        "restore_stopped": 142.34,
        "offsite_ready": True,
        "offsite_result": json.dumps(offsite),
        "offsite_comparisons": [comparison(), comparison()],
        "offsite_bucket": "b",
        "offsite_before": "2026-12-06T10:10:00.123456+00:00",
        "offsite_started": 142.34,
        "offsite_stopped": 200.0,
    }
    return {**base, **changes}


def test_record_of_a_drill_that_lost_nothing_passes_and_loads() -> None:
    result = drill.record(steps())
    loaded = RansomwareDrill.model_validate(result)
    assert loaded.status == "passed" and result["restore_time_s"] == 42.3
    assert result["files_checked"] == 160 and result["rows_checked"] == 25000
    assert [a["outcome"] for a in result["attempts"]] == ["refused", "refused", "refused", "recovered",
                                                          "recovered", "refused"]  # fmt: skip
    offsite = result["offsite"]
    assert offsite["status"] == "passed" and offsite["attempts"] == 2 and offsite["refused"] == 1
    assert offsite["objects_hidden"] == 4 and offsite["restore_time_s"] == 57.7
    assert drill.summary(result).startswith("ransomware drill passed: 6 attempts")


def test_record_without_an_offsite_bucket_says_why_the_leg_did_not_run() -> None:
    result = drill.record(steps(offsite_ready=False, offsite_result="{}", offsite_comparisons=["{}", "{}"]))
    assert result["status"] == "passed" and result["offsite"].startswith("not run: ")
    assert RansomwareDrill.model_validate(result).offsite == result["offsite"]


@pytest.mark.parametrize(
    ("changes", "succeeded"),
    [
        ({"comparisons": [comparison(files_lost=1), comparison()]}, "encrypt every file"),
        (
            {
                "repositories": {
                    "missing": {"partages": ["b"]},
                    "forgotten": {"partages": []},
                    "checks": {"partages": 0},
                    "holds": [],
                }
            },
            "HTTP DELETE",
        ),
        ({"offsite_comparisons": [comparison(rows_lost=2), comparison()]}, "delete every current object"),
    ],
)
def test_record_fails_the_drill_when_a_step_lost_data(changes: dict[str, Any], succeeded: str) -> None:
    result = drill.record(steps(**changes))
    assert result["status"] == "failed"
    assert any(a["outcome"] == "succeeded" and a["action"].startswith(succeeded) for a in result["attempts"])
    assert drill.summary(result).startswith("RANSOMWARE DRILL FAILED")


def test_record_fails_the_drill_when_a_repository_check_fails() -> None:
    repositories = {"missing": {"partages": []}, "forgotten": {"partages": []}, "checks": {"partages": 1},
                    "holds": []}  # fmt: skip
    assert drill.record(steps(repositories=repositories))["status"] == "failed"
