"""The ransomware drill's judgement on the control node (roles/ransomware_drill, playbooks/drill-ransomware.yml).

The role's tasks run the attack and the restores; everything they compute goes through these functions (exposed as
the filters of plugins/filter/rempart_ransomware.py): which datasets are attacked and through which tunnel ports,
the snapshots before and after the attack, which restore point the offsite recovery holds, and the result record
(rempart.reports.results.RansomwareDrill) with every attempt of every step and its outcome.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

ATTACKED_KINDS = ("files", "postgresql")
OFFSITE_NOT_RUN = (
    "not run: this inventory has no offsite bucket (offsite_bucket, offsite_endpoint, offsite_restic_repositories "
    "and the restore key come from `rempart offsite-outputs`, or `rempart-lab offsite up` in the lab)"
)


def _json(value: Any) -> Any:
    """A registered stdout (JSON text) or an already parsed value."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _flat(lists: Iterable[Iterable[Any]]) -> list[Any]:
    return [item for sub in lists for item in sub]


# --------------------------------------------------------------------------- step: prepare


def foreign_hosts(hosts: list[str], datasets: list[Mapping[str, Any]]) -> list[str]:
    """The attacked hosts that hold no dataset (the drill refuses them before any change)."""
    holders = {d["host"] for d in datasets}
    return [h for h in hosts if h not in holders]


def attacked_datasets(datasets: list[Mapping[str, Any]], hosts: list[str]) -> list[Mapping[str, Any]]:
    """The datasets the attacker destroys: files and PostgreSQL datasets of the attacked hosts."""
    return [d for d in datasets if d["host"] in hosts and d["kind"] in ATTACKED_KINDS]


def tunnel_ports(plan: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Each dataset's reverse-tunnel port, from the establishment's computed plan (Establishment.dataset_plan)."""
    return {name: int(item["tunnel_port"]) for name, item in plan.items()}


def host_spec(
    datasets: list[Mapping[str, Any]], host: str, server: str, ports: Mapping[str, int], rest_port: Any,
    offsite_endpoint: str = "", offsite_bucket: str = "",
) -> dict[str, Any]:  # fmt: skip
    """What the attacker program (files/rempart_ransomware.py) works on, on one attacked host."""
    mine = [d for d in datasets if d["host"] == host]
    return {
        "files": [d for d in mine if d["kind"] == "files"],
        "databases": [d for d in mine if d["kind"] == "postgresql"],
        "server": server,
        "ports": dict(ports),
        "rest_port": int(rest_port),
        "offsite_endpoint": offsite_endpoint,
        "offsite_bucket": offsite_bucket,
    }


# --------------------------------------------------------------------------- step: backup (before the attack)


def snapshot_ids(snapshots: Any) -> list[str]:
    """The ids of ``restic snapshots --json``, oldest first (the last is the restore point)."""
    return [s["id"] for s in sorted(_json(snapshots) or [], key=lambda s: s["time"])]


def snapshots_by_dataset(results: list[Mapping[str, Any]]) -> dict[str, list[str]]:
    """A loop of ``restic snapshots --json`` over datasets (registered results) as {dataset: ids oldest first}."""
    return {r["item"]["name"]: snapshot_ids(r["stdout"]) for r in results}


# --------------------------------------------------------------------------- step: jobs (after the attack)


def forgotten_by_policy(ledger: Any) -> list[str]:
    """The snapshot ids retention forgot by policy, from a dataset's ledger (JSON lines, or slurp's base64)."""
    text = ledger if isinstance(ledger, str) else base64.b64decode(ledger["content"]).decode()
    events = [json.loads(line) for line in text.split("\n") if line]
    return _flat(e["ids"] for e in events if e.get("event") == "forgotten")


def judge_repositories(
    before: Mapping[str, list[str]], after: list[Mapping[str, Any]], ledgers: list[Mapping[str, Any]],
    checks: list[Mapping[str, Any]], status: Any,
) -> dict[str, Any]:  # fmt: skip
    """The repositories after the attack, the in-job attack and retention: ``missing`` pre-attack snapshots per
    dataset, ``forgotten`` by retention per dataset (ledger), ``checks`` (restic check rc) and prune ``holds``."""
    return {
        "missing": {
            r["item"]["name"]: [i for i in before[r["item"]["name"]] if i not in snapshot_ids(r["stdout"])]
            for r in after
        },
        "forgotten": {r["item"]["name"]: forgotten_by_policy(r) for r in ledgers},
        "checks": {r["item"]["name"]: r["rc"] for r in checks},
        "holds": [name for name, value in _json(status).items() if value.get("hold")],
    }


# --------------------------------------------------------------------------- step: offsite recovery


def offsite_prefix(repository: str, bucket: str) -> str:
    """The key prefix of an offsite restic repository (``s3:<endpoint>/<bucket>/<prefix>``) in its bucket."""
    return re.sub("^.*?/" + re.escape(bucket) + "/", "", repository)


def offsite_prefixes(names: list[str], repositories: Mapping[str, str], bucket: str) -> list[str]:
    """The prefixes of every dataset copied offsite (the attack hid every object of the bucket)."""
    return [offsite_prefix(repositories[n], bucket) for n in names if n in repositories]


def offsite_restore_points(
    results: list[Mapping[str, Any]], before: Mapping[str, list[str]]
) -> dict[str, list]:
    """Per dataset, the ids in its recovered offsite repository of its on-site restore point (``restic copy``
    keeps the on-site id as ``original``); an empty list: the recovery lacks it."""
    points = {}
    for result in results:
        point, snapshots = before[result["item"]["name"]][-1], _json(result["stdout"])
        points[result["item"]["name"]] = [s["id"] for s in snapshots if s.get("original") == point] + [
            s["id"] for s in snapshots if s["id"] == point
        ]
    return points


def lacking(points: Mapping[str, list]) -> list[str]:
    return [name for name, ids in points.items() if not ids]


# --------------------------------------------------------------------------- step: record


def _sum(comparisons: list[Mapping[str, Any]], field: str) -> int:
    return sum(int(c[field]) for c in comparisons)


def _succeeded(attempts: list[Mapping[str, Any]], when: bool) -> list[dict[str, Any]]:
    return [{**a, "outcome": "succeeded"} if when else dict(a) for a in attempts]


def snapshots_verdict(before: Mapping[str, list[str]], repositories: Mapping[str, Any]) -> dict[str, Any]:
    """Were the pre-attack snapshots kept? One may only be missing if retention forgot it by policy (ledger); the
    restore point (newest pre-attack snapshot) must be there."""
    missing, forgotten = (
        _flat(repositories["missing"].values()),
        set(_flat(repositories["forgotten"].values())),
    )
    vanished = sorted({i for i in missing if i not in forgotten})
    rotated = sorted({i for i in missing if i in forgotten})
    restore_points_kept = not {ids[-1] for ids in before.values() if ids} & set(missing)
    return {
        "vanished": vanished,
        "rotated": rotated,
        "restore_points_kept": restore_points_kept,
        "all_kept": not vanished and restore_points_kept,
        "checks_ok": all(rc == 0 for rc in repositories["checks"].values()),
    }


def encrypt_attempt(victims: list[str], files_lost: int, rows_lost: int) -> dict[str, str]:
    """The encryption of every file and the drop of every database: recovered if the restore lost nothing."""
    return {
        "actor": "root@" + ", root@".join(victims),
        "action": "encrypt every file in place and drop the databases",
        "outcome": "recovered" if files_lost + rows_lost == 0 else "succeeded",
        "detail": f"restored from the on-site repository: {files_lost} file(s) and {rows_lost} row(s) lost",
    }


def jobs_attempt(
    victims: list[str], verdict: Mapping[str, Any], repositories: Mapping[str, Any]
) -> dict[str, str]:
    """The next jobs storing the encrypted data, then retention: refused if every pre-attack snapshot is there,
    recovered if retention rotated some out by policy (the restore point kept), succeeded otherwise."""
    outcome = "succeeded" if not verdict["all_kept"] else "recovered" if verdict["rotated"] else "refused"
    return {
        "actor": "root@" + ", root@".join(victims) + " (next scheduled jobs)",
        "action": "let the jobs store the encrypted data, then retention run, to push good snapshots out",
        "outcome": outcome,
        "detail": f"restore points kept: {verdict['restore_points_kept']}; pre-attack snapshots deleted outside "
        f"retention: {verdict['vanished']}; rotated out by retention policy (encrypted snapshots took keep_last "
        f"slots): {repositories['missing']}; prune holds set on: {repositories['holds']}; restic check rc: "
        f"{repositories['checks']}",
    }


def offsite_attempts(result: Mapping[str, Any], lost: int) -> list[dict[str, Any]]:
    """The writer key's attempts; a delete marker or an overwrite (allowed to the writer) is "recovered" only if
    the restore from the offsite recovery lost nothing."""
    attempts = result.get("attempts", [])
    return [dict(a) for a in attempts if a["outcome"] != "recovered"] + _succeeded(
        [a for a in attempts if a["outcome"] == "recovered"], lost > 0
    )


def offsite_leg(drill: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The offsite leg's record (rempart.reports.results.OffsiteLeg) and the writer key's attempts."""
    result = _json(drill["offsite_result"])
    comparisons = [_json(c) for c in drill["offsite_comparisons"]]
    lost = _sum(comparisons, "files_lost") + _sum(comparisons, "rows_lost")
    attempts = offsite_attempts(result, lost)
    passed = lost == 0 and result.get("versions_deleted", 1) == 0 and not _outcomes(attempts, "succeeded")
    return {
        "bucket": drill["offsite_bucket"],
        "recovered_at": drill["offsite_before"],
        "attempts": len(attempts),
        "refused": len(_outcomes(attempts, "refused")),
        "objects_hidden": result.get("objects_hidden", 0),
        "versions_deleted": result.get("versions_deleted", 0),
        "files_lost": _sum(comparisons, "files_lost"),
        "rows_lost": _sum(comparisons, "rows_lost"),
        "files_checked": _sum(comparisons, "files_total"),
        "rows_checked": _sum(comparisons, "rows_total"),
        "restore_time_s": round(float(drill["offsite_stopped"]) - float(drill["offsite_started"]), 1),
        "status": "passed" if passed else "failed",
    }, attempts


def _outcomes(attempts: list[Mapping[str, Any]], outcome: str) -> list[Mapping[str, Any]]:
    return [a for a in attempts if a["outcome"] == outcome]


def record(drill: Mapping[str, Any]) -> dict[str, Any]:
    """The result (rempart.reports.results.RansomwareDrill) from what every step registered: ``drill`` holds started,
    finished, victims, before (snapshot ids per dataset), repositories (judge_repositories), attacks (the
    attacker's attempts per host, outside a job), inflight (per host, {attempts} from inside the jobs),
    comparisons (per host, the on-site restore compared with the baseline), restore_started/stopped, and, when
    offsite_ready, offsite_result, offsite_comparisons, offsite_bucket, offsite_before, offsite_started/stopped."""
    comparisons, repositories = [_json(c) for c in drill["comparisons"]], drill["repositories"]
    files_lost, rows_lost = _sum(comparisons, "files_lost"), _sum(comparisons, "rows_lost")
    verdict = snapshots_verdict(drill["before"], repositories)
    repository_attempts = _flat(_json(a) for a in drill["attacks"]) + _flat(
        _json(i)["attempts"] for i in drill["inflight"]
    )
    offsite: dict[str, Any] | str = OFFSITE_NOT_RUN
    offsite_tried: list[dict[str, Any]] = []
    if drill["offsite_ready"]:
        offsite, offsite_tried = offsite_leg(drill)
    attempts = (
        _succeeded(repository_attempts, not verdict["all_kept"])
        + offsite_tried
        + [
            encrypt_attempt(drill["victims"], files_lost, rows_lost),
            jobs_attempt(drill["victims"], verdict, repositories),
        ]
    )
    passed = (
        files_lost + rows_lost == 0
        and verdict["all_kept"]
        and verdict["checks_ok"]
        and (isinstance(offsite, str) or offsite["status"] == "passed")
        and not _outcomes(attempts, "succeeded")
    )
    return {
        "started": drill["started"],
        "finished": drill["finished"],
        "attempts": attempts,
        "files_lost": files_lost,
        "rows_lost": rows_lost,
        "files_checked": _sum(comparisons, "files_total"),
        "rows_checked": _sum(comparisons, "rows_total"),
        "restore_time_s": round(float(drill["restore_stopped"]) - float(drill["restore_started"]), 1),
        "restore_source": "onsite",
        "offsite": offsite,
        "status": "passed" if passed else "failed",
    }


def summary(result: Mapping[str, Any]) -> str:
    """One line for the operator: why the drill failed, or what it proved."""
    offsite = result["offsite"]
    if isinstance(offsite, str):
        leg = offsite
    else:
        leg = (
            f"{offsite['refused']}/{offsite['attempts']} attempts refused, {offsite['files_lost']} file(s) and "
            f"{offsite['rows_lost']} row(s) lost, restored in {offsite['restore_time_s']} s"
            + ("" if offsite["status"] == "passed" else " (FAILED)")
        )
    if result["status"] != "passed":
        succeeded = [a["action"] for a in _outcomes(result["attempts"], "succeeded")]
        return (
            f"RANSOMWARE DRILL FAILED: {result['files_lost']} file(s) and {result['rows_lost']} row(s) lost; "
            f"attempts that succeeded: {succeeded}; offsite leg: {leg}"
        )
    return (
        f"ransomware drill passed: {len(result['attempts'])} attempts, none succeeded, 0 file and 0 row lost, "
        f"restored in {result['restore_time_s']} s; offsite: {leg}"
    )
