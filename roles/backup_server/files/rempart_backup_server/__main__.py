"""Command line of the backup server program (units and rempart-backup-admin): every action runs inside
``rempart_host.program.run`` (never silent)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rempart_host import program
from rempart_host.privileges import drop_privileges

import rempart_backup_server
from rempart_backup_server.admin import admin_status, init_missing, print_trusted, restore_all, run_restic
from rempart_backup_server.check import check
from rempart_backup_server.config import (
    EXIT_ANOMALY,
    EXIT_OK,
    dataset_config,
    ledger,
    load_config,
)
from rempart_backup_server.holds import clear_hold, set_hold
from rempart_backup_server.job import job
from rempart_backup_server.retention import retention

DATASET_ACTIONS = {"job": job, "retention": retention, "check": check}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rempart-backup-admin", description=rempart_backup_server.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="action", required=True)
    for action in DATASET_ACTIONS:
        sub.add_parser(action).add_argument("dataset")
    hold = sub.add_parser("hold", help="suspend retention on a dataset")
    hold.add_argument("dataset")
    hold.add_argument("--reason", required=True)
    hold.add_argument("--by", default=os.environ.get("SUDO_USER") or "admin")
    clear = sub.add_parser("clear-hold", help="resume retention after an anomaly was investigated")
    clear.add_argument("dataset")
    clear.add_argument("--reason", required=True, help="what the investigation concluded")
    clear.add_argument("--by", default=os.environ.get("SUDO_USER") or "admin")
    sub.add_parser("status", help="per dataset: last job, anomaly, hold (JSON)")
    init = sub.add_parser("init", help="create the repositories that do not exist yet (as the service user)")
    init.add_argument("datasets", nargs="*", help="default: every dataset of this server")
    init.add_argument("--jobs", type=int, default=8, help="repositories created at the same time (default 8)")
    every = sub.add_parser("restore-all", help="restore every (or the named) dataset(s) at once into TARGET")
    every.add_argument("target")
    every.add_argument("datasets", nargs="*", help="default: every dataset of this server")
    every.add_argument("--snapshot", default=None,
                       help="a snapshot id (or 8+ hex prefix), or an ISO 8601 time: the newest trusted snapshot "
                            "arrived by then (default: the newest trusted; never latest)")  # fmt: skip
    trusted = sub.add_parser(
        "trusted", help="print the newest trusted snapshot of a dataset (exit 1 if none)"
    )
    trusted.add_argument("dataset")
    every.add_argument("--jobs", type=int, default=3, help="datasets restored at the same time (default 3)")
    run = sub.add_parser("restic", help="run restic on a dataset's repository (restore, snapshots, ...)")
    run.add_argument("dataset")
    run.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def action(config: dict[str, Any], args: argparse.Namespace) -> Callable[[], int]:
    """What the parsed command line does (run after the privileges are dropped)."""
    if args.action == "restore-all":
        return lambda: restore_all(config, args.target, args.datasets, args.snapshot, args.jobs)
    if args.action == "init":
        return lambda: init_missing(config, args.datasets, args.jobs)
    if args.action == "status":
        return lambda: print(json.dumps(admin_status(config), indent=2, sort_keys=True)) or EXIT_OK
    if args.action in DATASET_ACTIONS:
        return lambda: DATASET_ACTIONS[args.action](config, args.dataset)
    if args.action == "hold":
        return lambda: set_hold(config, args.dataset, [f"manual: {args.reason}"], by=args.by) or EXIT_OK

    def clear() -> int:
        if not clear_hold(config, args.dataset, args.by, args.reason):
            print(f"{args.dataset}: no prune hold")
        return EXIT_OK

    return clear


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = load_config()
    if args.action == "restic":
        dataset_config(config, args.dataset)
        return run_restic(config, args.dataset, args.args)  # replaces this process
    if args.action != "restore-all" and os.geteuid() == 0:
        drop_privileges(config["user"])
    if args.action == "trusted":
        dataset_config(config, args.dataset)
        return print_trusted(config, args.dataset)  # a question, not an action: no ledger entry
    dataset = getattr(args, "dataset", None)
    if dataset is not None:
        dataset_config(config, dataset)  # an unknown dataset: refused before any ledger or metric is written
    labels = {"dataset": dataset, "host": config["datasets"][dataset]["host"]} if dataset else {}
    return program.run(
        action(config, args),
        program=f"backup-{args.action}",
        metrics_dir=config["metrics_dir"],
        ledger=ledger(config, dataset) if dataset else None,
        labels=labels,
        meanings={EXIT_ANOMALY: "anomaly: the snapshot is stored, the dataset is on prune hold"},
    )


if __name__ == "__main__":
    sys.exit(main())
