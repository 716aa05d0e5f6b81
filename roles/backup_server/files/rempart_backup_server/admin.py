"""Root's actions on the backup server (rempart-backup-admin): status, init, restore-all, restic passthrough."""
# init also re-seals each repository's key with restic's default scrypt parameters (rempart_host.restic_key).

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rempart_host import restic_key
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
    repository,
    restic,
    restic_env,
    secrets_of,
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
    derivation: a GHT server's datasets in a loop add up), then the server's key of each re-sealed with restic's
    default scrypt parameters where the password allows it (fast_key). Prints the datasets it changed."""
    repositories = Path(config["repos_dir"])
    chosen = chosen_datasets(config, names)

    def one(name: str) -> tuple[str, str]:
        """(name, "" unchanged | "changed" | the failure)"""
        changed = ""
        if not (repositories / name / "config").exists():
            result = restic(config, name).run("init", check=False)
            if result.returncode != 0:
                return name, f"restic init FAILED: {result.stderr.strip()[-400:]}"
            with admission(config, name) as gate:  # its key is the allowlist's first
                gate.record_current("init")
            changed = "changed"
        try:
            with dataset_lock(config, name):
                return name, "changed" if fast_key(config, name) else changed
        except (OSError, restic_key.KeyFileError, ValueError) as error:
            return name, f"key re-seal FAILED: {error}"

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, chosen))
    for name, outcome in results:
        if outcome == "changed":
            print(name)
        elif outcome:
            log(f"rempart: {name}: {outcome}", 3)
    return EXIT_FAILED if any(o not in ("", "changed") for _, o in results) else EXIT_OK


def fast_key(config: dict[str, Any], name: str) -> bool:
    """Re-seal the server's key of a repository with restic's default scrypt parameters (rempart_host.restic_key:
    each restic start then opens it in milliseconds instead of about 0.5 CPU-second). Only for a password of at
    least 32 characters (Rempart's are random); kept only once the real restic has opened the repository with the
    new key; the old key file is then removed and leaves the allowlist. True if it changed something."""
    password = secrets_of(config, name)["repository_password"]
    if len(password) < restic_key.MIN_PASSWORD_LENGTH:
        return False
    keys = repository(config, name) / "keys"
    with admission(config, name) as gate:
        current = gate.key_hint()
        if current is None:
            return False
        sealed = (keys / current).read_bytes()
        if restic_key.has_default_params(sealed):
            return False
        new = restic_key.seal_key(restic_key.open_key(sealed, password), password,
                                  username=config["user"], hostname=socket.gethostname())  # fmt: skip
        new_id = restic_key.key_id(new)
        path = keys / new_id
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(new)
            handle.flush()
            os.fsync(handle.fileno())
        opened = Restic(
            config.get("restic", RESTIC), restic_env(config, name), options=["--key-hint", new_id]
        )
        result = opened.run("cat", "config", "--no-cache", "--no-lock", check=False)
        if result.returncode != 0:
            path.unlink()
            raise restic_key.KeyFileError(
                f"restic could not open the re-sealed key: {result.stderr.strip()[-300:]}"
            )
        gate.replace_key(current, new_id, "re-sealed with restic's default scrypt parameters")
        (keys / current).unlink()
    log(
        f"rempart: {name}: key {current[:8]} re-sealed as {new_id[:8]} (restic's default scrypt parameters)",
        6,
    )
    return True


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
