"""Jinja2 filter: the rempart_files entries that install Python packages of a role's files/ on a host."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def rempart_program_files(sources: list[str], dest_dir: str, mode: str = "0644") -> list[dict[str, Any]]:
    """One rempart_files entry per source file (controller paths, e.g. from the fileglob lookup), installed as
    ``<dest_dir>/<its folder's name>/<its name>``: a package folder lands as a package folder, content exact."""
    entries = []
    for source in sorted(sources):
        path = Path(source)
        entries.append(
            {"path": f"{dest_dir.rstrip('/')}/{path.parent.name}/{path.name}", "mode": mode,
             "content": path.read_text(encoding="utf-8")}
        )  # fmt: skip
    return entries


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_program_files": rempart_program_files}
