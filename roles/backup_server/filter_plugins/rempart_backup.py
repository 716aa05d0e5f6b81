"""Filters of the backup_server role (controller side)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any


def rempart_htpasswd_sha(password: str) -> str:
    """rest-server accepts bcrypt or {SHA}. The passwords are 256-bit random tokens (rempart init-vault), so an
    unsalted SHA-1 gives nothing to brute-force, and unlike bcrypt the line is stable (idempotent converge)."""
    return "{SHA}" + base64.b64encode(hashlib.sha1(str(password).encode()).digest()).decode()


def rempart_oncalendar(rpo_hours: Any, minute: Any = 0) -> str:
    """systemd OnCalendar for a dataset's RPO: never less often than the RPO (BP100-OPS, PDMA).

    < 24 h: every N hours, N the largest divisor of 24 not above the RPO; 24 h to 6 days: daily;
    a week or more: weekly. ``minute`` spreads datasets over the hour.
    """
    hours, minute = int(rpo_hours), int(minute) % 60
    if hours < 24:
        step = max(d for d in (1, 2, 3, 4, 6, 8, 12) if d <= hours)
        return f"*-*-* 00/{step}:{minute:02d}:00"
    if hours < 168:
        return f"*-*-* 01:{minute:02d}:00"
    return f"Sun *-*-* 01:{minute:02d}:00"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_htpasswd_sha": rempart_htpasswd_sha, "rempart_oncalendar": rempart_oncalendar}
