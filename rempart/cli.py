"""``rempart``: the commands integrators run by hand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rempart import (
    documents,
    lab,
    lab_offsite,
    offsite_outputs,
    offsite_recover,
    offsite_retention,
    offsite_verify,
    scaffold,
    secrets,
)
from rempart.inventory import InventoryError, inventory_hosts, load_establishment_data
from rempart.validation import validate

COMMAND_MODULES = (
    documents,
    lab,
    scaffold,
    secrets,
    offsite_verify,
    offsite_recover,
    offsite_retention,
    offsite_outputs,
    lab_offsite,
)


def _validate(args: argparse.Namespace) -> int:
    establishment, violations = validate(
        load_establishment_data(args.inventory), inventory_hosts(args.inventory)
    )
    for violation in violations:
        print(violation)
    if violations or establishment is None:
        print(f"{args.inventory}: {len(violations)} violation(s)", file=sys.stderr)
        return 1
    print(f"{args.inventory}: establishment {establishment.finess} ({establishment.name}) is valid")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rempart", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    check = subparsers.add_parser("validate", help="check an establishment folder (no secrets)")
    check.add_argument("inventory", type=Path, help="inventories/<name>")
    check.set_defaults(handler=_validate)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except InventoryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
