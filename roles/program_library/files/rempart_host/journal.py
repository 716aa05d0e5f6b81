"""Journal lines: systemd reads the sd-daemon priority prefix ``<N>`` of each stderr line."""

from __future__ import annotations

import sys

CRIT, ERR, WARNING, INFO = 2, 3, 4, 6


def log(message: str, priority: int = INFO) -> None:
    """One journal line (priority 2 crit, 3 err, 4 warning, 6 info)."""
    print(f"<{priority}>{message}", file=sys.stderr, flush=True)
