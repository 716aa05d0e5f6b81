"""The prune hold: retention suspended on a dataset after an anomaly, until an admin clears it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rempart_host.files import write_atomic
from rempart_host.journal import log

from rempart_backup_server.config import ledger, publish_metrics, state


def hold_path(config: dict[str, Any], name: str) -> Path:
    return state(config, "holds", f"{name}.json")


def hold_of(config: dict[str, Any], name: str) -> dict[str, Any] | None:
    path = hold_path(config, name)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_hold_metric(config: dict[str, Any], name: str) -> None:
    hold = hold_of(config, name)
    publish_metrics(
        config, f"rempart_hold_{name}",
        {
            "rempart_prune_hold": ("1 while retention is suspended on this repository (anomaly)", 1 if hold else 0),
            "rempart_prune_hold_since_timestamp_seconds": ("when the hold was set", hold["since"] if hold else 0),
        },
        {"dataset": name, "host": config["datasets"][name]["host"]},
    )  # fmt: skip


def set_hold(
    config: dict[str, Any], name: str, reasons: list[str], by: str, snapshot: str | None = None
) -> None:
    path = hold_path(config, name)
    current = hold_of(config, name)
    record = current or {"since": time.time(), "reasons": [], "by": by, "snapshots": []}
    record["reasons"] = sorted(set(record["reasons"]) | set(reasons))
    if snapshot:
        record["snapshots"] = [*record.get("snapshots", []), snapshot]
    write_atomic(path, json.dumps(record, sort_keys=True) + "\n", 0o640)
    ledger(config, name).append([{"event": "hold", "at": time.time(), "by": by, "reasons": reasons}])
    write_hold_metric(config, name)
    log(
        f"rempart: PRUNE HOLD on {name}: {', '.join(reasons)} (clear: rempart-backup-admin clear-hold {name})",
        2,
    )


def clear_hold(config: dict[str, Any], name: str, by: str, reason: str) -> bool:
    path = hold_path(config, name)
    if not path.exists():
        return False
    previous = hold_of(config, name)
    path.unlink()
    ledger(config, name).append([{"event": "hold-cleared", "at": time.time(), "by": by, "reason": reason,
                                  "previous": previous}])  # fmt: skip
    write_hold_metric(config, name)
    log(f"rempart: prune hold on {name} cleared by {by}: {reason}", 4)
    return True
