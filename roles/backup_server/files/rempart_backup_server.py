#!/usr/bin/python3
"""Rempart backup server: pull jobs, arrival ledger, anomaly check, retention by arrival, check, admin.

Installed by the Ansible role ``backup_server`` as /usr/local/lib/rempart/rempart_backup_server.py and run
by systemd units on the backup server only (python3 of Debian 12, standard library only):

  job DATASET         (rempart-backup@DATASET.service)     flow 1 + 2: pull a snapshot through SSH, record
                                                            its arrival, compare with the recent median
  retention DATASET   (rempart-retention@DATASET.service)  flow 3: forget + prune by *arrival* time,
                                                            never during a prune hold
  check DATASET       (rempart-check@DATASET.service)      flow 3: restic check (+ read data subset)
  restore-all TARGET                                        emergency restore of every dataset at once (root)
  init [DATASET...]                                         create the missing repositories (the role runs it)
  hold | clear-hold | status | restic                       admin actions (root): see the role README

Requirements: BP100-ARCH-06 (pull), BP100-OPS-10 / R21 (anomaly check after each backup),
BP100-RET-01 (retention), BP100-DATA-01/03 (integrity: manifests, check), HDS-03 (encrypted repositories).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CONFIG = Path(os.environ.get("REMPART_BACKUP_SERVER_CONFIG", "/etc/rempart/backup-server.json"))
EXIT_OK, EXIT_FAILED, EXIT_ANOMALY, EXIT_USAGE = 0, 1, 2, 64
# restic commands the admin may run as root (restore keeps file owners); every other one runs as the service user
READ_ONLY_COMMANDS = {
    "snapshots",
    "ls",
    "dump",
    "restore",
    "find",
    "diff",
    "stats",
    "cat",
    "list",
    "check",
    "version",
}


# --------------------------------------------------------------------------- small helpers


def log(message: str, priority: int = 6) -> None:
    """One journal line (sd-daemon priority prefix: 2 crit, 3 err, 4 warning, 6 info)."""
    print(f"<{priority}>{message}", file=sys.stderr, flush=True)


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def dataset_config(config: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        return config["datasets"][name]
    except KeyError:
        known = ", ".join(sorted(config["datasets"]))
        raise SystemExit(f"unknown dataset {name!r}; this server serves: {known}") from None


def secrets_of(config: dict[str, Any], name: str) -> dict[str, str]:
    return json.loads((Path(config["secrets_dir"]) / f"{name}.json").read_text(encoding="utf-8"))


def state(config: dict[str, Any], *parts: str) -> Path:
    return Path(config["state_dir"]).joinpath(*parts)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    tmp.replace(path)


def parse_time(value: str) -> float:
    """restic's RFC 3339 times carry nanoseconds; Python takes microseconds."""
    head, dot, rest = value.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        value = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@contextlib.contextmanager
def dataset_lock(config: dict[str, Any], name: str) -> Iterable[None]:
    """Jobs, retention and check of one dataset never overlap (they are the only writers besides the client
    during its job, so holding this lock also means no legitimate restic process uses the repository)."""
    path = state(config, "locks", f"{name}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------- restic (local repository)


def restic_env(config: dict[str, Any], name: str) -> dict[str, str]:
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(state(config)),
        "RESTIC_REPOSITORY": str(Path(config["repos_dir"]) / name),
        "RESTIC_PASSWORD": secrets_of(config, name)["repository_password"],
        "RESTIC_CACHE_DIR": str(state(config, "cache")),
    }


def restic(
    config: dict[str, Any], name: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [config.get("restic", "/usr/bin/restic"), *args],
        env=restic_env(config, name), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise RuntimeError(f"restic {args[0]} failed ({result.returncode}): {result.stderr.strip()[-800:]}")
    return result


def snapshots(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return json.loads(restic(config, name, "snapshots", "--json", "--no-lock").stdout or "[]")


def repository_ids(config: dict[str, Any], name: str, folder: str) -> set[str]:
    """IDs of a folder of the local repository (snapshots, locks: the file names are the IDs), read without
    starting restic: each restic process costs a key derivation and, on a busy server, seconds of wall time."""
    path = Path(config["repos_dir"]) / name / folder
    return {entry.name for entry in path.iterdir()} if path.is_dir() else set()


def remove_stale_locks(config: dict[str, Any], name: str) -> None:
    """Locks an aborted job or check left behind (the caller holds the dataset lock: no legitimate restic runs)."""
    if repository_ids(config, name, "locks"):
        restic(config, name, "unlock", "--remove-all", check=False)


# --------------------------------------------------------------------------- ledger (server's own record)


def ledger_path(config: dict[str, Any], name: str) -> Path:
    return state(config, "ledger", f"{name}.jsonl")


def read_ledger(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
    path = ledger_path(config, name)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_ledger(config: dict[str, Any], name: str, entries: Sequence[dict[str, Any]]) -> None:
    path = ledger_path(config, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for entry in entries:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# --------------------------------------------------------------------------- metrics (Prometheus textfile)


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


def write_metrics(
    config: dict[str, Any], stem: str, metrics: dict[str, tuple[str, float]], labels: dict[str, str]
) -> None:
    lines = []
    for metric, (help_text, value) in sorted(metrics.items()):
        lines += [
            f"# HELP {metric} {help_text}",
            f"# TYPE {metric} gauge",
            f"{metric}{{{_labels(labels)}}} {float(value):.15g}",
        ]
    write_atomic(Path(config["metrics_dir"]) / f"{stem}.prom", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- prune hold


def hold_path(config: dict[str, Any], name: str) -> Path:
    return state(config, "holds", f"{name}.json")


def hold_of(config: dict[str, Any], name: str) -> dict[str, Any] | None:
    path = hold_path(config, name)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_hold_metric(config: dict[str, Any], name: str) -> None:
    hold = hold_of(config, name)
    write_metrics(
        config, f"rempart_hold_{name}",
        {
            "rempart_prune_hold": ("1 while retention is suspended on this repository (anomaly)", 1 if hold else 0),
            "rempart_prune_hold_since_timestamp_seconds": ("when the hold was set", hold["since"] if hold else 0),
        },
        {"dataset": name, "host": config["datasets"][name]["host"]},
    )  # fmt: skip


def set_hold(
    config: dict[str, Any], name: str, reasons: list[str], by: str, snapshot: str | None = None
) -> None:
    path = hold_path(config, name)
    current = hold_of(config, name)
    record = current or {"since": time.time(), "reasons": [], "by": by, "snapshots": []}
    record["reasons"] = sorted(set(record["reasons"]) | set(reasons))
    if snapshot:
        record["snapshots"] = [*record.get("snapshots", []), snapshot]
    write_atomic(path, json.dumps(record, sort_keys=True) + "\n", 0o640)
    append_ledger(config, name, [{"event": "hold", "at": time.time(), "by": by, "reasons": reasons}])
    write_hold_metric(config, name)
    log(
        f"rempart: PRUNE HOLD on {name}: {', '.join(reasons)} (clear: rempart-backup-admin clear-hold {name})",
        2,
    )


def clear_hold(config: dict[str, Any], name: str, by: str, reason: str) -> bool:
    path = hold_path(config, name)
    if not path.exists():
        return False
    previous = hold_of(config, name)
    path.unlink()
    append_ledger(config, name, [{"event": "hold-cleared", "at": time.time(), "by": by, "reason": reason,
                                  "previous": previous}])  # fmt: skip
    write_hold_metric(config, name)
    log(f"rempart: prune hold on {name} cleared by {by}: {reason}", 4)
    return True


def alert(config: dict[str, Any], name: str, reasons: list[str]) -> None:
    command = config.get("alert_command")
    if command:
        subprocess.run([*shlex.split(command), name, ",".join(reasons)], check=False, timeout=60)


# --------------------------------------------------------------------------- anomaly (flow 2, R21)


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
        process = subprocess.Popen(
            [config.get("restic", "/usr/bin/restic"), "dump", "--no-lock", snapshot, path],
            env=restic_env(config, name), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert process.stdout is not None
        data = process.stdout.read(65536)
        process.kill()
        process.wait()
        return len(data) >= 512 and shannon_entropy(data) >= float(anomaly["entropy_bits"])

    with ThreadPoolExecutor(max_workers=4) as pool:  # one restic process per sample: overlap their start-up
        return sum(pool.map(looks_random, chosen)) / len(chosen)


def diff_stats(
    config: dict[str, Any], name: str, previous: str | None, snapshot: dict[str, Any]
) -> dict[str, Any]:
    current = snapshot["id"]
    if previous is None:
        listing = restic(config, name, "ls", "--json", "--no-lock", current).stdout.splitlines()
        files = [json.loads(line) for line in listing if line.startswith("{")]
        paths = [f["path"] for f in files if f.get("type") == "file"]
        summary = snapshot.get("summary") or {}
        return {"first": True, "added_files": len(paths), "changed_files": 0, "removed_files": 0,
                "added_bytes": int(summary.get("data_added", 0)), "touched": paths}  # fmt: skip
    lines = restic(config, name, "diff", "--json", "--no-lock", previous, current).stdout.splitlines()
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
    return reasons + shrink_reasons(current, history[-int(thresholds["history"]) :], thresholds)


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
    """Rows and tables of a database dump (counted by the client while it streamed), and the tables of the
    previous trusted dump that this one lacks. Empty for files datasets."""
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


# --------------------------------------------------------------------------- job (flow 1)


def _job_metrics(config: dict[str, Any], name: str, status: dict[str, Any]) -> None:
    dataset = config["datasets"][name]
    free = os.statvfs(Path(config["repos_dir"]) / name)
    write_metrics(
        config, f"rempart_backup_{name}",
        {
            "rempart_backup_last_run_timestamp_seconds": ("end of the last job", status.get("last_run", 0)),
            "rempart_backup_last_run_success": ("1 if the last job stored a snapshot", status.get("last_ok", 0)),
            "rempart_backup_last_success_timestamp_seconds": ("end of the last successful job (server clock)",
                                                              status.get("last_success", 0)),
            "rempart_backup_duration_seconds": ("duration of the last job", status.get("duration", 0)),
            "rempart_backup_added_bytes": ("bytes added by the last snapshot (restic diff)",
                                           status.get("added_bytes", 0)),
            "rempart_backup_processed_bytes": ("bytes read by the last job", status.get("processed_bytes", 0)),
            "rempart_backup_files": ("files in the last snapshot", status.get("files", 0)),
            "rempart_backup_changed_files_ratio": ("share of files added or changed by the last snapshot",
                                                   status.get("changed_ratio", 0)),
            "rempart_backup_high_entropy_share": ("share of sampled new content that looks random",
                                                  status.get("entropy_share") or 0),
            "rempart_backup_anomaly": ("1 if the last snapshot looked like an attack", status.get("anomaly", 0)),
            "rempart_backup_consecutive_failures": ("failed jobs since the last success", status.get("failures", 0)),
            "rempart_backup_untrusted_snapshots": ("snapshots retention will never count (forged/unexpected)",
                                                   status.get("untrusted", 0)),
            "rempart_repository_free_bytes": ("free space where the repository lives", free.f_bavail * free.f_frsize),
        },
        {"dataset": name, "host": dataset["host"]},
    )  # fmt: skip
    write_hold_metric(config, name)


def _status_path(config: dict[str, Any], name: str) -> Path:
    return state(config, "status", f"{name}.json")


def _read_status(config: dict[str, Any], name: str) -> dict[str, Any]:
    path = _status_path(config, name)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


class RestWatch(threading.Thread):
    """Aborts the job when the repository service stops answering (fault: server stopped mid-job)."""

    def __init__(self, port: int, on_down: Any) -> None:
        super().__init__(daemon=True)
        self.port, self.on_down, self.stopped, self.down = port, on_down, threading.Event(), False

    def run(self) -> None:
        failures = 0
        while not self.stopped.wait(2):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                failures = 0
            except OSError:
                failures += 1
                if failures >= 3:
                    self.down = True
                    self.on_down()
                    return


def run_ssh(
    config: dict[str, Any], name: str, credentials: dict[str, str]
) -> tuple[int, list[dict[str, Any]], str]:
    dataset = config["datasets"][name]
    ssh = config["ssh"]
    command = [
        "/usr/bin/ssh", "-T", "-F", "/dev/null", "-i", ssh["key"], "-p", str(dataset.get("ssh_port", 22)),
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={ssh['known_hosts']}", "-o", "ExitOnForwardFailure=yes",
        "-o", f"ServerAliveInterval={ssh['alive_interval']}", "-o", f"ServerAliveCountMax={ssh['alive_count']}",
        "-o", f"ConnectTimeout={ssh['connect_timeout']}", "-o", f"Ciphers={ssh.get('ciphers', 'aes128-gcm@openssh.com')}",
        "-R", f"127.0.0.1:{dataset['tunnel_port']}:127.0.0.1:{config['rest_port']}",
        f"{dataset['ssh_user']}@{dataset['address']}", name,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    watch = RestWatch(int(config["rest_port"]), process.terminate)
    watch.start()
    manifest: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    try:
        process.stdin.write((json.dumps(credentials) + "\n").encode())
        process.stdin.flush()  # stdin stays open: the client aborts its job when it closes
        for raw in process.stdout:
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
                if record.get("type") == "manifest":
                    manifest.append(record)
                elif record.get("type") == "summary":
                    summary = record
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        rc = process.wait()
        watch.stopped.set()
    why = "repository service stopped answering during the job" if watch.down else summary.get("error", "")
    if rc == 255 and not why:
        why = "SSH connection failed or was cut (client unreachable, network cut or host key mismatch)"
    return (rc if not watch.down else 75), manifest, why or json.dumps(summary)[:400], summary


def job(config: dict[str, Any], name: str) -> int:
    dataset = dataset_config(config, name)
    status = _read_status(config, name)
    started = time.time()
    with dataset_lock(config, name):
        remove_stale_locks(config, name)  # of an aborted job
        before = repository_ids(config, name, "snapshots")
        secrets = secrets_of(config, name)
        credentials = {
            "repository_password": secrets["repository_password"],
            "http_user": name,
            "http_password": secrets["http_password"],
            "ca_pem": Path(config["ca_cert"]).read_text(encoding="utf-8"),
        }
        rc, manifest, why, client = run_ssh(config, name, credentials)
        arrived = time.time()
        after = snapshots(config, name)
        new = [s for s in after if s["id"] not in before]
        status.update(last_run=arrived, duration=arrived - started)
        if rc != 0 or not new:
            status.update(last_ok=0, failures=status.get("failures", 0) + 1)
            _finish(config, name, status)
            problem = why if rc != 0 else "the client reported success but no snapshot arrived"
            log(f"rempart: backup of {name} from {dataset['host']} FAILED (rc={rc}): {problem}", 3)
            append_ledger(config, name, [{"event": "job-failed", "at": arrived, "rc": rc, "why": problem,
                                          "partial_snapshots": [s["id"] for s in new]}])  # fmt: skip
            alert(config, name, [f"job-failed: {problem}"])
            return EXIT_FAILED
        skew = float(config["anomaly"]["time_skew_seconds"])
        problems = trust_problems(new, dataset, started, arrived, skew)
        trusted = not problems
        ledger = read_ledger(config, name)
        history = [
            e["stats"] for e in ledger if e.get("event") == "snapshot" and e.get("trusted") and e.get("stats")
        ]
        previous = next((e["id"] for e in reversed(ledger) if e.get("event") == "snapshot" and e.get("trusted")
                         and e["id"] in {s["id"] for s in after}), None)  # fmt: skip
        newest = max(new, key=lambda s: parse_time(s["time"]))
        stats = diff_stats(config, name, previous, newest)
        total = int((newest.get("summary") or {}).get("total_files_processed", 0)) or 1
        previous_total = (history[-1].get("files") if history else None) or total
        current = {
            "first": stats["first"],
            "files": total,
            "added_bytes": stats["added_bytes"],
            "processed_bytes": int((newest.get("summary") or {}).get("total_bytes_processed", 0)),
            "changed_ratio": (stats["added_files"] + stats["changed_files"]) / total,
            "touched_files": stats["added_files"] + stats["changed_files"],
            "removed_files": stats["removed_files"],
            "removed_ratio": stats["removed_files"] / max(previous_total, 1),
            "entropy_share": entropy_share(config, name, newest["id"], stats["touched"]),
            **table_changes(client.get("rows"), _previous_rows(ledger)),
        }
        reasons = problems + evaluate_anomaly(current, history, dataset["kind"], config["anomaly"])
        manifest_file = None
        if manifest:
            lines = "".join(f"{m['sha256']}  {m['path']}\n" for m in manifest)
            manifest_file = state(config, "manifests", name, f"{newest['id']}.sha256")
            write_atomic(manifest_file, lines, 0o640)
        entries = [
            {"event": "snapshot", "id": s["id"], "arrived": arrived, "job_started": started, "claimed": s["time"],
             "trusted": trusted, "problems": problems, "anomaly": reasons,
             "stats": current if s is newest and trusted else None,
             "manifest": str(manifest_file) if manifest_file and s is newest else None,
             "client": {k: client.get(k) for k in ("restic", "cpu_seconds", "max_rss_kib", "rows")} if s is newest else None}
            for s in new
        ]  # fmt: skip
        append_ledger(config, name, entries)
        status.update(
            last_ok=1,
            last_success=arrived,
            failures=0,
            files=total,
            added_bytes=current["added_bytes"],
            processed_bytes=current["processed_bytes"],
            changed_ratio=current["changed_ratio"],
            entropy_share=current["entropy_share"],
            anomaly=1 if reasons else 0,
            untrusted=len({s["id"] for s in after} - _trusted_ids(read_ledger(config, name))),
        )
        if reasons:
            set_hold(config, name, reasons, by="anomaly-check", snapshot=newest["id"])
            alert(config, name, reasons)
        _finish(config, name, status)
        log(f"rempart: backup of {name}: snapshot {newest['id'][:8]} arrived ({len(new)} new, "
            f"{current['added_bytes']} bytes added, {arrived - started:.1f} s)")  # fmt: skip
        return EXIT_ANOMALY if reasons else EXIT_OK


def _finish(config: dict[str, Any], name: str, status: dict[str, Any]) -> None:
    write_atomic(_status_path(config, name), json.dumps(status, sort_keys=True) + "\n")
    _job_metrics(config, name, status)


def _previous_rows(ledger: Sequence[dict[str, Any]]) -> dict[str, int] | None:
    """Rows per table of the last trusted database dump (None for files datasets or before the first)."""
    for entry in reversed(ledger):
        if entry.get("event") == "snapshot" and entry.get("trusted") and entry.get("stats"):
            return (entry.get("client") or {}).get("rows")
    return None


def _trusted_ids(ledger: Sequence[dict[str, Any]]) -> set[str]:
    return {e["id"] for e in ledger if e.get("event") == "snapshot" and e.get("trusted")}


# --------------------------------------------------------------------------- retention (flow 3)


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


def plan_forget(ledger: Sequence[dict[str, Any]], present: set[str], policy: dict[str, int]) -> list[str]:
    """Snapshots retention may forget: only trusted ones, judged by their arrival time. Untrusted or
    unledgered snapshots (forged times, bursts) are never forgotten automatically and never take a slot."""
    trusted = [(e["id"], float(e["arrived"])) for e in ledger
               if e.get("event") == "snapshot" and e.get("trusted") and e["id"] in present]  # fmt: skip
    keep = select_keep(trusted, policy)
    return sorted(snapshot for snapshot, _ in trusted if snapshot not in keep)


def retention(config: dict[str, Any], name: str) -> int:
    dataset = dataset_config(config, name)
    labels = {"dataset": name, "host": dataset["host"]}
    with dataset_lock(config, name):
        hold = hold_of(config, name)
        present = {s["id"] for s in snapshots(config, name)}
        ledger = read_ledger(config, name)
        metrics = {
            "rempart_retention_last_run_timestamp_seconds": ("last retention run", time.time()),
            "rempart_retention_skipped_hold": ("1 if the last run was skipped for a prune hold", 1 if hold else 0),
            "rempart_snapshots": ("snapshots in the repository", len(present)),
            "rempart_snapshots_untrusted": ("snapshots retention never counts", len(present - _trusted_ids(ledger))),
        }  # fmt: skip
        if hold:
            log(
                f"rempart: retention of {name} skipped: prune hold since "
                f"{datetime.fromtimestamp(hold['since'], UTC).isoformat()} ({', '.join(hold['reasons'])})",
                4,
            )
            metrics["rempart_retention_forgotten"] = ("snapshots forgotten by the last run", 0)
            write_metrics(config, f"rempart_retention_{name}", metrics, labels)
            return EXIT_OK
        forget = plan_forget(ledger, present, config["retention"])
        remove_stale_locks(config, name)
        if forget:
            restic(config, name, "forget", *forget)
            left = {s["id"] for s in snapshots(config, name)}
            if left & set(forget):  # exit codes are not trusted: check what is left
                raise RuntimeError(f"forget left {len(left & set(forget))} snapshot(s) in place")
            append_ledger(config, name, [{"event": "forgotten", "at": time.time(), "ids": forget}])
            restic(config, name, "prune", "--max-unused", str(config.get("prune_max_unused", "5%")))
            present = left
        metrics["rempart_retention_forgotten"] = ("snapshots forgotten by the last run", len(forget))
        metrics["rempart_snapshots"] = ("snapshots in the repository", len(present))
        metrics["rempart_retention_last_success_timestamp_seconds"] = (
            "last successful retention",
            time.time(),
        )
        write_metrics(config, f"rempart_retention_{name}", metrics, labels)
        log(f"rempart: retention of {name}: {len(forget)} snapshot(s) forgotten, {len(present)} kept")
        return EXIT_OK


# --------------------------------------------------------------------------- check (flow 3)


def check(config: dict[str, Any], name: str) -> int:
    dataset = dataset_config(config, name)
    started = time.time()
    with dataset_lock(config, name):
        remove_stale_locks(config, name)
        args = ["check", "--no-cache"]
        subset = str(config.get("check_read_data_subset") or "")
        if subset:
            args.append(f"--read-data-subset={subset}")
        result = restic(config, name, *args, check=False)
    ok = result.returncode == 0
    metrics = {
        "rempart_check_last_run_timestamp_seconds": ("last restic check", time.time()),
        "rempart_check_success": ("1 if the last restic check found no error", 1 if ok else 0),
        "rempart_check_duration_seconds": ("duration of the last check", time.time() - started),
    }
    write_metrics(config, f"rempart_check_{name}", metrics, {"dataset": name, "host": dataset["host"]})
    if not ok:
        log(f"rempart: check of {name} FAILED: {(result.stdout + result.stderr).strip()[-1500:]}", 3)
        alert(config, name, ["check-failed"])
        return EXIT_FAILED
    log(f"rempart: check of {name} passed (read data subset {subset or 'none'})")
    return EXIT_OK


# --------------------------------------------------------------------------- admin (root)


def admin_status(config: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"status": _read_status(config, name), "hold": hold_of(config, name)}
        for name in sorted(config["datasets"])
    }


ADMIN_CACHE_DIR = "/root/.cache/rempart-restic"  # restic run as root by the admin command: its own cache


def chosen_datasets(config: dict[str, Any], names: Sequence[str]) -> list[str]:
    """The named datasets (each checked), or every dataset of this server."""
    chosen = list(names) or sorted(config["datasets"])
    for name in chosen:
        dataset_config(config, name)
    return chosen


def local_connections(config: dict[str, Any]) -> list[str]:
    """restic restores with one worker per backend connection (local: 2 by default); more let a worker decrypt
    and write while another waits for the disk."""
    return ["-o", f"local.connections={int(config.get('local_connections', 2))}"]


def init_missing(config: dict[str, Any], names: Sequence[str], jobs: int) -> int:
    """`restic init` of every dataset repository that does not exist yet, `jobs` at a time (each init is a key
    derivation: a GHT server's datasets in a loop add up). Prints the datasets it created, one per line."""
    repositories = Path(config["repos_dir"])
    missing = [
        name for name in chosen_datasets(config, names) if not (repositories / name / "config").exists()
    ]

    def one(name: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        return name, restic(config, name, "init", check=False)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, missing))
    failed = [name for name, result in results if result.returncode != 0]
    for name, result in results:
        if result.returncode == 0:
            print(name)
        else:
            log(f"rempart: restic init of {name} FAILED: {result.stderr.strip()[-400:]}", 3)
    return EXIT_FAILED if failed else EXIT_OK


def restore_all(config: dict[str, Any], target: str, names: Sequence[str], snapshot: str, jobs: int) -> int:
    """Restore several datasets side by side into TARGET (each under its own paths), `jobs` at a time: after a
    disaster the establishment needs everything back, and one restic restore leaves a core idle while it waits
    for the disk. Each restore holds restic's shared lock (a prune waits). One JSON line per dataset on stdout."""
    chosen = chosen_datasets(config, names)

    def one(name: str) -> dict[str, Any]:
        env = {**restic_env(config, name), "RESTIC_CACHE_DIR": ADMIN_CACHE_DIR}
        started = time.monotonic()
        result = subprocess.run(
            [config.get("restic", "/usr/bin/restic"), *local_connections(config), "restore", snapshot,
             "--target", target, "--quiet"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        return {"dataset": name, "rc": result.returncode, "seconds": round(time.monotonic() - started, 2),
                "error": result.stderr.strip()[-400:]}  # fmt: skip

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, chosen))
    for entry in results:
        print(json.dumps(entry, sort_keys=True))
    failed = [r["dataset"] for r in results if r["rc"] != 0]
    log(f"rempart: restore-all into {target}: {len(results) - len(failed)} of {len(results)} dataset(s) "
        f"restored{'; FAILED: ' + ', '.join(failed) if failed else ''}", 3 if failed else 6)  # fmt: skip
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rempart-backup-admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("job", "retention", "check"):
        sub.add_parser(action).add_argument("dataset")
    hold = sub.add_parser("hold", help="suspend retention on a dataset")
    hold.add_argument("dataset")
    hold.add_argument("--reason", required=True)
    hold.add_argument("--by", default=os.environ.get("SUDO_USER") or "admin")
    clear = sub.add_parser("clear-hold", help="resume retention after an anomaly was investigated")
    clear.add_argument("dataset")
    clear.add_argument("--reason", required=True, help="what the investigation concluded")
    clear.add_argument("--by", default=os.environ.get("SUDO_USER") or "admin")
    sub.add_parser("status", help="per dataset: last job, anomaly, hold (JSON)")
    init = sub.add_parser("init", help="create the repositories that do not exist yet (as the service user)")
    init.add_argument("datasets", nargs="*", help="default: every dataset of this server")
    init.add_argument("--jobs", type=int, default=2)
    every = sub.add_parser("restore-all", help="restore every (or the named) dataset(s) at once into TARGET")
    every.add_argument("target")
    every.add_argument("datasets", nargs="*", help="default: every dataset of this server")
    every.add_argument("--snapshot", default="latest")
    every.add_argument("--jobs", type=int, default=3, help="datasets restored at the same time (default 3)")
    run = sub.add_parser("restic", help="run restic on a dataset's repository (restore, snapshots, ...)")
    run.add_argument("dataset")
    run.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    config = load_config()
    if args.action == "restore-all":
        return restore_all(config, args.target, args.datasets, args.snapshot, args.jobs)
    if args.action != "restic" and os.geteuid() == 0:
        drop_privileges(config["user"])
    if args.action == "init":
        return init_missing(config, args.datasets, args.jobs)
    if args.action == "status":
        print(json.dumps(admin_status(config), indent=2, sort_keys=True))
        return EXIT_OK
    dataset_config(config, args.dataset)
    if args.action == "job":
        return job(config, args.dataset)
    if args.action == "retention":
        return retention(config, args.dataset)
    if args.action == "check":
        return check(config, args.dataset)
    if args.action == "hold":
        set_hold(config, args.dataset, [f"manual: {args.reason}"], by=args.by)
        return EXIT_OK
    if args.action == "clear-hold":
        if not clear_hold(config, args.dataset, args.by, args.reason):
            print(f"{args.dataset}: no prune hold")
        return EXIT_OK
    extra = [a for a in args.args if a != "--"]
    env = {
        **os.environ,
        **restic_env(config, args.dataset),
        "RESTIC_CACHE_DIR": ADMIN_CACHE_DIR,
    }
    if os.geteuid() == 0 and (extra[:1] or [""])[0] not in READ_ONLY_COMMANDS:
        drop_privileges(config["user"])  # anything that writes keeps the repository owned by the service user
        env["RESTIC_CACHE_DIR"] = str(state(config, "cache"))
    os.execve(config.get("restic", "/usr/bin/restic"), ["restic", *local_connections(config), *extra], env)
    return EXIT_FAILED


def drop_privileges(user: str) -> None:
    """Admin actions run as the service user so that every state file keeps one owner."""
    import pwd

    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


if __name__ == "__main__":
    sys.exit(main())
