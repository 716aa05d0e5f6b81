"""Flow 1: the pull job. SSH to the client with the restricted key, reverse tunnel to the repository service,
then record what arrived (ledger, manifest, status, metrics) and run the anomaly check (flow 2)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rempart_host.files import write_atomic
from rempart_host.journal import log
from rempart_host.restic import parse_time

from rempart_backup_server.anomaly import (
    diff_stats,
    entropy_share,
    evaluate_anomaly,
    table_changes,
    trust_problems,
)
from rempart_backup_server.config import (
    EXIT_ANOMALY,
    EXIT_FAILED,
    EXIT_OK,
    alert,
    dataset_config,
    dataset_lock,
    ledger,
    publish_metrics,
    remove_stale_locks,
    repository_ids,
    secrets_of,
    snapshots,
    state,
)
from rempart_backup_server.holds import set_hold, write_hold_metric


def _job_metrics(config: dict[str, Any], name: str, status: dict[str, Any]) -> None:
    dataset = config["datasets"][name]
    free = os.statvfs(Path(config["repos_dir"]) / name)
    publish_metrics(
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


def read_status(config: dict[str, Any], name: str) -> dict[str, Any]:
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
) -> tuple[int, list[dict[str, Any]], str, dict[str, Any]]:
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
    started = time.time()
    status: dict[str, Any] = {}
    try:
        status = read_status(config, name)
        return _pull(config, name, dataset, status, started)
    except BaseException:
        # never silent: a crash (a malformed client summary, a damaged status file, a full disk...) or a stop
        # (SIGTERM, a timeout) is a failed job in the status and the metrics; rempart_host.program.run records it
        # in the ledger and exits non-zero
        finished = time.time()
        status.update(last_run=finished, duration=finished - started, last_ok=0,
                      failures=status.get("failures", 0) + 1)  # fmt: skip
        with contextlib.suppress(OSError):
            _finish(config, name, status)
        raise


def _pull(
    config: dict[str, Any], name: str, dataset: dict[str, Any], status: dict[str, Any], started: float
) -> int:
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
            ledger(config, name).append([{"event": "job-failed", "at": arrived, "rc": rc, "why": problem,
                                          "partial_snapshots": [s["id"] for s in new]}])  # fmt: skip
            alert(config, name, [f"job-failed: {problem}"])
            return EXIT_FAILED
        skew = float(config["anomaly"]["time_skew_seconds"])
        problems = trust_problems(new, dataset, started, arrived, skew)
        trusted = not problems
        entries = ledger(config, name).read()
        history = [
            e["stats"]
            for e in entries
            if e.get("event") == "snapshot" and e.get("trusted") and e.get("stats")
        ]
        previous = next((e["id"] for e in reversed(entries) if e.get("event") == "snapshot" and e.get("trusted")
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
            **table_changes(client.get("rows"), _previous_rows(entries)),
        }
        reasons = problems + evaluate_anomaly(current, history, dataset["kind"], config["anomaly"])
        manifest_file = None
        if manifest:
            lines = "".join(f"{m['sha256']}  {m['path']}\n" for m in manifest)
            manifest_file = state(config, "manifests", name, f"{newest['id']}.sha256")
            write_atomic(manifest_file, lines, 0o640)
        arrivals = [
            {"event": "snapshot", "id": s["id"], "arrived": arrived, "job_started": started, "claimed": s["time"],
             "trusted": trusted, "problems": problems, "anomaly": reasons,
             "stats": current if s is newest and trusted else None,
             "manifest": str(manifest_file) if manifest_file and s is newest else None,
             "client": {k: client.get(k) for k in ("restic", "cpu_seconds", "max_rss_kib", "rows")} if s is newest else None}
            for s in new
        ]  # fmt: skip
        ledger(config, name).append(arrivals)
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
            untrusted=len({s["id"] for s in after} - trusted_ids(ledger(config, name).read())),
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


def _previous_rows(entries: Sequence[dict[str, Any]]) -> dict[str, int] | None:
    """Rows per table of the last trusted database dump (None for files datasets or before the first)."""
    for entry in reversed(entries):
        if entry.get("event") == "snapshot" and entry.get("trusted") and entry.get("stats"):
            return (entry.get("client") or {}).get("rows")
    return None


def trusted_ids(entries: Sequence[dict[str, Any]]) -> set[str]:
    return {e["id"] for e in entries if e.get("event") == "snapshot" and e.get("trusted")}
