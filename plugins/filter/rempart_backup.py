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
    """One systemd timer per dataset and flow, as rempart_files entries: backup on the dataset's schedule (the
    establishment's plan, Establishment.dataset_plan), retention and check on the server's own schedules."""
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
            "rempart_timer_files": rempart_timer_files,
            "rempart_secret_files": rempart_secret_files,
        }
