#!/usr/bin/python3
"""Rempart restore drill: restore each dataset into a sandbox and prove it is usable (flow 6, BP100-OPS-11 / R22).

Installed by the Ansible role ``restore_drill`` as /usr/local/lib/rempart/rempart_restore_drill.py and run as
``python3 -I /usr/local/lib/rempart/python/rempart_run.py /usr/local/lib/rempart/rempart_restore_drill.py ...`` (the
library rempart_host: role program_library; a crash still writes ``rempart_program_last_run_success`` 0, exits
non-zero and the unit's ``OnFailure=`` alerts). Three steps, three units, each with only what it needs (issue 15: a
client's dump is hostile data, never code):

  run REQUEST        ``rempart-drill@<REQUEST>.service``, root without secrets: the secrets folder and the
                     repositories are inaccessible to it. REQUEST = "scheduled" (every configured dataset) or the
                     name of a request file <requests_dir>/<REQUEST>.json {"datasets": [...]} (playbooks/drill.yml).
                     Chooses the snapshot, starts the two units below per dataset, compares, writes the result.
  restore RESTIC REPOSITORY SECRETS SNAPSHOT TARGET [INCLUDE_FILE]
                     a transient unit as the backup service user that sees ONE secrets file, that dataset's (its
                     secrets folder is an empty read-only tmpfs with that one file bound in), only that dataset's
                     repository (the same way, read-only), no network: restic
                     restore, then every restored entry is lstat'ed; regular files are hashed (opened O_NOFOLLOW),
                     symlinks and special files are refused (listed, never opened). Prints JSON.
  (rempart_drill_load.py)
                     a transient unit with DynamicUser, no network, private /tmp, no secret, the configuration,
                     repositories, state and metrics folders inaccessible: the dump arrives on stdin (opened
                     O_NOFOLLOW by the parent), is loaded as a non-superuser into a throw-away server, rows counted.

For each dataset, in restore order (``depends_on`` first, BP100-OPS-12 / R23):
  * the snapshot: the newest TRUSTED one, by the backup server's own rule (``rempart_backup_server.trust``, what
    ``rempart-backup-admin trusted DATASET`` prints: admitted, no anomaly, not forgotten nor quarantined, older
    than any open hold); it must have a checksum manifest;
  * full restore for ``vital`` datasets and any dataset up to ``full_max_bytes``; above, a random sample of
    ``sample_files`` files of the manifest (a new sample every drill);
  * every restored file's sha256 against the job's manifest (missing, different or not a regular file = failed);
  * database dumps: loaded by rempart_drill_load.py; count(*) per table against, in this order of preference, the
    rows the SERVER counted when it admitted the job (ledger ``server_rows``), the rows the client claimed
    (``client.rows``, labelled client-asserted), or the rows of the dump's own COPY/INSERT data; ``rows_source``
    says which;
  * the time, against ``rto_hours`` (sampled datasets: extrapolated to the full size), and its steps: ``restore_s``
    (the restore unit: restic restore and every file hashed) and ``load_s`` (a database's load unit); the report
    adds the establishment's declared estimates for the steps the drill cannot time (``recovery_steps``).
Result JSON (rempart.reports.results.Drill) in <results_dir>/<UTC>.json, metrics rempart_drill_*; exit 1 and a
journal line at ``crit`` when any dataset failed: a failed verification is a failed drill, never a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import random
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rempart_host import program
from rempart_host.dumps import valid_rows
from rempart_host.files import write_atomic
from rempart_host.journal import log
from rempart_host.ledger import Ledger
from rempart_host.metrics import write_samples
from rempart_host.restored import scan_restored

CONFIG = Path(os.environ.get("REMPART_RESTORE_DRILL_CONFIG", "/etc/rempart/restore-drill.json"))
SANDBOX = [
    "PrivateNetwork=yes", "RestrictAddressFamilies=AF_UNIX", "IPAddressDeny=any", "PrivateTmp=yes",
    "PrivateDevices=yes", "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes",
    "CapabilityBoundingSet=", "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes", "RestrictNamespaces=yes",
    "RestrictRealtime=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes", "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service", "SystemCallErrorNumber=EPERM", "UMask=0077", "Nice=15",
    "IOSchedulingClass=idle",
]  # fmt: skip
ROWS_SOURCES = {
    "server": "server: counted by the backup server when it admitted the job",
    "client": "client-asserted: counted by the client while it dumped (not verified by the server)",
    "drill": "drill: counted by the drill in the COPY/INSERT data of the verified dump",
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class DrillError(Exception):
    """The dataset cannot be proven restorable (the message says why)."""


# --------------------------------------------------------------------------- backup server state (read-only)


class Server:
    def __init__(self, path: Path) -> None:
        self.config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))

    def ledger(self, name: str) -> list[dict[str, Any]]:
        return Ledger(Path(self.config["state_dir"]) / "ledger" / f"{name}.jsonl").read()

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """The dataset's lock: no retention/prune (nor job) changes the repository while it is restored. A lock
        file this (root) process creates is given to the service user, whose jobs open it too."""
        path = Path(self.config["state_dir"]) / "locks" / f"{name}.lock"
        with path.open("a") as handle:
            if os.fstat(handle.fileno()).st_uid != (owner := pwd.getpwnam(self.config["user"])).pw_uid:
                os.fchown(handle.fileno(), owner.pw_uid, owner.pw_gid)
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


def trusted(server: Server, name: str) -> list[str]:
    """The dataset's trusted snapshot ids, oldest first: the backup server's rule, read from its ledger and holds
    (rempart_backup_server is installed on this host by the backup_server role)."""
    from rempart_backup_server.trust import trusted_ids  # run step only: the restore unit has no state folder

    return trusted_ids(server.config["state_dir"], name)


def choose_snapshot(server: Server, name: str) -> tuple[dict[str, Any], str]:
    """(ledger entry, how it was chosen): the newest trusted snapshot, which must have a checksum manifest."""
    chosen = trusted(server, name)
    if not chosen:
        raise DrillError(f"no trusted snapshot of {name} (none admitted, or all after an open prune hold: "
                         "rempart-backup-admin status)")  # fmt: skip
    entry = next((e for e in reversed(server.ledger(name)) if e.get("event") == "snapshot"
                  and e.get("id") == chosen[-1]), None)  # fmt: skip
    if entry is None or not entry.get("manifest"):
        raise DrillError(f"trusted snapshot {chosen[-1][:8]} has no checksum manifest in the ledger")
    return entry, "newest trusted (rempart_backup_server.trust)"


def read_manifest(path: str) -> list[tuple[str, str]]:
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        if digest and name:
            entries.append((name, digest))
    return entries


def restic_pattern(path: str) -> str:
    return re.sub(r"([\\*?\[])", r"\\\1", path)


def expected_rows(entry: dict[str, Any], dump_rows: dict[str, int]) -> tuple[dict[str, int], str]:
    """The row counts the load is compared with, and where they come from (never silently the client's)."""
    if valid_rows(entry.get("server_rows")) and entry["server_rows"]:  # empty: nothing the server measured
        return entry["server_rows"], ROWS_SOURCES["server"]
    claimed = (entry.get("client") or {}).get("rows")
    if valid_rows(claimed) and claimed:
        return claimed, ROWS_SOURCES["client"]
    return dump_rows, ROWS_SOURCES["drill"]


def compare_rows(loaded: dict[str, int], expected: dict[str, int], source: str) -> list[str]:
    problems = [f"{table[:80]}: {loaded[table]} rows loaded, {rows} expected" for table, rows in sorted(expected.items())
                if table in loaded and loaded[table] != rows]  # fmt: skip
    missing = sorted(t[:80] for t in set(expected) - set(loaded))
    if missing:
        problems.append(f"tables missing after the load: {', '.join(missing[:10])}")
    return [f"{p} ({source.split(':')[0]})" for p in problems]


# --------------------------------------------------------------------------- the restore unit (one credential)


def restore_unit(
    restic: str, repository: str, secrets: str, snapshot: str, target: str, include: str | None
) -> int:
    password = json.loads(Path(secrets).read_text(encoding="utf-8"))["repository_password"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent", "RESTIC_REPOSITORY": repository,
           "RESTIC_PASSWORD": password}  # fmt: skip
    if os.environ.get("RESTIC_KEY_HINT"):  # the server's key (restore_properties): a planted key never tried
        env["RESTIC_KEY_HINT"] = os.environ["RESTIC_KEY_HINT"]
    args = [restic, "--no-lock", "--no-cache", "restore", snapshot, "--target", target]
    if include:
        args += ["--include-file", include]
    restored = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    files, refused = scan_restored(Path(target))
    sys.stdout.write(json.dumps({"rc": restored.returncode, "stderr": restored.stderr.strip()[-600:],
                                 "files": files, "refused": refused}) + "\n")  # fmt: skip
    return 0 if restored.returncode == 0 and not refused else 1


# --------------------------------------------------------------------------- starting the units


def start_unit(
    unit: str, properties: list[str], argv: list[str], stdin: int | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """Run argv in a transient unit (systemd-run --wait --pipe) and return the JSON object it printed last."""
    command = ["systemd-run", "--quiet", "--wait", "--pipe", "--collect", f"--unit={unit}",
               *(f"--property={p}" for p in properties), "--", *argv]  # fmt: skip
    done = subprocess.run(command, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, check=False, timeout=timeout)  # fmt: skip
    for line in done.stderr.decode("utf-8", "replace").splitlines()[-10:]:
        log(f"rempart: drill: {unit}: {line.lstrip('<0123456789>')[:300]}")
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise DrillError(f"{unit} exited {done.returncode} without a result")
    return answer


def restore_properties(config: dict[str, Any], server: dict[str, Any], name: str, target: Path) -> list[str]:
    from rempart_backup_server.admission import server_key  # run step only, as trusted()

    repos, secrets = server["repos_dir"], server["secrets_dir"]
    # the server's own key of the repository (read here: the restore unit cannot see the server's state)
    key = server_key(server["state_dir"], name, Path(repos) / name)
    return [
        *([f"Environment=RESTIC_KEY_HINT={key}"] if key else []),
        f"User={config['server_user']}", f"Group={config['server_user']}",
        f"TemporaryFileSystem={secrets}:ro", f"BindReadOnlyPaths={Path(secrets) / f'{name}.json'}",
        f"TemporaryFileSystem={repos}:ro", f"BindReadOnlyPaths={Path(repos) / name}",
        f"ReadWritePaths={target}", f"InaccessiblePaths=-{server['state_dir']}", f"InaccessiblePaths=-{Path(server['secrets_dir']).parent / 'tls'}",
        f"InaccessiblePaths=-{config['metrics_dir']}", f"RuntimeMaxSec={config.get('unit_timeout', '24h')}",
        *SANDBOX,
    ]  # fmt: skip


def load_properties(config: dict[str, Any]) -> list[str]:
    return [
        "DynamicUser=yes", f"RuntimeMaxSec={config.get('unit_timeout', '24h')}", "ProtectProc=invisible",
        *(f"InaccessiblePaths=-{p}" for p in config["load_forbidden_paths"]), *SANDBOX,
    ]  # fmt: skip


def open_dump(target: Path, name: str) -> int:
    """The dump, opened without following any link, refused unless it is a regular file."""
    folder = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=folder)
    except OSError as error:
        raise DrillError(f"refused: /{name} cannot be opened as a plain file ({error.strerror})") from None
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise DrillError(f"refused: /{name} is not a regular file")
    os.set_blocking(descriptor, True)
    return descriptor


def load_dump(config: dict[str, Any], dataset: dict[str, Any], target: Path, unit: str) -> dict[str, Any]:
    descriptor = open_dump(target, f"{dataset['database']}.sql")
    loader = str(Path(config["program_dir"]) / "rempart_drill_load.py")
    if dataset["kind"] == "postgresql":
        argv = program.command(loader, "postgresql", config["pg_bindir"], dataset["database"])
    else:
        argv = program.command(loader, "mariadb", dataset["database"])
    try:
        return start_unit(
            unit, load_properties(config), [*argv, *config["load_forbidden_paths"]], stdin=descriptor
        )
    finally:
        os.close(descriptor)


# --------------------------------------------------------------------------- one dataset


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def verify_files(result: dict[str, Any], selected: list[tuple[str, str]], restored: dict[str, Any]) -> None:
    files = restored.get("files") or {}
    refused = dict(map(tuple, restored.get("refused") or []))
    for path, digest in selected:
        found = files.get(path)
        if found is None:
            result["files_failed"] += 1
            why = f"refused ({refused[path]}, never opened)" if path in refused else "not restored"
            result["errors"].append(f"{path}: {why}")
        elif found[1] == digest:
            result["files_verified"] += 1
            result["bytes_restored"] += int(found[0])
        else:
            result["files_failed"] += 1
            result["errors"].append(
                f"{path}: sha256 {found[1][:16]}… differs from the manifest {digest[:16]}…"
            )


def drill_dataset(
    server: Server, config: dict[str, Any], dataset: dict[str, Any], work: Path, stamp: str
) -> dict[str, Any]:
    name = dataset["name"]
    started = time.monotonic()
    result: dict[str, Any] = {"dataset": name, "status": "failed", "source": "onsite", "files_verified": 0,
                              "files_failed": 0, "rows_checked": None, "bytes_restored": 0, "duration_s": 0.0,
                              "rto_hours": dataset.get("rto_hours"), "errors": [], "scope": "full"}  # fmt: skip
    target = work / name
    total = 0
    unit = f"{config.get('unit', 'rempart-drill')}-{{step}}-{name}-{stamp}"
    try:
        entry, chosen_by = choose_snapshot(server, name)
        with server.lock(name):  # checked again under the lock: retention may have run in between
            if entry["id"] not in trusted(server, name):
                raise DrillError(
                    f"snapshot {entry['id'][:8]} was forgotten or quarantined while the drill chose it"
                )
            result.update(snapshot=entry["id"], snapshot_chosen_by=chosen_by, snapshot_arrived=datetime.fromtimestamp(
                float(entry["arrived"]), UTC).isoformat(timespec="seconds"))  # fmt: skip
            manifest = read_manifest(entry["manifest"])
            if not manifest:
                raise DrillError(f"empty checksum manifest {entry['manifest']}")
            total = int((entry.get("stats") or {}).get("processed_bytes") or 0)
            result["files_in_manifest"] = len(manifest)
            selected = manifest
            owner = pwd.getpwnam(config["server_user"])
            target.mkdir(mode=0o700)
            os.chown(target, owner.pw_uid, owner.pw_gid)
            include = None
            if (dataset["kind"] == "files" and dataset.get("criticality") != "vital"
                    and total > int(config["full_max_bytes"]) and len(manifest) > int(config["sample_files"])):  # fmt: skip
                selected = random.SystemRandom().sample(manifest, int(config["sample_files"]))
                result["scope"] = "sample"
                include = work / f"{name}.include"
                include.write_text("".join(f"{restic_pattern(p)}\n" for p, _ in selected), encoding="utf-8")
                os.chown(include, owner.pw_uid, owner.pw_gid)
            if result["scope"] == "full" and total and free_bytes(work) < total * 1.1:
                raise DrillError(
                    f"not enough space in {work}: {free_bytes(work)} bytes free, {total} to restore"
                )
            restic = server.config.get("restic", "/usr/bin/restic")
            repository = str(Path(server.config["repos_dir"]) / name)
            secrets = str(Path(server.config["secrets_dir"]) / f"{name}.json")
            argv = program.command(str(Path(config["program_dir"]) / "rempart_restore_drill.py"), "restore", restic,
                                   repository, secrets, entry["id"], str(target), *([str(include)] if include else []))  # fmt: skip
            step = time.monotonic()
            restored = start_unit(unit.format(step="restore"), restore_properties(config, server.config, name, target),
                                  argv)  # fmt: skip
            result["restore_s"] = round(time.monotonic() - step, 3)
        if restored.get("rc") != 0:
            result["errors"].append(
                f"restic restore exited {restored.get('rc')}: {str(restored.get('stderr'))[-600:]}"
            )
        refused = restored.get("refused") or []
        if refused:
            result["refused_entries"] = len(refused)
            listed = ", ".join(f"{p[:120]} ({kind})" for p, kind in refused[:5])
            if dataset["kind"] != "files":
                result["errors"].append(f"refused: {len(refused)} symlink(s) or special file(s) restored, never "
                                        f"opened: {listed}")  # fmt: skip
            else:
                log(
                    f"rempart: drill of {name}: {len(refused)} symlink(s) or special file(s) not followed: {listed}",
                    4,
                )
        verify_files(result, selected, restored)
        if dataset["kind"] != "files" and result["files_failed"] == 0 and not result["errors"]:
            extra = set(restored.get("files") or {}) - {f"/{dataset['database']}.sql"}
            if extra:
                raise DrillError(f"refused: the dump's snapshot holds {len(extra)} other file(s)")
            step = time.monotonic()
            loaded = load_dump(config, dataset, target, unit.format(step="load"))
            result["load_s"] = round(time.monotonic() - step, 3)
            result["load"] = {k: loaded.get(k) for k in ("sandbox", "skipped", "refused")}
            if loaded.get("error"):
                raise DrillError(
                    f"{'refused' if loaded.get('refused') else 'load failed'}: {loaded['error']}"
                )
            rows, dump_rows = loaded.get("rows"), loaded.get("dump_rows")
            if not (valid_rows(rows) and valid_rows(dump_rows)):
                raise DrillError("the load returned no row counts")
            expected, result["rows_source"] = expected_rows(entry, dump_rows)
            result["errors"] += compare_rows(rows, expected, result["rows_source"])
            result["rows_checked"] = sum(rows.get(t, 0) for t in expected)
    except (DrillError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as error:
        result["errors"].append(str(error)[:1000])
    finally:
        shutil.rmtree(target, ignore_errors=True)
    result["duration_s"] = round(time.monotonic() - started, 3)
    estimate = result["duration_s"]
    if result["scope"] == "sample" and result["bytes_restored"]:
        estimate = result["duration_s"] * max(1.0, total / result["bytes_restored"])
    result["rto_estimated_s"] = round(estimate, 3)
    rto = dataset.get("rto_hours")
    if rto and config.get("fail_over_rto", True) and estimate > float(rto) * 3600:
        result["errors"].append(f"restore took {estimate:.0f} s, above the RTO of {rto} h")
    if result["files_failed"] == 0 and not result["errors"] and result["files_verified"] > 0:
        result["status"] = "passed"
    return result


# --------------------------------------------------------------------------- a drill run


def write_drill_metrics(metrics_dir: str, results: list[dict[str, Any]], started: float, finished: float,
                        ok: bool) -> None:  # fmt: skip
    samples = [
        ("rempart_drill_success", "1 if every dataset of the last restore drill was restored and verified", {},
         1 if ok else 0),
        ("rempart_drill_last_run_timestamp_seconds", "end of the last restore drill", {}, round(finished)),
        ("rempart_drill_duration_seconds", "duration of the last restore drill", {}, round(finished - started, 3)),
    ]  # fmt: skip
    samples += [("rempart_drill_dataset_success", "1 if the dataset was restored and verified by the last drill",
                 {"dataset": r["dataset"]}, 1 if r["status"] == "passed" else 0) for r in results]  # fmt: skip
    samples += [("rempart_drill_restore_seconds", "restore and verification time of the dataset",
                 {"dataset": r["dataset"]}, r["duration_s"]) for r in results]  # fmt: skip
    write_samples(metrics_dir, "rempart_drill", samples)


def requested(config: dict[str, Any], request: str) -> list[dict[str, Any]]:
    configured: list[dict[str, Any]] = config["datasets"]
    if request == "scheduled":
        return configured
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", request):
        raise SystemExit(f"bad request name {request!r}")
    names = json.loads((Path(config["requests_dir"]) / f"{request}.json").read_text(encoding="utf-8"))[
        "datasets"
    ]
    unknown = set(names) - {d["name"] for d in configured}
    if unknown:
        raise SystemExit(f"unknown dataset(s) in request {request}: {', '.join(sorted(unknown))}")
    return [d for d in configured if d["name"] in names]  # configured order is the restore order


def run(request: str) -> int:
    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    server = Server(Path(config["backup_config"]))
    datasets = requested(config, request)
    started_at, started = now_iso(), time.time()
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
    work = Path(config["work_dir"]) / stamp
    work.mkdir(parents=True, mode=0o711)  # the restore unit (service user) reaches its own target only
    work.chmod(0o711)
    results: list[dict[str, Any]] = []
    try:
        for dataset in datasets:
            log(f"rempart: drill: restoring {dataset['name']}")
            result = drill_dataset(server, config, dataset, work, stamp)
            results.append(result)
            level = 6 if result["status"] == "passed" else 2
            log(f"rempart: drill of {dataset['name']}: {result['status'].upper()} ({result['files_verified']} "
                f"files verified, {result['files_failed']} failed, rows {result['rows_checked']}, "
                f"{result['duration_s']:.1f} s){': ' + '; '.join(result['errors'])[:800] if result['errors'] else ''}",
                level)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finished = time.time()
    ok = bool(results) and all(r["status"] == "passed" for r in results)
    document = {"kind": "restore", "started": started_at, "finished": now_iso(), "request": request,
                "host": os.uname().nodename, "passed": ok, "datasets": results}  # fmt: skip
    name = f"{stamp}.json"
    write_atomic(
        Path(config["results_dir"]) / name, json.dumps(document, indent=2, ensure_ascii=False) + "\n", 0o640
    )
    if request != "scheduled":
        write_atomic(Path(config["requests_dir"]) / f"{request}.result", name + "\n", 0o640)
    write_drill_metrics(config["metrics_dir"], results, started, finished, ok)
    if not ok:
        failed = [r["dataset"] for r in results if r["status"] != "passed"]
        log(f"rempart: RESTORE DRILL FAILED for {', '.join(failed) or 'every dataset'} (result {name})", 2)
        return 1
    log(f"rempart: restore drill passed for {len(results)} dataset(s) (result {name})")
    return 0


def main(argv: Iterable[str]) -> int:
    args = list(argv)
    if len(args) == 3 and args[1] == "run":
        return run(args[2])
    if len(args) in (7, 8) and args[1] == "restore":
        return restore_unit(*args[2:7], args[7] if len(args) == 8 else None)
    log(
        "usage: rempart_restore_drill.py run scheduled|REQUEST | restore RESTIC REPOSITORY SECRETS SNAPSHOT TARGET [INCLUDE]",
        3,
    )
    return 64


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:  # the drill unit: never silent (metric, exit status, OnFailure=)
        settings = json.loads(CONFIG.read_text(encoding="utf-8"))
        sys.exit(
            program.run(lambda: main(sys.argv), program="restore-drill", metrics_dir=settings["metrics_dir"])
        )
    sys.exit(main(sys.argv))  # the restore step: its transient unit sees no metrics folder
