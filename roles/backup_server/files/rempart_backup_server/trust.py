"""Which snapshot a restore, a drill, an offsite or an offline copy may use (issue 15, item 2).

Never ``latest``: restic's newest snapshot is whatever a client wrote last, a planted one dated 2099 included.
The newest TRUSTED snapshot of a dataset is, from the server's own ledger, the newest snapshot that was
admitted (see admission.py), trusted (its time and host matched the job), flagged by no anomaly rule, that
arrived before any unresolved prune hold, and that was neither forgotten by retention nor moved to quarantine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rempart_host.ledger import Ledger

SNAPSHOT_ID = re.compile(r"[0-9a-f]{8,64}")


def ledger(config: dict[str, Any], dataset: str) -> list[dict[str, Any]]:
    return Ledger(Path(config["state_dir"]) / "ledger" / f"{dataset}.jsonl").read()


def hold_since(config: dict[str, Any], dataset: str) -> float | None:
    path = Path(config["state_dir"]) / "holds" / f"{dataset}.json"
    return float(json.loads(path.read_text(encoding="utf-8"))["since"]) if path.exists() else None


def trusted_snapshots(entries: Sequence[dict[str, Any]], hold: float | None) -> list[dict[str, Any]]:
    """Trusted snapshot entries, oldest arrival first."""
    gone: set[str] = set()
    for entry in entries:
        if entry.get("event") == "forgotten":
            gone |= set(entry.get("ids") or [])
        elif entry.get("event") == "quarantine":
            gone |= {f.split("/", 1)[1] for f in entry.get("files") or [] if f.startswith("snapshots/")}
    chosen = [
        e for e in entries
        if e.get("event") == "snapshot" and e.get("admitted") is True and e.get("trusted") is True
        and not e.get("anomaly") and e.get("id") not in gone
        and (hold is None or float(e.get("arrived", 0)) < hold)
    ]  # fmt: skip
    return sorted(chosen, key=lambda e: float(e["arrived"]))


def trusted_ids(state_dir: str | Path, dataset: str) -> list[str]:
    """Every trusted snapshot id of a dataset, oldest arrival first: what an offsite or offline copy carries
    (those programs run on this host and read the same ledger and holds)."""
    config = {"state_dir": str(state_dir)}
    return [e["id"] for e in trusted_snapshots(ledger(config, dataset), hold_since(config, dataset))]


def newest_trusted(config: dict[str, Any], dataset: str) -> str | None:
    chosen = trusted_ids(config["state_dir"], dataset)
    return chosen[-1] if chosen else None


def parse_moment(value: str) -> float:
    """A time given by an admin: ISO 8601 (``2026-12-01``, ``2026-12-01T08:00``, with or without zone: UTC)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def resolve(config: dict[str, Any], dataset: str, spec: str | None) -> str:
    """The snapshot id ``--snapshot`` designates: none = newest trusted; an id (or its prefix, 8 hex digits at
    least) = that snapshot if the server admitted it; a time = the newest trusted snapshot arrived by then.
    Raises LookupError with what the admin can do instead."""
    entries = ledger(config, dataset)
    if spec is None or spec == "trusted":
        found = newest_trusted(config, dataset)
        if found is None:
            raise LookupError(f"{dataset}: no trusted snapshot (see rempart-backup-admin status; choose one "
                              f"with --snapshot ID|TIME)")  # fmt: skip
        return found
    if spec == "latest":
        raise LookupError(
            "'latest' is what a client wrote last: give an id, a time, or nothing (newest trusted)"
        )
    if SNAPSHOT_ID.fullmatch(spec):
        admitted = {e["id"] for e in entries if e.get("event") == "snapshot" and e.get("admitted") is True}
        matches = sorted(i for i in admitted if i.startswith(spec))
        if len(matches) != 1:
            raise LookupError(f"{dataset}: {len(matches)} admitted snapshot(s) match {spec!r}")
        return matches[0]
    try:
        moment = parse_moment(spec)
    except ValueError:
        raise LookupError(f"--snapshot {spec!r}: not a snapshot id nor an ISO 8601 time") from None
    chosen = [
        e for e in trusted_snapshots(entries, hold_since(config, dataset)) if float(e["arrived"]) <= moment
    ]
    if not chosen:
        raise LookupError(f"{dataset}: no trusted snapshot arrived by {spec}")
    return chosen[-1]["id"]
