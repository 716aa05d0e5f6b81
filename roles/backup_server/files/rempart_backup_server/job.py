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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rempart_host.files import write_atomic
from rempart_host.journal import log

from rempart_backup_server.admission import Expected, Verdict
from rempart_backup_server.anomaly import (
    diff_stats,
    entropy_share,
    evaluate_anomaly,
    restore_size,
    small_change,
    table_changes,
    trust_problems,
)
from rempart_backup_server.client_word import client_word
from rempart_backup_server.config import (
    EXIT_ANOMALY,
    EXIT_FAILED,
    EXIT_OK,
    admission,
    alert,
    dataset_config,
    dataset_lock,
    ledger,
    publish_metrics,
    repository_ids,
    restic,
    secrets_of,
    state,
)
from rempart_backup_server.evidence import (
    changed_shares,
    choose_files,
    digest_mismatches,
    dump_evidence,
    file_digests,
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
            "rempart_backup_quarantined_entries": ("repository entries admission moved out after the last job",
                                                   status.get("quarantined", 0)),
            "rempart_backup_admission_seconds": ("duration of the last job's admission", status.get("admission_seconds", 0)),
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


def expected_paths(dataset: dict[str, Any]) -> list[str]:
    """What the job's snapshot must say it holds: the dataset's paths, or the dump the client streams."""
    return list(dataset["paths"]) if dataset["kind"] == "files" else [f"/{dataset['database']}.sql"]


def record_quarantine(config: dict[str, Any], name: str, verdict: Verdict, started: float) -> None:
    """What admission moved out: a ledger entry, a journal line; an attack also holds the dataset and alerts."""
    if not verdict.rejected:
        return
    ledger(config, name).append([verdict.ledger_entry(started)])
    whys = "; ".join(f"{r.path}: {r.why}" for r in verdict.rejected[:5])
    more = f" (and {len(verdict.rejected) - 5} more)" if len(verdict.rejected) > 5 else ""
    log(f"rempart: QUARANTINE on {name}: {len(verdict.rejected)} entr(ies) moved out of the repository to "
        f"{verdict.quarantine}: {whys}{more}", 2 if verdict.attack else 4)  # fmt: skip
    if verdict.attack:
        set_hold(config, name, verdict.reasons(), by="admission")
        alert(config, name, verdict.reasons())


def _pull(
    config: dict[str, Any], name: str, dataset: dict[str, Any], status: dict[str, Any], started: float
) -> int:
    with dataset_lock(config, name), admission(config, name) as gate:
        record_quarantine(
            config, name, gate.sweep(), started
        )  # what appeared while no job of this dataset ran
        secrets = secrets_of(config, name)
        credentials = {
            "repository_password": secrets["repository_password"],
            "http_user": name,
            "http_password": secrets["http_password"],
            "ca_pem": Path(config["ca_cert"]).read_text(encoding="utf-8"),
        }
        rc, raw_manifest, why, raw_summary = run_ssh(config, name, credentials)
        arrived = time.time()
        client, manifest, word_problems = client_word(raw_summary, raw_manifest)
        skew = float(config["anomaly"]["time_skew_seconds"])
        expected = Expected(dataset["host"], expected_paths(dataset), started, arrived, skew)
        verdict = gate.judge(expected, job_ok=rc == 0)  # before anything reads what the client wrote
        record_quarantine(config, name, verdict, started)
        new = [verdict.record] if verdict.snapshot else []
        status.update(
            last_run=arrived,
            duration=arrived - started,
            admission_seconds=round(verdict.seconds, 2),
            quarantined=len(verdict.rejected),
        )
        if rc != 0 or not new:
            status.update(last_ok=0, failures=status.get("failures", 0) + 1)
            _finish(config, name, status)
            problem = why if rc != 0 else "no snapshot of this job was admitted"
            log(f"rempart: backup of {name} from {dataset['host']} FAILED (rc={rc}): {problem}", 3)
            ledger(config, name).append([{"event": "job-failed", "at": arrived, "rc": rc, "why": problem,
                                          "quarantine": verdict.reasons(),
                                          "partial_snapshots": [s["id"] for s in new]}])  # fmt: skip
            alert(config, name, [f"job-failed: {problem}"])
            return EXIT_FAILED
        return _record_arrival(config, name, dataset, status, started, arrived, new[0], client, manifest,
                               word_problems + verdict.reasons() + trust_problems(new, dataset, started, arrived, skew))  # fmt: skip


def _record_arrival(
    config: dict[str, Any], name: str, dataset: dict[str, Any], status: dict[str, Any], started: float,
    arrived: float, newest: dict[str, Any], client: dict[str, Any], manifest: list[dict[str, Any]],
    problems: list[str],
) -> int:  # fmt: skip
    """The admitted snapshot: the server's own measures of it, the anomaly rules, the ledger entry."""
    entries = ledger(config, name).read()
    history = [
        e["stats"] for e in entries if e.get("event") == "snapshot" and e.get("trusted") and e.get("stats")
    ]
    present = repository_ids(config, name, "snapshots")  # no restic start: each costs a key derivation
    previous = next((e["id"] for e in reversed(entries) if e.get("event") == "snapshot" and e.get("trusted")
                     and e["id"] in present), None)  # fmt: skip
    stats = diff_stats(config, name, previous, newest)
    total = int((newest.get("summary") or {}).get("total_files_processed", 0)) or 1
    previous_total = (history[-1].get("files") if history else None) or total
    with ThreadPoolExecutor(max_workers=1) as pool:  # the server's measures beside the entropy samples
        measuring = pool.submit(measure, config, name, dataset, newest["id"], stats["touched"], manifest)
        entropy = entropy_share(config, name, newest["id"], stats["touched"])
        measured = measuring.result()
    current = {
        "first": stats["first"],
        "files": total,
        "added_bytes": stats["added_bytes"],
        "processed_bytes": int((newest.get("summary") or {}).get("total_bytes_processed", 0)),
        "changed_ratio": (stats["added_files"] + stats["changed_files"]) / total,
        "touched_files": stats["added_files"] + stats["changed_files"],
        "changed_files": stats["changed_files"],
        "rewritten_ratio": stats["changed_files"] / max(previous_total, 1),
        "snapshot_bytes": (
            restore_size(config, name, newest["id"])
            if small_change(
                dataset["kind"], total, stats["changed_files"], int(config["anomaly"].get("min_files", 10))
            )
            else None
        ),
        "removed_files": stats["removed_files"],
        "removed_ratio": stats["removed_files"] / max(previous_total, 1),
        "entropy_share": entropy,
        "rows_changed": measured["rows_changed"],
        **table_changes(measured["server_rows"], _previous_rows(entries)),
    }
    problems = problems + measured["problems"]
    trusted = not problems
    reasons = problems + evaluate_anomaly(current, history, dataset["kind"], config["anomaly"])
    manifest_file = None
    if manifest:
        lines = "".join(f"{m['sha256']}  {m['path']}\n" for m in manifest)
        manifest_file = state(config, "manifests", name, f"{newest['id']}.sha256")
        write_atomic(manifest_file, lines, 0o640)
    ledger(config, name).append([
        {"event": "snapshot", "id": newest["id"], "arrived": arrived, "job_started": started,
         "claimed": newest["time"], "admitted": True, "trusted": trusted, "problems": problems, "anomaly": reasons,
         "stats": current if trusted else None, "manifest": str(manifest_file) if manifest_file else None,
         "server_rows": measured["server_rows"], "server_digests": measured["server_digests"],
         "digest_mismatches": measured.get("digest_mismatches") or [],
         "client": {k: client.get(k) for k in ("restic", "cpu_seconds", "max_rss_kib", "rows")}}
    ])  # fmt: skip
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
        untrusted=len(present - marked_trusted(ledger(config, name).read())),
    )
    if reasons:
        set_hold(config, name, reasons, by="anomaly-check", snapshot=newest["id"])
        alert(config, name, reasons)
    _finish(config, name, status)
    log(f"rempart: backup of {name}: snapshot {newest['id'][:8]} admitted ({current['added_bytes']} bytes added, "
        f"{arrived - started:.1f} s, admission {status.get('admission_seconds', 0)} s, "
        f"server measures {measured['seconds']} s)")  # fmt: skip
    return EXIT_ANOMALY if reasons else EXIT_OK


def measure(
    config: dict[str, Any], name: str, dataset: dict[str, Any], snapshot: str, touched: Sequence[str],
    manifest: Sequence[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """What the server measures itself in the admitted snapshot (evidence.py): rows per table and row changes
    of a dump, digests of sampled added/changed files; and where the client's word disagrees."""
    began = time.monotonic()
    thresholds, runner = config["anomaly"], restic(config, name)
    claimed = {m["path"]: m for m in manifest}
    result: dict[str, Any] = {
        "server_rows": None,
        "server_digests": None,
        "rows_changed": None,
        "problems": [],
    }
    if dataset["kind"] == "files":
        chosen = choose_files(touched, {p: m["size"] for p, m in claimed.items()},
                              int(thresholds.get("digest_samples", 16)),
                              int(thresholds.get("digest_budget_bytes", 256 << 20)))  # fmt: skip
        digests = file_digests(runner, snapshot, chosen, state(config, "scratch", name))
        result["server_digests"] = digests
        wrong = digest_mismatches(digests, {p: m["sha256"] for p, m in claimed.items()})
        result["digest_mismatches"] = wrong
        # a file saved while the job read it differs too: a lie is flagged when it is not an exception
        if wrong and 2 * len(wrong) >= len(digests):
            result["problems"].append(f"manifest-mismatch: {len(wrong)} of {len(digests)} sampled files differ "
                                      f"from the client's manifest ({wrong[0]})")  # fmt: skip
    else:
        path = expected_paths(dataset)[0]
        try:
            dump = dump_evidence(runner, snapshot, path)
        except (
            RuntimeError
        ) as unreadable:  # blobs an index places where they are not: restores would fail too
            result["problems"].append(f"dump-unreadable: {str(unreadable)[-200:]}")
            result["seconds"] = round(time.monotonic() - began, 2)
            return result
        # the one counter reads PostgreSQL's COPY blocks; a MariaDB dump's rows stay unmeasured here (the drill
        # counts its INSERT rows at the load)
        result["server_rows"] = dump["rows"] if dataset["kind"] == "postgresql" else None
        if path in claimed and claimed[path]["sha256"] != dump["sha256"]:
            result["problems"].append("dump-mismatch: the dump's sha256 differs from the client's")
        sample_file = state(config, "rowsample", f"{name}.json")
        if sample_file.exists():
            previous = json.loads(sample_file.read_text(encoding="utf-8"))
            result["rows_changed"] = changed_shares(previous, dump["sample"],
                                                    int(thresholds.get("rows_changed_min_rows", 100)))  # fmt: skip
        write_atomic(sample_file, json.dumps(dump["sample"]), 0o640)
    result["seconds"] = round(time.monotonic() - began, 2)
    return result


def _finish(config: dict[str, Any], name: str, status: dict[str, Any]) -> None:
    write_atomic(_status_path(config, name), json.dumps(status, sort_keys=True) + "\n")
    _job_metrics(config, name, status)


def _previous_rows(entries: Sequence[dict[str, Any]]) -> dict[str, int] | None:
    """Rows per table of the last trusted database dump, as the server counted them (None for files datasets
    or before the first)."""
    for entry in reversed(entries):
        if entry.get("event") == "snapshot" and entry.get("trusted") and entry.get("stats"):
            rows = entry.get("server_rows")
            return rows if isinstance(rows, dict) else None
    return None


def marked_trusted(entries: Sequence[dict[str, Any]]) -> set[str]:
    """Ids of the snapshots the ledger marks trusted (what the job and retention count; the rule restores use is trust.py)."""
    return {e["id"] for e in entries if e.get("event") == "snapshot" and e.get("trusted")}
