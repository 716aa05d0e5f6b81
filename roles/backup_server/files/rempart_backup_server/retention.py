"""Flow 3: retention by *arrival* time (the server's clock), trusted snapshots only, never during a prune hold."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rempart_host.journal import log

from rempart_backup_server.config import (
    EXIT_OK,
    admission,
    dataset_config,
    dataset_lock,
    ledger,
    publish_metrics,
    remove_stale_locks,
    restic,
    snapshots,
)
from rempart_backup_server.holds import hold_of
from rempart_backup_server.job import marked_trusted, record_quarantine


def select_keep(entries: Sequence[tuple[str, float]], policy: dict[str, int]) -> set[str]:
    """IDs to keep among trusted (id, arrival time) pairs: the newest ``keep_last``, then the newest snapshot of
    each of the last ``daily`` days, ``monthly`` months and ``yearly`` years that have one (server clock)."""
    ordered = sorted(entries, key=lambda e: e[1], reverse=True)
    keep = {snapshot for snapshot, _ in ordered[: int(policy.get("keep_last", 0))]}
    for pattern, count in (("%Y-%m-%d", "daily"), ("%Y-%m", "monthly"), ("%Y", "yearly")):
        buckets: list[str] = []
        for snapshot, arrived in ordered:
            bucket = time.strftime(pattern, time.localtime(arrived))
            if bucket in buckets:
                continue
            if len(buckets) >= int(policy.get(count, 0)):
                break
            buckets.append(bucket)
            keep.add(snapshot)
    return keep


def plan_forget(entries: Sequence[dict[str, Any]], present: set[str], policy: dict[str, int]) -> list[str]:
    """Snapshots retention may forget: only trusted ones, judged by their arrival time. Untrusted or
    unledgered snapshots (forged times, bursts) are never forgotten automatically and never take a slot."""
    trusted = [(e["id"], float(e["arrived"])) for e in entries
               if e.get("event") == "snapshot" and e.get("trusted") and e["id"] in present]  # fmt: skip
    keep = select_keep(trusted, policy)
    return sorted(snapshot for snapshot, _ in trusted if snapshot not in keep)


def retention(config: dict[str, Any], name: str) -> int:
    dataset = dataset_config(config, name)
    labels = {"dataset": name, "host": dataset["host"]}
    with dataset_lock(config, name):
        hold = hold_of(config, name)
        present = {s["id"] for s in snapshots(config, name)}
        entries = ledger(config, name).read()
        metrics = {
            "rempart_retention_last_run_timestamp_seconds": ("last retention run", time.time()),
            "rempart_retention_skipped_hold": ("1 if the last run was skipped for a prune hold", 1 if hold else 0),
            "rempart_snapshots": ("snapshots in the repository", len(present)),
            "rempart_snapshots_untrusted": ("snapshots retention never counts", len(present - marked_trusted(entries))),
        }  # fmt: skip
        if hold:
            log(
                f"rempart: retention of {name} skipped: prune hold since "
                f"{datetime.fromtimestamp(hold['since'], UTC).isoformat()} ({', '.join(hold['reasons'])})",
                4,
            )
            metrics["rempart_retention_forgotten"] = ("snapshots forgotten by the last run", 0)
            publish_metrics(config, f"rempart_retention_{name}", metrics, labels)
            return EXIT_OK
        forget = plan_forget(entries, present, config["retention"])
        remove_stale_locks(config, name)
        if forget:
            with admission(config, name) as gate:
                # what appeared since the last job is judged first: prune then rewrites the record
                record_quarantine(config, name, gate.sweep(), time.time())
                restic(config, name).run("forget", *forget)
                left = {s["id"] for s in snapshots(config, name)}
                if left & set(forget):  # exit codes are not trusted: check what is left
                    raise RuntimeError(f"forget left {len(left & set(forget))} snapshot(s) in place")
                ledger(config, name).append([{"event": "forgotten", "at": time.time(), "ids": forget}])
                try:
                    restic(config, name).run(
                        "prune", "--max-unused", str(config.get("prune_max_unused", "5%"))
                    )
                finally:  # the server's own writes (new index files, repacked packs) join the record
                    gate.record_current("retention: forget + prune")
            present = left
        metrics["rempart_retention_forgotten"] = ("snapshots forgotten by the last run", len(forget))
        metrics["rempart_snapshots"] = ("snapshots in the repository", len(present))
        metrics["rempart_retention_last_success_timestamp_seconds"] = (
            "last successful retention",
            time.time(),
        )
        publish_metrics(config, f"rempart_retention_{name}", metrics, labels)
        log(f"rempart: retention of {name}: {len(forget)} snapshot(s) forgotten, {len(present)} kept")
        return EXIT_OK
