"""Jinja2 filters of the ransomware drill (roles/ransomware_drill), backed by rempart/reports/ransomware_drill.py."""

from __future__ import annotations

from typing import Any

from rempart.reports import ransomware_drill

EXPOSED = (
    "foreign_hosts",
    "attacked_datasets",
    "tunnel_ports",
    "host_spec",
    "snapshots_by_dataset",
    "judge_repositories",
    "offsite_prefix",
    "offsite_prefixes",
    "offsite_restore_points",
    "lacking",
    "record",
    "summary",
)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {f"rempart_ransomware_{name}": getattr(ransomware_drill, name) for name in EXPOSED}
