"""Filters of the backup_client role (controller side)."""

from __future__ import annotations

from typing import Any

DEFAULTS = {"compression": "auto", "read_concurrency": 2, "limit_upload_kib": None}


def rempart_backup_client_dataset(dataset: dict[str, Any], plan: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the job needs to know about one dataset (establishment.datasets[] item -> job configuration); its
    tunnel port from the establishment's computed plan (backup_client_dataset_plan)."""
    options = {**DEFAULTS, **(dataset.get("backup") or {})}
    return {
        "kind": dataset["kind"],
        "paths": list(dataset.get("paths") or []),
        "excludes": list(dataset.get("excludes") or []),
        "database": dataset.get("database"),
        "tunnel_port": int(plan[dataset["name"]]["tunnel_port"]),
        "compression": options["compression"],
        "read_concurrency": int(options["read_concurrency"]),
        "limit_upload_kib": options["limit_upload_kib"],
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_backup_client_dataset": rempart_backup_client_dataset}
