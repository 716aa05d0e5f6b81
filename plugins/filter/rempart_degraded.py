"""Jinja2 filter giving the roles degraded_export / degraded_station the establishment's degraded_mode
section with every default applied (same model as the validation: rempart/model/degraded_mode.py)."""

from __future__ import annotations

from typing import Any

from rempart.model.validation import load_valid, plain


def rempart_degraded_mode(establishment: Any) -> dict[str, Any]:
    """degraded_mode as plain data, plus effective_staleness_limit_hours, on_calendar and the source
    dataset's host/database (None when no export is declared)."""
    model = load_valid(plain(establishment))
    mode = model.degraded_mode
    result = mode.model_dump(mode="json")
    result["effective_staleness_limit_hours"] = mode.effective_staleness_limit_hours
    result["on_calendar"] = mode.on_calendar
    result["source"] = None
    if mode.export is not None:
        dataset = model.dataset(mode.export.source)
        result["source"] = {"name": dataset.name, "host": dataset.host, "database": dataset.database}
    result["establishment"] = {"finess": model.finess, "name": model.name}
    return result


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_degraded_mode": rempart_degraded_mode}
