"""``rempart offsite-pack-config``: the policy pack's configuration from the establishment, so ``pulumi preview
--policy-pack policy --policy-pack-config <file>`` holds the stack to the establishment's own minimum
retention (offsite.retention_days), not only to the pack's floor."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rempart.model.establishment import Establishment
from rempart.model.inventory import inventory_hosts, load_establishment_data
from rempart.model.validation import EstablishmentInvalid, load_valid


def pack_config(establishment: Establishment) -> dict[str, Any]:
    minimum = {"minRetentionDays": establishment.offsite_plan()["retention_days"]}
    writer = {"writerUserPattern": f"rempart-{establishment.finess}-offsite-writer"}
    return {"offsite-bucket": minimum, "object-lock-compliance": minimum, "writer-inline-only": writer}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offsite-pack-config", help="the offsite policy pack's configuration from the establishment"
    )
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--output", type=Path, help="write there (default: standard output)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        establishment = load_valid(load_establishment_data(args.inventory), inventory_hosts(args.inventory))
    except EstablishmentInvalid as error:
        print(f"{args.inventory}: {error}", file=sys.stderr)
        return 1
    text = json.dumps(pack_config(establishment), indent=2, sort_keys=True) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0
