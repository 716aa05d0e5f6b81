#!/usr/bin/python3
"""Rempart restore drill: restore each dataset into a sandbox and prove it is usable (flow 6, BP100-OPS-11 / R22).

Installed by the Ansible role ``restore_drill`` as /usr/local/lib/rempart/rempart_restore_drill.py and run only by
``rempart-drill@<request>.service`` on the backup server: user ``rempart``, **no network** (PrivateNetwork=yes),
repositories read-only, the jobs' SSH key and the TLS authority invisible. Standard library only.

  run REQUEST     REQUEST = "scheduled" (every configured dataset) or the name of a request file
                  <requests_dir>/<REQUEST>.json {"datasets": [...]} written by playbooks/drill.yml.

For each dataset, in restore order (``depends_on`` first, BP100-OPS-12 / R23):
  * the newest *trusted* snapshot of the arrival ledger that still exists and has a checksum manifest;
  * ``restic restore`` (``--no-lock``: the repository is never written) into <work_dir>/<run>/<dataset>;
    full for ``vital`` datasets and for any dataset up to ``full_max_bytes``; above, a random sample of
    ``sample_files`` files of the manifest (a new sample every drill);
  * every restored file's sha256 against the job's manifest (missing or different = failed);
  * PostgreSQL dumps: loaded into an ephemeral cluster (initdb in the sandbox, unix socket only, deleted after)
    with ON_ERROR_STOP, then ``count(*)`` of every table against the rows the client counted in the dump stream
    at backup time (ledger), or, for older snapshots, against the COPY rows of the verified dump itself;
  * the time, against ``rto_hours`` (sampled datasets: extrapolated to the full size).
Result JSON (rempart.results.Drill) in <results_dir>/<UTC>.json, metrics rempart_drill_*; exit 1 and a
journal line at ``crit`` when any dataset failed: a failed verification is a failed drill, never a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CONFIG = Path(os.environ.get("REMPART_RESTORE_DRILL_CONFIG", "/etc/rempart/restore-drill.json"))
CHUNK = 1 << 20
COPY_HEADER = re.compile(rb"^COPY (.+?) (?:\(.*\) )?FROM stdin;$")
ROLE_REFERENCES = re.compile(
    r"(?:OWNER TO|AUTHORIZATION|GRANT .+? TO|SET ROLE) (\"[^\"]+\"|[a-z_][a-z0-9_$]*)"
)


def log(message: str, priority: int = 6) -> None:
    print(f"<{priority}>{message}", file=sys.stderr, flush=True)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, text: str, mode: int = 0o640) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    tmp.replace(path)


# --------------------------------------------------------------------------- dump parsing


class CopyRows:
    """Rows per table of a plain pg_dump stream (COPY ... FROM stdin; blocks), fed in chunks of any size."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.table: str | None = None
        self.carry = b""

    def feed(self, chunk: bytes) -> None:
        data = self.carry + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self.carry = data
            return
        self.carry = data[cut + 1 :]
        self._scan(b"\n" + data[: cut + 1])

    def _scan(self, text: bytes) -> None:  # text: "\n" + whole lines
        pos = 0
        while pos < len(text) - 1:
            if self.table is not None:
                end = text.find(b"\n\\.\n", pos)
                if end < 0:
                    self.rows[self.table] += text.count(b"\n", pos + 1)
                    return
                self.rows[self.table] += text.count(b"\n", pos + 1, end + 1)
                self.table = None
                pos = end + 3
                continue
            start = text.find(b"\nCOPY ", pos)
            if start < 0:
                return
            line_end = text.index(b"\n", start + 1)
            match = COPY_HEADER.match(text[start + 1 : line_end])
            if match:
                self.table = match.group(1).decode("utf-8", "replace")
                self.rows.setdefault(self.table, 0)
            pos = line_end


def dump_rows(path: Path) -> dict[str, int]:
    counter = CopyRows()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            counter.feed(chunk)
    return counter.rows


# --------------------------------------------------------------------------- backup server state (read-only)


class Server:
    def __init__(self, path: Path) -> None:
        self.config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))

    def env(self, name: str) -> dict[str, str]:
        secrets = json.loads((Path(self.config["secrets_dir"]) / f"{name}.json").read_text(encoding="utf-8"))
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/nonexistent",
            "RESTIC_REPOSITORY": str(Path(self.config["repos_dir"]) / name),
            "RESTIC_PASSWORD": secrets["repository_password"],
        }

    def restic(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.config.get("restic", "/usr/bin/restic"), "--no-lock", "--no-cache", *args],
            env=self.env(name), capture_output=True, text=True, check=False,
        )  # fmt: skip

    def ledger(self, name: str) -> list[dict[str, Any]]:
        path = Path(self.config["state_dir"]) / "ledger" / f"{name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """The dataset's lock: no retention/prune (nor job) changes the repository while it is restored."""
        path = Path(self.config["state_dir"]) / "locks" / f"{name}.lock"
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


def newest_verified_snapshot(server: Server, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ledger entry, restic snapshot) of the newest trusted snapshot that still exists and has a manifest."""
    listed = server.restic(name, "snapshots", "--json")
    if listed.returncode != 0:
        raise DrillError(f"cannot list snapshots: {listed.stderr.strip()[-400:]}")
    present = {s["id"]: s for s in json.loads(listed.stdout or "[]")}
    candidates = [e for e in server.ledger(name)
                  if e.get("event") == "snapshot" and e.get("trusted") and e.get("manifest") and e["id"] in present]  # fmt: skip
    if not candidates:
        raise DrillError(
            "no trusted snapshot with a checksum manifest in the ledger: nothing proven restorable"
        )
    entry = max(candidates, key=lambda e: float(e["arrived"]))
    return entry, present[entry["id"]]


def read_manifest(path: str) -> list[tuple[str, str]]:
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        if digest and name:
            entries.append((name, digest))
    return entries


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def restic_pattern(path: str) -> str:
    return re.sub(r"([\\*?\[])", r"\\\1", path)


class DrillError(Exception):
    """The dataset cannot be proven restorable (the message says why)."""


# --------------------------------------------------------------------------- scratch PostgreSQL


class ScratchPostgres:
    """A throw-away cluster inside the drill's sandbox: initdb in the work folder, unix socket only (no TCP,
    and the unit has no network anyway), every durability setting off, removed after the check."""

    def __init__(self, bindir: str, root: Path) -> None:
        self.bin, self.data, self.socket = Path(bindir), root / "pgdata", root / "pgsock"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(args), capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise DrillError(
                f"{Path(args[0]).name} failed: {(result.stderr or result.stdout).strip()[-600:]}"
            )
        return result

    def __enter__(self) -> ScratchPostgres:
        self.socket.mkdir(parents=True, mode=0o700)
        self.run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        options = (f"-c listen_addresses='' -c unix_socket_directories='{self.socket}' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c jit=off -c max_wal_size=4GB")  # fmt: skip
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"),
                 "-o", options, "-w", "-t", "120", "start")  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)

    def psql(self, database: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket),
                        "-U", "postgres", "-d", database, *args)  # fmt: skip

    def scalar(self, database: str, sql: str) -> str:
        return self.psql(database, "-tA", "-c", sql).stdout.strip()


def check_postgresql(bindir: str, root: Path, dump: Path, database: str, expected: dict[str, int]) -> int:
    """Load the dump into a scratch database, compare rows per table; the number of rows compared."""
    text_roles: set[str] = set()
    with dump.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith(("ALTER ", "GRANT ", "SET ROLE", "CREATE SCHEMA")):
                text_roles.update(m.strip('"') for m in ROLE_REFERENCES.findall(line))
    with ScratchPostgres(bindir, root) as pg:
        for role in sorted(text_roles - {"postgres", "PUBLIC", "public"}):
            quoted = role.replace('"', '""')
            pg.psql("postgres", "-c", f'CREATE ROLE "{quoted}" NOLOGIN')
        pg.psql("postgres", "-c", f'CREATE DATABASE "{database.replace(chr(34), chr(34) * 2)}"')
        pg.psql(database, "-f", str(dump))
        tables = set(pg.scalar(database, "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                                         "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").split())  # fmt: skip
        problems, checked = [], 0
        for table, rows in sorted(expected.items()):
            found = int(pg.scalar(database, f"SELECT count(*) FROM {table}"))
            checked += found
            if found != rows:
                problems.append(f"{table}: {found} rows restored, {rows} at backup time")
        missing = {t for t in expected if "." in t} - tables
        if missing:
            problems.append(f"tables missing after restore: {', '.join(sorted(missing))}")
        if problems:
            raise DrillError("; ".join(problems))
        return checked


# --------------------------------------------------------------------------- one dataset


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def drill_dataset(
    server: Server, config: dict[str, Any], dataset: dict[str, Any], work: Path
) -> dict[str, Any]:
    name = dataset["name"]
    started = time.monotonic()
    result: dict[str, Any] = {"dataset": name, "status": "failed", "source": "onsite", "files_verified": 0,
                              "files_failed": 0, "rows_checked": None, "bytes_restored": 0, "duration_s": 0.0,
                              "rto_hours": dataset.get("rto_hours"), "errors": [], "scope": "full"}  # fmt: skip
    target = work / name
    try:
        with server.lock(name):
            entry, snapshot = newest_verified_snapshot(server, name)
            result.update(snapshot=entry["id"], snapshot_arrived=datetime.fromtimestamp(
                float(entry["arrived"]), UTC).isoformat(timespec="seconds"))  # fmt: skip
            manifest = read_manifest(entry["manifest"])
            if not manifest:
                raise DrillError(f"empty checksum manifest {entry['manifest']}")
            total = int((snapshot.get("summary") or {}).get("total_bytes_processed")
                        or ((entry.get("stats") or {}).get("processed_bytes") or 0))  # fmt: skip
            result["files_in_manifest"] = len(manifest)
            selected = manifest
            args = ["restore", entry["id"], "--target", str(target)]
            if (dataset["kind"] == "files" and dataset.get("criticality") != "vital"
                    and total > int(config["full_max_bytes"]) and len(manifest) > int(config["sample_files"])):  # fmt: skip
                selected = random.SystemRandom().sample(manifest, int(config["sample_files"]))
                result["scope"] = "sample"
                include = work / f"{name}.include"
                include.write_text("".join(f"{restic_pattern(p)}\n" for p, _ in selected), encoding="utf-8")
                args += ["--include-file", str(include)]
            need = total if result["scope"] == "full" else 0
            if need and free_bytes(work) < need * 1.1:
                raise DrillError(
                    f"not enough space in {work}: {free_bytes(work)} bytes free, {need} to restore"
                )
            target.mkdir(parents=True, mode=0o700)
            restored = server.restic(name, *args)
            if restored.returncode != 0:
                result["errors"].append(f"restic restore exited {restored.returncode}: "
                                        f"{restored.stderr.strip()[-600:]}")  # fmt: skip
        for path, digest in selected:
            local = target / path.lstrip("/")
            try:
                actual = sha256_of(local)
                result["bytes_restored"] += local.stat().st_size
            except OSError as error:
                result["files_failed"] += 1
                result["errors"].append(f"{path}: not restored ({error.strerror})")
                continue
            if actual == digest:
                result["files_verified"] += 1
            else:
                result["files_failed"] += 1
                result["errors"].append(
                    f"{path}: sha256 {actual[:16]}… differs from the manifest {digest[:16]}…"
                )
        if dataset["kind"] == "postgresql" and result["files_failed"] == 0 and not result["errors"]:
            dump = target / f"{dataset['database']}.sql"
            client = entry.get("client") or {}
            expected = client.get("rows") or {}
            result["rows_source"] = (
                "backup-time count (client)" if expected else "COPY rows of the verified dump"
            )
            expected = expected or dump_rows(dump)
            result["rows_checked"] = check_postgresql(config["pg_bindir"], work / f"{name}.pg", dump,
                                                      dataset["database"], expected)  # fmt: skip
        elif dataset["kind"] == "mariadb":
            result["errors"].append(
                "scratch restore of mariadb dumps is not implemented: checksum verified only"
            )
    except (DrillError, OSError, ValueError, KeyError) as error:
        result["errors"].append(str(error))
    finally:
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(work / f"{name}.pg", ignore_errors=True)
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


def metric_lines(results: list[dict[str, Any]], started: float, finished: float, ok: bool) -> str:
    lines = [
        "# HELP rempart_drill_success 1 if every dataset of the last restore drill was restored and verified",
        "# TYPE rempart_drill_success gauge",
        f"rempart_drill_success {1 if ok else 0}",
        "# HELP rempart_drill_last_run_timestamp_seconds end of the last restore drill",
        "# TYPE rempart_drill_last_run_timestamp_seconds gauge",
        f"rempart_drill_last_run_timestamp_seconds {finished:.0f}",
        "# HELP rempart_drill_duration_seconds duration of the last restore drill",
        "# TYPE rempart_drill_duration_seconds gauge",
        f"rempart_drill_duration_seconds {finished - started:.3f}",
        "# HELP rempart_drill_dataset_success 1 if the dataset was restored and verified by the last drill",
        "# TYPE rempart_drill_dataset_success gauge",
    ]
    lines += [f'rempart_drill_dataset_success{{dataset="{r["dataset"]}"}} {1 if r["status"] == "passed" else 0}'
              for r in results]  # fmt: skip
    lines += ["# HELP rempart_drill_restore_seconds restore and verification time of the dataset",
              "# TYPE rempart_drill_restore_seconds gauge"]  # fmt: skip
    lines += [f'rempart_drill_restore_seconds{{dataset="{r["dataset"]}"}} {r["duration_s"]}' for r in results]
    return "\n".join(lines) + "\n"


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
    work.mkdir(parents=True, mode=0o700)
    results: list[dict[str, Any]] = []
    try:
        for dataset in datasets:
            log(f"rempart: drill: restoring {dataset['name']}")
            result = drill_dataset(server, config, dataset, work)
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
        Path(config["results_dir"]) / name, json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    )
    if request != "scheduled":
        write_atomic(Path(config["requests_dir"]) / f"{request}.result", name + "\n")
    write_atomic(Path(config["metrics_dir"]) / "rempart_drill.prom", metric_lines(results, started, finished, ok),
                 0o644)  # fmt: skip
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
    log("usage: rempart_restore_drill.py run scheduled|REQUEST", 3)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
