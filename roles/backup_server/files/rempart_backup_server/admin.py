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
    dataset_config,
    restic,
    restic_env,
    state,
)
from rempart_backup_server.holds import hold_of
from rempart_backup_server.job import read_status

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
        return name, restic(config, name).run("init", check=False)

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
        runner = Restic(config.get("restic", RESTIC), env, options=local_connections(config))
        result = runner.run("restore", snapshot, "--target", target, "--quiet", check=False)
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


def run_restic(config: dict[str, Any], name: str, args: Sequence[str]) -> int:
    """restic on a dataset's repository for the admin (replaces this process): read-only commands as root,
    anything that writes as the service user, so that the repository keeps one owner."""
    extra = [a for a in args if a != "--"]
    env = {**os.environ, **restic_env(config, name), "RESTIC_CACHE_DIR": ADMIN_CACHE_DIR}
    if os.geteuid() == 0 and (extra[:1] or [""])[0] not in READ_ONLY_COMMANDS:
        drop_privileges(config["user"])
        env["RESTIC_CACHE_DIR"] = str(state(config, "cache"))
    os.execve(config.get("restic", RESTIC), ["restic", *local_connections(config), *extra], env)
    return EXIT_FAILED
