"""Jinja2 filter listing the establishments of an inventory (rempart/model/ght.py): one for a single-establishment
inventory, one per group of a GHT, each with the hosts it may name and its backup server views."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def rempart_establishments(
    groups: Mapping[str, Any], hostvars: Mapping[str, Any], ght: Any = None
) -> list[dict]:
    """``[{group, hosts, establishment}]``; ``ght`` is ``rempart_ght`` (None: the inventory's one establishment)."""
    if not ght:
        first = next(iter(groups.get("all") or []), None)
        establishment = hostvars[first]["establishment"] if first else None
        return [{"group": "all", "hosts": sorted(groups.get("all") or []), "establishment": establishment}]
    return [
        {
            "group": group,
            "hosts": sorted(groups[group]),
            "establishment": hostvars[sorted(groups[group])[0]]["establishment"],
        }
        for group in ght["establishments"]
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_establishments": rempart_establishments}
