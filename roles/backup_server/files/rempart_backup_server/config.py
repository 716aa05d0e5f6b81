"""Configuration, state folders, the dataset lock, the local repositories' restic, ledgers and metrics."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rempart_host import alert as alert_command
from rempart_host.files import locked, read_json
from rempart_host.ledger import Ledger
from rempart_host.metrics import write_metrics
from rempart_host.restic import Restic
from rempart_host.secrets import dataset_secrets

from rempart_backup_server.admission import Admission, server_key
from rempart_backup_server.admission import admission_db as admission_db_of

CONFIG = Path(os.environ.get("REMPART_BACKUP_SERVER_CONFIG", "/etc/rempart/backup-server.json"))
EXIT_OK, EXIT_FAILED, EXIT_ANOMALY, EXIT_USAGE = 0, 1, 2, 64
RESTIC = "/usr/bin/restic"


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    return read_json(path)


def dataset_config(config: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        return config["datasets"][name]
    except KeyError:
        known = ", ".join(sorted(config["datasets"]))
        raise SystemExit(f"unknown dataset {name!r}; this server serves: {known}") from None


def secrets_of(config: dict[str, Any], name: str) -> dict[str, str]:
    return dataset_secrets(config["secrets_dir"], name)


def state(config: dict[str, Any], *parts: str) -> Path:
    return Path(config["state_dir"]).joinpath(*parts)


@contextlib.contextmanager
def dataset_lock(config: dict[str, Any], name: str) -> Iterator[None]:
    """Jobs, retention and check of one dataset never overlap (they are the only writers besides the client
    during its job, so holding this lock also means no legitimate restic process uses the repository)."""
    with locked(state(config, "locks", f"{name}.lock")):
        yield


def restic_env(config: dict[str, Any], name: str) -> dict[str, str]:
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(state(config)),
        "RESTIC_REPOSITORY": str(Path(config["repos_dir"]) / name),
        "RESTIC_PASSWORD": secrets_of(config, name)["repository_password"],
        "RESTIC_CACHE_DIR": str(state(config, "cache")),
    }


def repository(config: dict[str, Any], name: str) -> Path:
    return Path(config["repos_dir"]) / name


def admission_db(config: dict[str, Any], name: str) -> Path:
    return admission_db_of(config["state_dir"], name)


def key_hint(config: dict[str, Any], name: str) -> list[str]:
    """``--key-hint`` of the server's own key: a key file a client planted never stops restic's key search."""
    key = server_key(config["state_dir"], name, repository(config, name))
    return ["--key-hint", key] if key else []


def restic(config: dict[str, Any], name: str) -> Restic:
    """restic on a dataset's local repository, as the service user (its password, its cache, its key)."""
    return Restic(config.get("restic", RESTIC), restic_env(config, name), options=key_hint(config, name))


def admission(config: dict[str, Any], name: str) -> Admission:
    """The server's record of a dataset's repository (admission.py); the caller holds the dataset lock."""
    runner = Restic(config.get("restic", RESTIC), restic_env(config, name))
    return Admission(
        repository(config, name), admission_db(config, name), state(config, "quarantine", name), runner
    )


def snapshots(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return restic(config, name).json("snapshots", "--no-lock") or []


def repository_ids(config: dict[str, Any], name: str, folder: str) -> set[str]:
    """IDs of a folder of the local repository (snapshots, locks: the file names are the IDs), read without
    starting restic: each restic process costs a key derivation and, on a busy server, seconds of wall time."""
    path = Path(config["repos_dir"]) / name / folder
    return {entry.name for entry in path.iterdir()} if path.is_dir() else set()


def remove_stale_locks(config: dict[str, Any], name: str) -> None:
    """Locks an aborted job or check left behind (the caller holds the dataset lock: no legitimate restic runs)."""
    if repository_ids(config, name, "locks"):
        restic(config, name).run("unlock", "--remove-all", check=False)


def alert(config: dict[str, Any], name: str, reasons: list[str]) -> None:
    alert_command.call(config.get("alert_command"), name, ",".join(reasons))


def ledger(config: dict[str, Any], name: str) -> Ledger:
    """The server's own record of a dataset (arrivals, holds, failures): ``<state_dir>/ledger/<name>.jsonl``."""
    return Ledger(state(config, "ledger", f"{name}.jsonl"))


def publish_metrics(
    config: dict[str, Any], stem: str, metrics: Mapping[str, tuple[str, float]], labels: Mapping[str, str]
) -> None:
    write_metrics(config["metrics_dir"], stem, metrics, labels)
