"""Root's actions on the backup server (rempart-backup-admin): status, init, restore-all, restic passthrough."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rempart_host.journal import log
from rempart_host.privileges import drop_privileges
from rempart_host.restic import Restic

from rempart_backup_server.config import (
    EXIT_FAILED,
    EXIT_OK,
    RESTIC,
    admission,
    dataset_config,
    dataset_lock,
    key_hint,
    restic,
    restic_env,
    state,
)
from rempart_backup_server.holds import hold_of
from rempart_backup_server.job import read_status, record_quarantine
from rempart_backup_server.trust import newest_trusted, resolve

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


def admin_status(config: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"status": read_status(config, name), "hold": hold_of(config, name)}
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
        result = restic(config, name).run("init", check=False)
        if result.returncode == 0:
            with admission(config, name) as gate:  # its key is the allowlist's first
                gate.record_current("init")
        return name, result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, missing))
    failed = [name for name, result in results if result.returncode != 0]
    for name, result in results:
        if result.returncode == 0:
            print(name)
        else:
            log(f"rempart: restic init of {name} FAILED: {result.stderr.strip()[-400:]}", 3)
    return EXIT_FAILED if failed else EXIT_OK


def restore_all(
    config: dict[str, Any], target: str, names: Sequence[str], snapshot: str | None, jobs: int
) -> int:
    """Restore several datasets side by side into TARGET (each under its own paths), `jobs` at a time: after a
    disaster the establishment needs everything back, and one restic restore leaves a core idle while it waits
    for the disk. Each restore holds restic's shared lock (a prune waits). One JSON line per dataset on stdout.

    Never `latest` (whatever a client wrote last): each dataset's newest TRUSTED snapshot (trust.py), or the
    one ``snapshot`` designates (an id, or a time: the newest trusted snapshot arrived by then)."""
    chosen = chosen_datasets(config, names)

    def one(name: str) -> dict[str, Any]:
        env = {**restic_env(config, name), "RESTIC_CACHE_DIR": ADMIN_CACHE_DIR}
        started = time.monotonic()
        try:
            chosen_id = resolve(config, name, snapshot)
        except LookupError as refused:
            return {"dataset": name, "rc": 1, "seconds": 0.0, "snapshot": None, "error": str(refused)}
        runner = Restic(
            config.get("restic", RESTIC), env, options=[*local_connections(config), *key_hint(config, name)]
        )
        result = runner.run("restore", chosen_id, "--target", target, "--quiet", check=False)
        return {"dataset": name, "rc": result.returncode, "seconds": round(time.monotonic() - started, 2),
                "snapshot": chosen_id, "error": result.stderr.strip()[-400:]}  # fmt: skip

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, chosen))
    for entry in results:
        print(json.dumps(entry, sort_keys=True))
    failed = [r["dataset"] for r in results if r["rc"] != 0]
    log(f"rempart: restore-all into {target}: {len(results) - len(failed)} of {len(results)} dataset(s) "
        f"restored{'; FAILED: ' + ', '.join(failed) if failed else ''}", 3 if failed else 6)  # fmt: skip
    return EXIT_FAILED if failed else EXIT_OK


def run_restic(config: dict[str, Any], name: str, args: Sequence[str]) -> int:
    """restic on a dataset's repository for the admin, with the server's key: read-only commands as root
    (replaces this process); anything that writes (key rotation, repair...) as the service user, so that the
    repository keeps one owner, under the dataset lock, after admission swept what no job brought, and the
    result joins admission's record (a key the admin adds joins the allowlist)."""
    extra = [a for a in args if a != "--"]
    env = {**os.environ, **restic_env(config, name), "RESTIC_CACHE_DIR": ADMIN_CACHE_DIR}
    argv = ["restic", *local_connections(config), *key_hint(config, name), *extra]
    if (extra[:1] or [""])[0] in READ_ONLY_COMMANDS:
        os.execve(config.get("restic", RESTIC), argv, env)
    if os.geteuid() == 0:
        drop_privileges(config["user"])
    env["RESTIC_CACHE_DIR"] = str(state(config, "cache"))
    with dataset_lock(config, name), admission(config, name) as gate:
        record_quarantine(config, name, gate.sweep(), time.time())
        rc = subprocess.run(argv, executable=config.get("restic", RESTIC), env=env, check=False).returncode
        gate.record_current(f"admin: restic {' '.join(extra[:2])}")
    return rc


def print_trusted(config: dict[str, Any], name: str) -> int:
    """`rempart-backup-admin trusted DATASET`: the id every restore, drill and copy uses (exit 1: none)."""
    found = newest_trusted(config, name)
    if found is None:
        log(f"rempart: {name} has no trusted snapshot", 4)
        return EXIT_FAILED
    print(found)
    return EXIT_OK
