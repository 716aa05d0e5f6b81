#!/usr/bin/python3
"""Rempart offsite copy (architecture flow 4), run by rempart-offsite-copy.service on the backup server.

For each dataset: ``restic copy`` of the on-site repository into its offsite S3 repository (created on the first
run with ``restic init --from-repo … --copy-chunker-params``, same password, so deduplication matches), then the
retention refresh (``rempart.offsite.retention``, deployed beside this file) so that every repository state of the
last ``retention_days`` days stays locked and recoverable. Only TRUSTED snapshots are copied (the backup server's
rule, ``rempart_backup_server.trust``: admitted, flagged by no anomaly rule, arrived before any open prune hold): what
arrives during a hold waits on-site until an admin clears it, and an anomaly's snapshot never leaves. The lag counts
trusted snapshots not yet offsite; ``rempart_offsite_snapshots_untrusted`` counts those kept back.

Writes Prometheus textfile metrics ``rempart_offsite_*`` per dataset and exits non-zero (unit failed, journal at
err/crit) when a dataset failed or lags more than ``max_lag_seconds``: never silent.

Run as ``python3 -I /usr/local/lib/rempart/python/rempart_run.py /usr/local/lib/rempart-offsite/rempart_offsite_copy.py``
(the library rempart_host: role program_library); a crash still writes ``rempart_program_last_run_success`` 0 and
exits non-zero.

Credentials: the writer key is read from its root-only file (0600) before the program drops to the backup
server's user; the repository password comes from the backup server's secrets; both go to restic through its
environment, never argv or logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rempart_backup_server.admission import server_key
from rempart_backup_server.trust import trusted_ids
from rempart_host import alert as alert_command
from rempart_host import program
from rempart_host.files import read_json, write_atomic
from rempart_host.journal import log
from rempart_host.ledger import Ledger
from rempart_host.metrics import write_metrics as write_textfile
from rempart_host.privileges import drop_privileges
from rempart_host.restic import Restic, parse_time
from rempart_host.secrets import repository_password

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the deployed rempart.offsite.s3 / rempart.offsite.retention

CONFIG = Path(os.environ.get("REMPART_OFFSITE_CONFIG", "/etc/rempart/offsite-copy.json"))
RESTIC_NO_REPOSITORY = 10  # restic >= 0.17: "repository does not exist"


def load_writer_credentials(path: Path) -> dict[str, str]:
    """KEY=value lines of the root-only writer key file (read before dropping privileges)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip():
            values[key.strip()] = value.strip()
    missing = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} - set(values)
    if missing:
        raise RuntimeError(f"{path}: missing {', '.join(sorted(missing))}")
    return values


def restic_env(config: dict[str, Any], name: str, writer: dict[str, str]) -> dict[str, str]:
    password = repository_password(config["local_secrets_dir"], name)
    dataset = config["datasets"][name]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": config["state_dir"],
        "RESTIC_REPOSITORY": dataset["offsite"],
        "RESTIC_PASSWORD": password,
        "RESTIC_FROM_REPOSITORY": dataset["local"],
        "RESTIC_FROM_PASSWORD": password,  # same password: a restore from offsite needs nothing new
        "RESTIC_CACHE_DIR": str(Path(config["state_dir"]) / "cache"),
        "AWS_ACCESS_KEY_ID": writer["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": writer["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": config["region"],
    }
    # the on-site repository is opened with the server's own key (a key file a client planted is never tried)
    key = server_key(config["server_state_dir"], name, dataset["local"])
    if key:
        env["RESTIC_FROM_KEY_HINT"] = key
    return env


def restic(env: dict[str, str], *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """restic with this environment; the caller judges its exit status (no exception)."""
    return Restic("/usr/bin/restic", env).run(*args, check=False, timeout=timeout)


def _snapshots(env: dict[str, str], local: bool) -> list[dict[str, Any]]:
    run_env = dict(env)
    if local:
        run_env["RESTIC_REPOSITORY"], run_env["RESTIC_PASSWORD"] = (
            env["RESTIC_FROM_REPOSITORY"],
            env["RESTIC_FROM_PASSWORD"],
        )
        if "RESTIC_FROM_KEY_HINT" in env:
            run_env["RESTIC_KEY_HINT"] = env["RESTIC_FROM_KEY_HINT"]
    result = restic(run_env, "snapshots", "--json", "--no-lock", "--quiet")
    if result.returncode != 0:
        where = "on-site" if local else "offsite"
        raise RuntimeError(f"{where} snapshots failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    return json.loads(result.stdout or "[]")


def arrivals(config: dict[str, Any], name: str) -> dict[str, float]:
    """Snapshot id -> arrival time stamped by the backup server (its ledger), when known."""
    found: dict[str, float] = {}
    for entry in Ledger(Path(config["server_state_dir"]) / "ledger" / f"{name}.jsonl").read(
        skip_invalid=True
    ):
        if entry.get("event") == "snapshot" and isinstance(entry.get("arrived"), int | float):
            found[entry["id"]] = float(entry["arrived"])
    return found


def snapshot_time(snapshot: dict[str, Any]) -> float:
    return parse_time(snapshot["time"])


def lag_seconds(
    local: list[dict[str, Any]], copied: set[str], arrived: dict[str, float], now: float
) -> tuple[float, int]:
    """(age of the oldest on-site snapshot not yet offsite, how many are pending); (0, 0) when up to date.

    The oldest pending one is how long data has existed on-site only; its arrival time comes from the server's
    ledger (a client cannot forge it), else from the snapshot itself."""
    pending = [s for s in local if s["id"] not in copied]
    if not pending:
        return 0.0, 0
    oldest = min(arrived.get(s["id"], snapshot_time(s)) for s in pending)
    return max(0.0, now - oldest), len(pending)


def offsite_ids(snapshots: list[dict[str, Any]]) -> set[str]:
    """restic copy keeps the source snapshot's id in ``original``."""
    return {s.get("original") or s["id"] for s in snapshots}


def _state_path(config: dict[str, Any], name: str) -> Path:
    return Path(config["state_dir"]) / f"{name}.json"


def read_state(config: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        return json.loads(_state_path(config, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_metrics(config: dict[str, Any], name: str, values: dict[str, float]) -> None:
    metrics = {f"rempart_offsite_{metric}": (f"offsite copy: {metric.replace('_', ' ')}", value)
               for metric, value in values.items()}  # fmt: skip
    write_textfile(
        config["metrics_dir"], f"rempart_offsite_{name}", metrics, {"dataset": name, "host": config["host"]}
    )


def stored_bytes(s3: Any, bucket: str, prefix: str) -> int:
    from rempart.offsite.s3 import history

    return sum(e[0].size for e in history(s3, bucket, prefix).values() if e and not e[0].delete_marker)


def on_site_view(
    config: dict[str, Any], env: dict[str, str], name: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """The on-site snapshots and the ids the backup server trusts (oldest arrival first): read once per dataset
    and run, for the copy and for the lag."""
    return _snapshots(env, local=True), trusted_ids(config["server_state_dir"], name)


def copy_dataset(
    config: dict[str, Any], name: str, writer: dict[str, str], view: tuple[list[dict[str, Any]], list[str]]
) -> dict[str, Any]:
    """Copy + refresh one dataset; returns what the metrics need. Raises on failure."""
    from rempart.offsite.retention import refresh_retention
    from rempart.offsite.s3 import client

    env = restic_env(config, name, writer)
    timeout = float(config["timeout_seconds"])
    if config.get("_unreachable"):  # this run already found the bucket unreachable: fail the others at once
        raise RuntimeError(config["_unreachable"])
    try:  # restic retries an unreachable backend for up to 15 minutes: fail fast, the next run catches up
        probe = restic(
            env, "cat", "config", "--no-lock", "--quiet", timeout=float(config["probe_timeout_seconds"])
        )
    except subprocess.TimeoutExpired as error:
        config["_unreachable"] = f"offsite bucket unreachable within {error.timeout:.0f} s"
        raise RuntimeError(config["_unreachable"]) from error
    if probe.returncode == RESTIC_NO_REPOSITORY:
        init = restic(env, "init", "--copy-chunker-params", "--quiet", timeout=timeout)
        if init.returncode != 0:
            raise RuntimeError(f"restic init of the offsite repository failed: {init.stderr.strip()[-400:]}")
        log(f"rempart-offsite: {name}: offsite repository created (chunker parameters of the on-site one)")
    elif probe.returncode != 0:
        raise RuntimeError(
            f"offsite repository unreachable ({probe.returncode}): {probe.stderr.strip()[-400:]}"
        )
    on_site = {s["id"] for s in view[0]}
    chosen = [i for i in view[1] if i in on_site]
    if not chosen:
        raise RuntimeError("no trusted snapshot to copy (none admitted yet, or all after an open prune hold: "
                           "rempart-backup-admin status)")  # fmt: skip
    copy = restic(env, "copy", "--retry-lock", config["retry_lock"], "--quiet", *chosen, timeout=timeout)
    if copy.returncode != 0:
        raise RuntimeError(f"restic copy failed ({copy.returncode}): {copy.stderr.strip()[-400:]}")
    copied = offsite_ids(_snapshots(env, local=False))
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    s3 = client(config["endpoint"], config["region"])
    prefix = f"{config['datasets'][name]['prefix'].strip('/')}/"
    cap = int(config.get("retention_cap_days") or 0) or None
    report = refresh_retention(
        s3, config["bucket"], int(config["retention_days"]), prefix=prefix, cap_days=cap
    )
    log(f"rempart-offsite: {name}: retention refresh: {report.summary()}")
    return {
        "copied": sorted(copied),
        "locks_extended": len(report.extended),
        "stored": stored_bytes(s3, config["bucket"], prefix),
    }


def run(config: dict[str, Any], names: list[str], writer: dict[str, str]) -> int:
    worst = 0
    for name in names:
        started = time.time()
        state = read_state(config, name)
        env = restic_env(config, name, writer)
        values: dict[str, float] = {}
        view = None
        try:
            view = on_site_view(config, env, name)
            result = copy_dataset(config, name, writer, view)
            previous = int(state.get("stored_bytes", 0))
            state.update(
                copied=result["copied"], stored_bytes=result["stored"], last_success=time.time(), failures=0
            )
            values.update(
                last_run_success=1,
                copied_bytes=max(0, result["stored"] - previous),
                stored_bytes=result["stored"],
                locks_extended=result["locks_extended"],
            )
            status = 0
        except (RuntimeError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as error:
            state["failures"] = int(state.get("failures", 0)) + 1
            values["last_run_success"] = 0
            log(f"rempart-offsite: {name}: offsite copy FAILED: {error}", 3)
            status = 1
        except Exception as error:  # (boto's errors: never leave the metrics unwritten)
            state["failures"] = int(state.get("failures", 0)) + 1
            values["last_run_success"] = 0
            log(f"rempart-offsite: {name}: offsite copy FAILED: {type(error).__name__}: {error}", 3)
            status = 1
        now = time.time()
        try:
            local, trusted_list = view or on_site_view(config, env, name)
            trusted = set(trusted_list)
            held_back = [s for s in local if s["id"] not in trusted]
            local = [s for s in local if s["id"] in trusted]
            lag, pending = lag_seconds(local, set(state.get("copied", [])), arrivals(config, name), now)
            values["snapshots_untrusted"] = len(held_back)
        except (RuntimeError, OSError, ValueError) as error:
            log(f"rempart-offsite: {name}: cannot read the on-site snapshots: {error}", 3)
            lag, pending = now - float(state.get("last_success", 0) or now), -1
        values.update(
            duration_seconds=now - started,
            lag_seconds=lag,
            snapshots_pending=pending,
            consecutive_failures=state["failures"],
            last_run_timestamp_seconds=now,
            last_success_timestamp_seconds=float(state.get("last_success", 0)),
            max_lag_seconds=float(config["max_lag_seconds"]),
        )
        write_metrics(config, name, values)
        write_atomic(_state_path(config, name), json.dumps(state) + "\n", 0o600)
        if status == 0 and lag > float(config["max_lag_seconds"]):
            log(
                f"rempart-offsite: {name}: offsite copy lags {lag:.0f} s (> {config['max_lag_seconds']} s)", 2
            )
            status = 3
        if status:
            reason = "failed" if status == 1 else f"lag {lag:.0f}s"
            alert_command.call(config.get("alert_command"), name, f"offsite: {reason}")
        else:
            log(f"rempart-offsite: {name}: offsite up to date ({values.get('copied_bytes', 0):.0f} new bytes, "
                f"{now - started:.1f} s)")  # fmt: skip
        worst = max(worst, status)
    return worst


def main(argv: list[str]) -> int:
    config = read_json(CONFIG)
    writer = load_writer_credentials(Path(config["writer_env"]))
    if os.getuid() == 0:
        drop_privileges(config["user"])
    names = argv or list(config["datasets"])
    unknown = [n for n in names if n not in config["datasets"]]
    if unknown:
        log(
            f"rempart-offsite: unknown dataset(s) {', '.join(unknown)}; known: {', '.join(config['datasets'])}",
            3,
        )
        return 2
    return run(config, names, writer)


if __name__ == "__main__":
    settings = read_json(CONFIG)
    sys.exit(
        program.run(lambda: main(sys.argv[1:]), program="offsite-copy", metrics_dir=settings["metrics_dir"])
    )
