#!/usr/bin/python3
"""Rempart backup client: the job the backup server starts over SSH (flow 1, pull: BP100-ARCH-06).

Installed by the Ansible role ``backup_client`` as /usr/local/lib/rempart/rempart_backup_client.py; started
only through the forced command of the backup server's key (rempart-backup-ssh -> sudo rempart-backup-run ->
systemd-run, niced, CPU-capped and sandboxed), as ``python3 -I /usr/local/lib/rempart/python/rempart_run.py
/usr/local/lib/rempart/rempart_backup_client.py job DATASET`` (the library rempart_host: role program_library).
Standard library only (python3 of Debian 12).

  job DATASET                 reads one JSON line of credentials on stdin (nothing is stored on the client),
                              runs restic into the append-only repository through the server's tunnel,
                              writes the checksum manifest (sha256 per file) and a summary on stdout.
  hash-pipe OUT -- CMD...     runs a dump command, copies its output to stdout, writes its sha256 to OUT and
                              exits with the command's status (restic --stdin-from-command fails on it).

The job stops as soon as the server's SSH session ends (stdin closes) or restic stops making progress.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rempart_host import program
from rempart_host.dumps import CopyRows
from rempart_host.files import write_atomic
from rempart_host.journal import log

CONFIG = Path(os.environ.get("REMPART_BACKUP_CLIENT_CONFIG", "/etc/rempart/backup-client.json"))
CHUNK = 1 << 20


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


def hash_pipe(out: str, command: Sequence[str]) -> int:
    digest, size, rows = hashlib.sha256(), 0, CopyRows()
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE)
    assert process.stdout is not None
    sink = sys.stdout.buffer
    while chunk := process.stdout.read(CHUNK):
        digest.update(chunk)
        rows.feed(chunk)
        size += len(chunk)
        sink.write(chunk)
    sink.flush()
    rc = process.wait()
    record = {"sha256": digest.hexdigest(), "size": size, "rc": rc, "rows": rows.rows}
    Path(out).write_text(json.dumps(record), encoding="utf-8")
    return rc


def excluded(path: str, patterns: Sequence[str]) -> bool:
    name = os.path.basename(path)
    return any(fnmatch.fnmatchcase(path if "/" in p else name, p) for p in patterns)


class Manifest(threading.Thread):
    """sha256 of every regular file, reusing the previous digest when size, mtime and inode are unchanged."""

    def __init__(self, paths: Sequence[str], excludes: Sequence[str], cache: Path) -> None:
        super().__init__(daemon=True)
        self.paths, self.excludes, self.cache = paths, excludes, cache
        self.entries: list[dict[str, Any]] = []

    def run(self) -> None:
        previous: dict[str, list[Any]] = {}
        if self.cache.exists():
            try:
                previous = json.loads(self.cache.read_text(encoding="utf-8"))
            except ValueError:
                previous = {}
        current: dict[str, list[Any]] = {}
        for root in self.paths:
            for directory, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not excluded(os.path.join(directory, d), self.excludes))
                for name in sorted(files):
                    path = os.path.join(directory, name)
                    if excluded(path, self.excludes):
                        continue
                    try:
                        info = os.lstat(path)
                        if not os.path.isfile(path) or os.path.islink(path):
                            continue
                        key = [info.st_size, info.st_mtime_ns, info.st_ino]
                        cached = previous.get(path)
                        if cached and cached[:3] == key:
                            digest = cached[3]
                        else:
                            sha = hashlib.sha256()
                            with open(path, "rb") as handle:
                                while chunk := handle.read(CHUNK):
                                    sha.update(chunk)
                            digest = sha.hexdigest()
                    except OSError:
                        continue  # vanished or unreadable: restic reports it too
                    current[path] = [*key, digest]
                    self.entries.append(
                        {"type": "manifest", "path": path, "sha256": digest, "size": info.st_size}
                    )
        write_atomic(self.cache, json.dumps(current), 0o600)


def dump_command(dataset: dict[str, Any]) -> list[str]:
    database = dataset["database"]
    user = dataset.get("db_user") or ("postgres" if dataset["kind"] == "postgresql" else "root")
    if dataset["kind"] == "postgresql":
        return ["runuser", "-u", user, "--", "pg_dump", "--no-password", "--format=plain", database]
    return [
        "mariadb-dump",
        "--single-transaction",
        "--routines",
        "--triggers",
        "--events",
        "--databases",
        database,
    ]


def job(name: str) -> int:
    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    dataset = config["datasets"].get(name)
    if dataset is None:
        log(f"rempart: refused: {name!r} is not a dataset of this host", 3)
        return 64
    credentials = json.loads(sys.stdin.readline() or "{}")
    work = Path(config["state_dir"]) / name
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = work / "ca.pem"
    ca.write_text(credentials["ca_pem"], encoding="utf-8")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(work),
        "RESTIC_REPOSITORY": f"rest:https://127.0.0.1:{dataset['tunnel_port']}/{name}/",
        "RESTIC_REST_USERNAME": credentials["http_user"],
        "RESTIC_REST_PASSWORD": credentials["http_password"],
        "RESTIC_PASSWORD": credentials["repository_password"],
        "RESTIC_CACERT": str(ca),
        "RESTIC_CACHE_DIR": config["cache_dir"],
        "RESTIC_COMPRESSION": dataset.get("compression", "auto"),
        "RESTIC_READ_CONCURRENCY": str(dataset.get("read_concurrency", 2)),
        "RESTIC_PROGRESS_FPS": "1",
    }
    if int(config.get("gomaxprocs") or 0) > 0:
        env["GOMAXPROCS"] = str(config["gomaxprocs"])
    # --no-scan: no second walk of the dataset to estimate the remaining time (nobody watches a pull job)
    args = [config.get("restic", "/usr/bin/restic"), "backup", "--json", "--no-scan", "--host", config["host"],
            "--tag", "rempart", "--tag", f"dataset-{name}"]  # fmt: skip
    if dataset.get("limit_upload_kib"):
        args += ["--limit-upload", str(dataset["limit_upload_kib"])]
    manifest: Manifest | None = None
    dumped: dict[str, Any] = {}
    dump_hash = work / "dump.sha256.json"
    if dataset["kind"] == "files":
        for pattern in dataset.get("excludes", []):
            args += ["--exclude", pattern]
        args += dataset["paths"]
        manifest = Manifest(dataset["paths"], dataset.get("excludes", []), work / "manifest-cache.json")
    else:
        dump_hash.unlink(missing_ok=True)
        args += ["--stdin-from-command", "--stdin-filename", f"{dataset['database']}.sql", "--",
                 *program.command(os.path.abspath(__file__), "hash-pipe", str(dump_hash), "--"),
                 *dump_command(dataset)]  # fmt: skip
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    reason: list[str] = []

    def server_gone() -> None:  # the server keeps our stdin open for the whole job
        sys.stdin.buffer.read()
        if process.poll() is None:
            reason.append("server closed the session")
            process.terminate()

    threading.Thread(target=server_gone, daemon=True).start()
    if manifest:
        manifest.start()
    stall = float(config.get("stall_seconds", 300))
    progress: dict[str, Any] = {"mark": None, "at": time.monotonic(), "saved": False}

    def watchdog() -> None:
        while process.poll() is None and not progress["saved"]:
            time.sleep(1)
            if time.monotonic() - progress["at"] > stall and process.poll() is None and not progress["saved"]:
                reason.append(f"no progress for {stall:.0f} s (repository unreachable or full)")
                process.terminate()
                return

    threading.Thread(target=watchdog, daemon=True).start()
    summary: dict[str, Any] = {}
    errors: list[str] = []
    for line in process.stdout:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        kind = record.get("message_type")
        if kind == "status":
            mark = (record.get("bytes_done"), record.get("files_done"))
            if mark != progress["mark"]:
                progress.update(mark=mark, at=time.monotonic())
        elif kind == "summary":
            summary = record
            progress["saved"] = True  # the snapshot is stored: restic is only exiting
        elif kind in ("error", "exit_error"):
            errors.append(str(record.get("message") or record.get("error", {}).get("message", "")))
    rc = process.wait()
    if manifest:
        manifest.join()
        for entry in manifest.entries:
            emit(entry)
    elif dump_hash.exists():
        dumped = json.loads(dump_hash.read_text(encoding="utf-8"))
        emit({"type": "manifest", "path": f"/{dataset['database']}.sql", "sha256": dumped["sha256"],
              "size": dumped["size"], "rows": dumped.get("rows", {})})  # fmt: skip
    if reason and rc == 0:
        rc = 1
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    emit({"type": "summary", "rc": rc, "restic": summary, "error": "; ".join(reason + errors)[:1000],
          "rows": dumped.get("rows"), "cpu_seconds": usage.ru_utime + usage.ru_stime, "max_rss_kib": usage.ru_maxrss})  # fmt: skip
    if rc != 0:
        log(f"rempart: job {name} failed (rc={rc}): {'; '.join(reason + errors)[:500]}", 3)
    return rc


def main(argv: Sequence[str]) -> int:
    if len(argv) >= 3 and argv[1] == "hash-pipe":
        rest = list(argv[3:])
        return hash_pipe(argv[2], rest[1:] if rest[:1] == ["--"] else rest)
    if len(argv) == 3 and argv[1] == "job":
        return job(argv[2])
    log("usage: rempart_backup_client.py job DATASET | hash-pipe OUT -- CMD...", 3)
    return 64


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)  # a watcher thread may still block on stdin: do not wait for it
