"""Append-only JSON-lines ledgers: what a program did, in the order it did it, synced to disk."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class Ledger:
    """One JSON object per line; entries are appended and fsynced, never rewritten."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def read(self, *, skip_invalid: bool = False) -> list[dict[str, Any]]:
        """Every entry, oldest first. A line that is not JSON raises, unless ``skip_invalid`` (another
        program's ledger, read for information only)."""
        if not self.path.exists():
            return []
        entries = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except ValueError:
                if not skip_invalid:
                    raise
        return entries

    def append(self, entries: Iterable[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            for entry in entries:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
