"""Several establishments in one inventory: a GHT (groupement hospitalier de territoire).

A GHT inventory ``inventories/<ght>/`` declares its establishments in ``group_vars/all/ght.yml``::

    rempart_ght:
      name: GHT du Lab
      establishments: [ch_nord, ch_sud]      # inventory groups, one per legal entity (FINESS)

Each establishment is an inventory group whose ``group_vars/<group>/establishment.yml`` holds the same
``establishment:`` mapping as a single-establishment inventory (and ``group_vars/<group>/vault.yml`` its
secrets). Shared infrastructure (a backup server serving every establishment) is declared once as a host of
its own; each establishment reaches it through a *view*: a host of ``backup_servers`` in the establishment's
group naming the shared host in ``rempart_backup_host``, with its own ``rempart_backup_rest_port``. The roles
give every view its own service user, repositories, CA, SSH key and units (docs/ght.md).

A single-establishment inventory (``group_vars/all/establishment.yml``) is the one-group case, group ``all``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from rempart.model.establishment import Establishment
from rempart.model.inventory import (
    ESTABLISHMENT_FILE,
    InventoryError,
    inventory_groups,
    inventory_host_vars,
    inventory_hosts,
    load_yaml,
)
from rempart.model.validation import Violation

GHT_FILE = Path("group_vars/all/ght.yml")
GHT_VARIABLE = "rempart_ght"
VIEW_HOST = "rempart_backup_host"
VIEW_PORT = "rempart_backup_rest_port"
DEFAULT_REST_PORT = 8443


@dataclass(frozen=True)
class EstablishmentSource:
    """Where one establishment of an inventory is declared, and the hosts it may name."""

    group: str
    path: Path
    hosts: frozenset[str]

    @property
    def vault(self) -> Path:
        return self.path.parent / "vault.yml"


@dataclass(frozen=True)
class View:
    """An establishment's view of a shared backup server (an inventory host in backup_servers)."""

    name: str
    shared_host: str
    rest_port: int
    group: str


def ght_groups(inventory_dir: Path) -> list[str] | None:
    """The establishment groups of a GHT inventory, or None for a single-establishment inventory."""
    path = inventory_dir / GHT_FILE
    if not path.exists():
        return None
    document = load_yaml(path) or {}
    ght = document.get(GHT_VARIABLE) if isinstance(document, dict) else None
    groups = ght.get("establishments") if isinstance(ght, dict) else None
    if not isinstance(groups, list) or not groups or not all(isinstance(g, str) for g in groups):
        raise InventoryError(
            f"{path}: needs {GHT_VARIABLE}.establishments, the list of establishment groups (e.g. [ch_nord])"
        )
    return groups


def establishment_sources(inventory_dir: Path) -> list[EstablishmentSource]:
    """Every establishment of the inventory: one for a single-establishment inventory, one per group of a GHT."""
    groups = ght_groups(inventory_dir)
    if groups is None:
        path = inventory_dir / ESTABLISHMENT_FILE
        return [EstablishmentSource("all", path, frozenset(inventory_hosts(inventory_dir)))]
    members = inventory_groups(inventory_dir)
    sources = []
    for group in groups:
        path = inventory_dir / "group_vars" / group / ESTABLISHMENT_FILE.name
        if not path.exists():
            raise InventoryError(f"{path}: file not found (establishment group {group!r} of {GHT_FILE})")
        sources.append(EstablishmentSource(group, path, frozenset(members.get(group, set()))))
    return sources


def inventory_views(inventory_dir: Path) -> list[View]:
    """The views of shared backup servers declared in the inventory's hosts.yml."""
    groups = ght_groups(inventory_dir) or []
    members = inventory_groups(inventory_dir)
    host_vars = inventory_host_vars(inventory_dir)
    views = []
    for name in sorted(members.get("backup_servers", set())):
        variables = host_vars.get(name, {})
        if VIEW_HOST not in variables:
            continue
        group = next((g for g in groups if name in members.get(g, set())), "")
        port = int(variables.get(VIEW_PORT, DEFAULT_REST_PORT))
        views.append(View(name, str(variables[VIEW_HOST]), port, group))
    return views


def ght_violations(
    establishments: Sequence[tuple[EstablishmentSource, Establishment | None]],
    views: Sequence[View],
    all_hosts: Collection[str] | None = None,
) -> list[Violation]:
    """Checks across the establishments of a GHT: nothing shared that must stay per establishment."""
    violations: list[Violation] = []
    seen_finess: dict[str, str] = {}
    seen_hosts: dict[str, str] = {}
    for source, establishment in establishments:
        where = f"{source.group}.establishment"
        if establishment is not None:
            other = seen_finess.setdefault(establishment.finess, source.group)
            if other != source.group:
                violations.append(
                    Violation(
                        f"{where}.finess",
                        f"{establishment.finess} is also the FINESS of group {other}: one group per legal entity",
                    )
                )
        for host in sorted(source.hosts):
            other = seen_hosts.setdefault(host, source.group)
            if other != source.group:
                violations.append(
                    Violation(
                        f"{source.group}.hosts.{host}",
                        f"host {host} is also in establishment group {other}: a host belongs to one "
                        f"establishment; declare shared servers once and give each establishment a view "
                        f"({VIEW_HOST})",
                    )
                )
    ports: dict[tuple[str, int], str] = {}
    for view in views:
        if not view.group:
            violations.append(
                Violation(
                    f"backup_servers.{view.name}",
                    f"view of {view.shared_host} in no establishment group: add it to one group of "
                    f"{GHT_VARIABLE}.establishments",
                )
            )
        if all_hosts is not None and view.shared_host not in all_hosts:
            violations.append(
                Violation(
                    f"backup_servers.{view.name}.{VIEW_HOST}",
                    f"{view.shared_host!r} is not an inventory host; declare the shared server once (with its "
                    "ansible_host) outside the establishment groups",
                )
            )
        other = ports.setdefault((view.shared_host, view.rest_port), view.name)
        if other != view.name:
            violations.append(
                Violation(
                    f"backup_servers.{view.name}.{VIEW_PORT}",
                    f"port {view.rest_port} on {view.shared_host} is also {other}'s: give each establishment's "
                    "repository service its own port",
                )
            )
    return violations


@dataclass(frozen=True)
class InventoryCheck:
    """Every establishment of an inventory, validated, and the violations across them."""

    establishments: tuple[tuple[EstablishmentSource, Establishment | None, tuple[Violation, ...]], ...]
    across: tuple[Violation, ...]

    @property
    def valid(self) -> bool:
        return not self.across and all(e is not None and not v for _, e, v in self.establishments)


def check_inventory(inventory_dir: Path) -> InventoryCheck:
    """Validate each establishment against its own group's hosts, then the GHT-wide rules (no secrets)."""
    from rempart.model.inventory import load_establishment_data
    from rempart.model.validation import validate

    checked = []
    for source in establishment_sources(inventory_dir):
        establishment, violations = validate(load_establishment_data(source.path), source.hosts)
        checked.append((source, establishment, tuple(violations)))
    across: list[Violation] = []
    if ght_groups(inventory_dir) is not None:
        across = ght_violations(
            [(s, e) for s, e, _ in checked], inventory_views(inventory_dir), inventory_hosts(inventory_dir)
        )
    return InventoryCheck(tuple(checked), tuple(across))
