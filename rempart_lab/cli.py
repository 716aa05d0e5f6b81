"""``rempart-lab``: the lab of the demo, the molecule scenarios and the benchmarks (never a hospital's).

rempart-lab up|down|status [--inventory DIR]            the inventory's podman containers (containers.py)
rempart-lab offsite up|down|status [--inventory DIR]    the strict moto stand-in of its offsite bucket
                                                        (offsite.py), on the lab network's gateway
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rempart.commands.cli import run
from rempart_lab import containers, offsite

DEFAULT_INVENTORY = containers.PROJECT / "inventories" / "lab"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rempart-lab", description=__doc__.split("\n\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for action, text in (("up", "start"), ("down", "remove"), ("status", "list")):
        command = subparsers.add_parser(action, help=f"{text} the podman lab of an inventory")
        command.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY)
        command.set_defaults(handler=containers.run, action=action)
    bucket = subparsers.add_parser(
        "offsite", help="run the lab's offsite bucket (strict moto on the lab network's gateway)"
    )
    bucket.add_argument("action", choices=("up", "down", "status"))
    bucket.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY)
    bucket.add_argument(
        "--port", type=int, help=f"TCP port on the gateway address (default {offsite.DEFAULT_PORT})"
    )
    bucket.add_argument(
        "--vault-password-file", type=Path, help="when the inventory's vault.yml is encrypted"
    )
    bucket.set_defaults(handler=offsite.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
