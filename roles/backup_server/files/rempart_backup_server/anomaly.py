"""Flow 2 (R21): does a snapshot that just arrived look like an attack? Compared with the dataset's recent
median; and can its snapshots be trusted for retention at all (forged times, bursts, wrong host)?"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from rempart_host.restic import parse_time

from rempart_backup_server.config import restic


def shannon_entropy(data: bytes) -> float:
    if not data:
        return 0.0
    counts = [0] * 256
    for byte in data:
        counts[byte] += 1
    total = len(data)
    return -sum(c / total * math.log2(c / total) for c in counts if c)


def sample_paths(paths: Sequence[str], count: int) -> list[str]:
    ordered = sorted(p for p in paths if not p.endswith("/"))
    if len(ordered) <= count:
        return ordered
    step = len(ordered) / count
    return [ordered[int(i * step)] for i in range(count)]


def entropy_share(config: dict[str, Any], name: str, snapshot: str, paths: Sequence[str]) -> float | None:
    """Share of sampled new/changed files whose first 64 KiB look random (compressed or encrypted)."""
    anomaly = config["anomaly"]
    chosen = sample_paths(paths, int(anomaly["samples"]))
    if not chosen:
        return None

    def looks_random(path: str) -> bool:
        process = restic(config, name).popen(
            "dump", "--no-lock", snapshot, path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert process.stdout is not None
        data = process.stdout.read(65536)
        process.kill()
        process.wait()
        return len(data) >= 512 and shannon_entropy(data) >= float(anomaly["entropy_bits"])

    with ThreadPoolExecutor(max_workers=4) as pool:  # one restic process per sample: overlap their start-up
        return sum(pool.map(looks_random, chosen)) / len(chosen)


def small_change(kind: str, files: int, changed_files: int, min_files: int = 10) -> bool:
    """A small files dataset (fewer than ``min_files`` files) whose existing files changed: the case of the
    rewritten rule (damage_reasons), and the one case where the job measures the snapshot's size (a restic start)."""
    return kind == "files" and files < min_files and changed_files > 0


def restore_size(config: dict[str, Any], name: str, snapshot: str) -> int:
    """Bytes of the snapshot's files as the server reads them from its trees (uncompressed, like restic diff's
    added bytes)."""
    result = restic(config, name).run("stats", "--mode", "restore-size", "--json", "--no-lock", snapshot)
    return int(json.loads(result.stdout).get("total_size", 0))


def diff_stats(
    config: dict[str, Any], name: str, previous: str | None, snapshot: dict[str, Any]
) -> dict[str, Any]:
    current = snapshot["id"]
    if previous is None:
        listing = restic(config, name).run("ls", "--json", "--no-lock", current).stdout.splitlines()
        files = [json.loads(line) for line in listing if line.startswith("{")]
        paths = [f["path"] for f in files if f.get("type") == "file"]
        summary = snapshot.get("summary") or {}
        return {"first": True, "added_files": len(paths), "changed_files": 0, "removed_files": 0,
                "added_bytes": int(summary.get("data_added", 0)), "touched": paths}  # fmt: skip
    lines = restic(config, name).run("diff", "--json", "--no-lock", previous, current).stdout.splitlines()
    touched: list[str] = []
    stats: dict[str, Any] = {}
    for line in lines:
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("message_type") == "change" and record.get("modifier") in ("+", "M"):
            touched.append(record["path"])
        elif record.get("message_type") == "statistics":
            stats = record
    return {
        "first": False,
        "added_files": stats.get("added", {}).get("files", 0),
        "changed_files": stats.get("changed_files", 0),
        "removed_files": stats.get("removed", {}).get("files", 0),
        "added_bytes": stats.get("added", {}).get("bytes", 0),
        "touched": touched,
    }


def evaluate_anomaly(
    current: dict[str, Any], history: Sequence[dict[str, Any]], kind: str, thresholds: dict[str, Any]
) -> list[str]:
    """Reasons why this snapshot looks like an attack, compared with the dataset's recent median.

    ``current``/``history`` items: changed_ratio, entropy_share, removed_ratio, added_bytes, first.
    """
    reasons: list[str] = []
    usable = [h for h in history if not h.get("first")][-int(thresholds["history"]) :]
    entropy_history = [h["entropy_share"] for h in history[-int(thresholds["history"]):]
                       if h.get("entropy_share") is not None]  # fmt: skip
    if current.get("first"):
        return reasons
    if kind == "files":
        median_ratio = statistics.median([h["changed_ratio"] for h in usable]) if usable else 0.0
        ratio = current["changed_ratio"]
        enough = current.get("touched_files", 10**9) >= int(thresholds.get("min_files", 10))
        if enough and ratio >= float(thresholds["changed_ratio"]) and ratio > 3 * median_ratio:
            reasons.append(f"mass-change: {ratio:.0%} of files added or changed (median {median_ratio:.0%})")
        removed_enough = current.get("removed_files", 10**9) >= int(thresholds.get("min_files", 10))
        if removed_enough and current.get("removed_ratio", 0) >= float(thresholds["removed_ratio"]):
            reasons.append(f"mass-deletion: {current['removed_ratio']:.0%} of files removed")
    share = current.get("entropy_share")
    if share is not None:
        median_share = statistics.median(entropy_history) if entropy_history else 0.0
        if share >= float(thresholds["entropy_share"]) and share >= median_share + 0.3:
            reasons.append(f"high-entropy: {share:.0%} of sampled new content looks encrypted "
                           f"(median {median_share:.0%})")  # fmt: skip
    if usable:
        median_bytes = statistics.median([h["added_bytes"] for h in usable])
        limit = float(thresholds["volume_factor"]) * median_bytes + float(thresholds["volume_floor_bytes"])
        if current["added_bytes"] > limit:
            reasons.append(f"volume: {current['added_bytes']} bytes added (median {median_bytes:.0f})")
    recent = history[-int(thresholds["history"]) :]
    return (
        reasons
        + shrink_reasons(current, recent, thresholds)
        + damage_reasons(current, usable, kind, thresholds)
    )


def damage_reasons(
    current: dict[str, Any], usable: Sequence[dict[str, Any]], kind: str, thresholds: dict[str, Any]
) -> list[str]:
    """Damage the volume rules cannot see (issue 15, item 7):

    - a small files dataset (fewer than ``min_files`` files, the one-file degraded-mode binder) whose existing
      files were rewritten in place (``rewritten_ratio``: files modified / files of the previous snapshot) AND
      whose new data is at least the same share of the snapshot (``added_bytes`` / ``snapshot_bytes``, both
      measured by the server): a dump file appended to every day is modified, not rewritten;
    - database tables whose rows changed in place or disappeared (``rows_changed``: table -> share of the
      previous dump's sampled rows absent from this one, measured by the server on the dump it admitted):
      in-place encryption keeps every row count.

    Each fires at or above its threshold AND above 3x its median over the recent trusted jobs, so a table (or
    a file) that is rewritten every day as a matter of course does not.
    """
    reasons: list[str] = []
    ratio = float(thresholds["changed_ratio"])
    rewritten = current.get("rewritten_ratio")
    small = small_change(kind, int(current.get("files") or 0), int(current.get("changed_files", 0)),
                         int(thresholds.get("min_files", 10)))  # fmt: skip
    if small and rewritten is not None:
        median = statistics.median([h.get("rewritten_ratio") or 0.0 for h in usable]) if usable else 0.0
        size = int(current.get("snapshot_bytes") or 0)
        whole = (
            size == 0 or current.get("added_bytes", 0) >= ratio * size
        )  # no measure: the file count decides
        if rewritten >= ratio and rewritten > 3 * median and whole:
            reasons.append(f"small-dataset-rewritten: {current['changed_files']} of its {current['files']} "
                           f"file(s) rewritten in place ({rewritten:.0%}, median {median:.0%})")  # fmt: skip
    limit = float(thresholds.get("rows_changed_ratio", 0.5))
    damaged = []
    for table, share in sorted((current.get("rows_changed") or {}).items()):
        past = [float((h.get("rows_changed") or {}).get(table, 0.0)) for h in usable]
        median = statistics.median(past) if past else 0.0
        if share >= limit and share > 3 * median:
            damaged.append(f"{table} {share:.0%} (median {median:.0%})")
    if damaged:
        reasons.append(f"rows-changed: rows changed in place or deleted since the previous dump: "
                       f"{', '.join(damaged[:5])}{', ...' if len(damaged) > 5 else ''}")  # fmt: skip
    return reasons


def shrink_reasons(
    current: dict[str, Any], recent: Sequence[dict[str, Any]], thresholds: dict[str, Any]
) -> list[str]:
    """A dataset that suddenly holds much less: a dropped database (its dump shrinks to a header), a wiped or
    truncated share. Nothing is "added" then, so the change and volume rules stay silent.

    Compares the snapshot's total size (files read, or the dump's size) and, for database dumps, the rows and
    tables the job counted in the dump, with the recent trusted jobs (the first one included: it is a full size).
    """
    reasons: list[str] = []
    ratio = float(thresholds.get("shrink_ratio", 0.5))
    sizes = [h["processed_bytes"] for h in recent if h.get("processed_bytes")]
    size = int(current.get("processed_bytes") or 0)
    if sizes:
        median_size = statistics.median(sizes)
        floor = float(thresholds.get("shrink_floor_bytes", 1 << 20))
        if size < ratio * median_size and median_size - size >= floor:
            reasons.append(f"shrink: the snapshot holds {size} bytes, {1 - size / median_size:.0%} less than "
                           f"the median {median_size:.0f}")  # fmt: skip
    rows = [h["rows"] for h in recent if h.get("rows")]
    if current.get("rows") is not None and rows:
        median_rows = statistics.median(rows)
        if current["rows"] < ratio * median_rows:
            reasons.append(f"rows-lost: the dump holds {current['rows']} rows (median {median_rows:.0f})")
    lost, before = int(current.get("tables_lost") or 0), int(current.get("previous_tables") or 0)
    if lost and lost >= float(thresholds.get("tables_lost_ratio", 0.25)) * before:
        names = current.get("lost_tables") or []
        reasons.append(f"tables-lost: {lost} of {before} tables of the previous dump are gone "
                       f"({', '.join(names[:5])}{', ...' if lost > 5 else ''})")  # fmt: skip
    return reasons


def table_changes(rows: dict[str, int] | None, previous: dict[str, int] | None) -> dict[str, Any]:
    """Rows and tables of a database dump (counted by the server in the dump it admitted), and the tables of
    the previous trusted dump that this one lacks. Empty for files datasets."""
    if rows is None:
        return {}
    changes: dict[str, Any] = {"rows": sum(rows.values()), "tables": len(rows)}
    if previous:
        lost = sorted(set(previous) - set(rows))
        changes.update(tables_lost=len(lost), lost_tables=lost[:20], previous_tables=len(previous))
    return changes


def trust_problems(
    new: Sequence[dict[str, Any]], dataset: dict[str, Any], started: float, arrived: float, skew: float
) -> list[str]:
    """Why the snapshots that arrived during one job cannot be trusted for retention (forged-time attack)."""
    problems = []
    if len(new) != 1:
        problems.append(f"unexpected-snapshots: {len(new)} snapshots arrived during one job (expected 1)")
    for snap in new:
        claimed = parse_time(snap["time"])
        if claimed < started - skew or claimed > arrived + skew:
            problems.append(f"forged-time: snapshot {snap['id'][:8]} claims {snap['time']}, arrived "
                            f"{datetime.fromtimestamp(arrived, UTC).isoformat()}")  # fmt: skip
        if snap.get("hostname") != dataset["host"]:
            problems.append(f"wrong-host: snapshot {snap['id'][:8]} claims host {snap.get('hostname')!r}")
    return problems
