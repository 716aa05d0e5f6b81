"""Jinja2 filters backed by the rempart package (same code as the CLI and Pulumi)."""

from __future__ import annotations

from typing import Any

from rempart.model.dependencies import restore_order
from rempart.model.validation import load_valid


def rempart_restore_order(establishment: Any) -> list[str]:
    """Dataset names in restore order (dependencies first, then criticality): BP100-OPS-12 (R23)."""
    model = load_valid(establishment)
    graph = {d.name: d.depends_on for d in model.datasets}
    return restore_order(graph, {d.name: d.criticality.value for d in model.datasets})


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_restore_order": rempart_restore_order}
