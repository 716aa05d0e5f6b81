"""Read an establishment folder ``inventories/<name>/`` without Ansible (for the CLI and Pulumi)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ESTABLISHMENT_FILE = Path("group_vars/all/establishment.yml")


class InventoryError(Exception):
    """An inventory folder that cannot be read at all."""


def establishment_file(inventory_dir: Path) -> Path:
    return inventory_dir / ESTABLISHMENT_FILE


def load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InventoryError(f"{path}: file not found") from error
    except yaml.YAMLError as error:
        raise InventoryError(f"{path}: not valid YAML: {error}") from error


def load_establishment_data(path: Path) -> Any:
    """The raw ``establishment:`` mapping of an establishment file (or of an inventory folder)."""
    if path.is_dir():
        path = establishment_file(path)
    document = load_yaml(path)
    if not isinstance(document, dict) or "establishment" not in document:
        raise InventoryError(f"{path}: needs a top-level 'establishment:' mapping")
    return document["establishment"]


def _collect_hosts(group: Any, hosts: set[str]) -> None:
    if not isinstance(group, dict):
        return
    hosts.update((group.get("hosts") or {}).keys())
    for child in (group.get("children") or {}).values():
        _collect_hosts(child, hosts)


def _collect_groups(name: str, group: Any, groups: dict[str, set[str]]) -> set[str]:
    members: set[str] = set()
    if isinstance(group, dict):
        members.update((group.get("hosts") or {}).keys())
        for child_name, child in (group.get("children") or {}).items():
            members |= _collect_groups(child_name, child, groups)
    groups.setdefault(name, set()).update(members)
    return members


def inventory_groups(inventory_dir: Path) -> dict[str, set[str]]:
    """Group -> every host in it (children included), from the folder's ``hosts.yml``."""
    groups: dict[str, set[str]] = {}
    for name, group in (load_yaml(inventory_dir / "hosts.yml") or {}).items():
        _collect_groups(name, group, groups)
    return groups


def inventory_host_vars(inventory_dir: Path) -> dict[str, dict[str, Any]]:
    """Host -> the variables ``hosts.yml`` gives it inline (merged over its declarations)."""
    found: dict[str, dict[str, Any]] = {}

    def collect(group: Any) -> None:
        if not isinstance(group, dict):
            return
        for host, variables in (group.get("hosts") or {}).items():
            found.setdefault(host, {}).update(variables or {})
        for child in (group.get("children") or {}).values():
            collect(child)

    for group in (load_yaml(inventory_dir / "hosts.yml") or {}).values():
        collect(group)
    return found


def inventory_hosts(inventory_dir: Path) -> set[str]:
    """Every host named in the folder's YAML inventory (``hosts.yml``)."""
    document = load_yaml(inventory_dir / "hosts.yml")
    hosts: set[str] = set()
    for group in (document or {}).values():
        _collect_hosts(group, hosts)
    return hosts


def inventory_variable(inventory_dir: Path, name: str) -> list[tuple[Path, Any]]:
    """Every value ``name`` is given in the folder's group_vars and host_vars YAML files (vault files skipped)."""
    found: list[tuple[Path, Any]] = []
    for folder in ("group_vars", "host_vars"):
        for path in sorted((inventory_dir / folder).glob("**/*.y*ml")):
            if path.read_text(encoding="utf-8").startswith("$ANSIBLE_VAULT"):
                continue
            document = load_yaml(path)
            if isinstance(document, dict) and name in document:
                found.append((path, document[name]))
    return found
