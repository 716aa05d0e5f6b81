"""Filters of the backup_server role (controller side)."""

from __future__ import annotations

import base64
import hashlib
import json
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


TIMER = """# Managed by Rempart (backup_server).
[Unit]
Description=Rempart {flow} of dataset {dataset}

[Timer]
OnCalendar={calendar}
Persistent=true
RandomizedDelaySec=120
Unit=rempart-{flow}{suffix}@{dataset}.service

[Install]
WantedBy=timers.target
"""


def rempart_timer_files(
    datasets: dict[str, Any], suffix: str, retention_schedule: str, check_schedule: str
) -> list[dict[str, str]]:
    """One systemd timer per dataset and flow, as rempart_files entries: backup on the dataset's schedule (from
    its RPO), retention and check on the server's own schedules."""
    files = []
    for flow in ("backup", "retention", "check"):
        for dataset, options in datasets.items():
            calendar = {
                "backup": options["schedule"],
                "retention": retention_schedule,
                "check": check_schedule,
            }
            content = TIMER.format(flow=flow, dataset=dataset, calendar=calendar[flow], suffix=suffix)
            files.append(
                {"path": f"/etc/systemd/system/rempart-{flow}{suffix}-{dataset}.timer", "content": content,
                 "mode": "0644"}
            )  # fmt: skip
    return files


def rempart_secret_files(
    datasets: list[str],
    repository_passwords: dict[str, str],
    http_passwords: dict[str, str],
    folder: str,
    group: str,
) -> list[dict[str, str]]:
    """Each dataset's secrets file (0640, root:<service group>), as rempart_files entries."""
    return [
        {"path": f"{folder}/{name}.json", "group": group, "mode": "0640", "diff": False,
         "content": json.dumps({"repository_password": repository_passwords[name],
                                "http_password": http_passwords[name]},
                               indent=4, sort_keys=True, separators=(",", ": ")) + "\n"}
        for name in datasets
    ]  # fmt: skip


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "rempart_htpasswd_sha": rempart_htpasswd_sha,
            "rempart_oncalendar": rempart_oncalendar,
            "rempart_timer_files": rempart_timer_files,
            "rempart_secret_files": rempart_secret_files,
        }
