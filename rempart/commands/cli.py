"""``rempart``: the commands integrators run by hand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rempart.commands import hardening_scan, scaffold
from rempart.commands import stacks as ght_stacks
from rempart.model import tested_set
from rempart.model.apt import MIRROR_VARIABLE, PROXY_VARIABLE, apt_problems
from rempart.model.ght import check_inventory
from rempart.model.inventory import InventoryError, inventory_variable
from rempart.model.validation import HARDENING_LEVEL_VARIABLE, hardening_level_set_in_inventory
from rempart.offsite import outputs as offsite_outputs
from rempart.offsite import pack_config as offsite_pack_config
from rempart.offsite import recover as offsite_recover
from rempart.offsite import retention as offsite_retention
from rempart.offsite import rotation as offsite_rotation
from rempart.offsite import verify as offsite_verify
from rempart.offsite import watch as offsite_watch
from rempart.reports import documents
from rempart.vault import secrets

COMMAND_MODULES = (
    documents,
    hardening_scan,
    scaffold,
    secrets,
    offsite_verify,
    offsite_watch,
    offsite_recover,
    offsite_retention,
    offsite_rotation,
    offsite_outputs,
    offsite_pack_config,
    ght_stacks,
    tested_set,
)


def _validate(args: argparse.Namespace) -> int:
    """Every establishment of the inventory (one, or each of a GHT: rempart/model/ght.py)."""
    check = check_inventory(args.inventory)
    ght = len(check.establishments) > 1 or check.establishments[0][0].group != "all"
    count = len(check.across)
    for source, establishment, violations in check.establishments:
        prefix = f"[{source.group}] " if ght else ""
        for violation in violations:
            print(f"{prefix}{violation}")
        count += len(violations)
        if establishment is not None and not violations:
            print(
                f"{args.inventory}: {prefix}establishment {establishment.finess} ({establishment.name}) is valid"
            )
    for violation in check.across:
        print(violation)
    apt = _apt_violations(args.inventory) + [
        str(v)
        for v in hardening_level_set_in_inventory(
            [
                str(path.relative_to(args.inventory))
                for path, _ in inventory_variable(args.inventory, HARDENING_LEVEL_VARIABLE)
            ]
        )
    ]
    for violation in apt:
        print(violation)
    count += len(apt)
    if not check.valid or apt:
        print(f"{args.inventory}: {count} violation(s)", file=sys.stderr)
        return 1
    return 0


def _apt_violations(inventory: Path) -> list[str]:
    """rempart_apt_mirror / rempart_apt_proxy wherever the folder's group_vars or host_vars set them."""
    violations = []
    for name in (MIRROR_VARIABLE, PROXY_VARIABLE):
        for path, value in inventory_variable(inventory, name):
            mirror, proxy = (value, None) if name == MIRROR_VARIABLE else (None, value)
            violations += [f"{key}: {message} ({path})" for key, message in apt_problems(mirror, proxy)]
    return violations


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rempart", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    check = subparsers.add_parser("validate", help="check an establishment folder (no secrets)")
    check.add_argument("inventory", type=Path, help="inventories/<name>")
    check.set_defaults(handler=_validate)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse, run the chosen handler; an inventory error is one line on stderr and exit 2 (rempart, rempart-lab)."""
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except InventoryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
