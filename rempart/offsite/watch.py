"""``rempart offsite-watch``: what the offsite bucket looks like from a host that does not hold the writer key
(the restore identity suffices): Prometheus textfile metrics and a non-zero exit on a finding.

Metrics (``rempart_offsite_watch_*``, one file): per repository (``<dataset>`` prefix holding a restic
``config``) the copy lag (age of its newest ``snapshots/`` object, by the server's clock) and the age of its
last retention refresh; per bucket the hidden objects (keys behind a delete marker, restic's lock files
excepted) and the minimum lock horizon of the oldest current objects (sampled). Findings: a lag above
``--max-lag-hours``, a refresh older than ``--max-refresh-age-hours`` (or never), any hidden object, a
sampled lock shorter than ``--min-retention-days`` ahead. The copy job's own metrics come from the writer's
host; these do not depend on it (issue 19: an attacker on the backup server can stop both the copy and its
reports).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from rempart.offsite.s3 import add_connection_arguments, client, utcnow
from rempart.offsite.verify import RepositoryState, check_history, repository_state


def watch_findings(state: RepositoryState, min_days: int, now: dt.datetime, max_lag: dt.timedelta,
                   max_refresh_age: dt.timedelta) -> list[str]:  # fmt: skip
    findings = check_history(state, min_days, now, max_refresh_age)
    for name in sorted(state.refreshed):
        newest = state.newest_snapshot.get(name)
        if newest is None:
            findings.append(f"copy lag: the repository {name} holds no snapshot")
        elif now - newest > max_lag:
            hours = (now - newest).total_seconds() / 3600
            findings.append(f"copy lag: newest snapshot of {name} arrived {hours:.0f} h ago")
    return findings


def metrics(bucket: str, state: RepositoryState, findings: list[str], now: dt.datetime) -> str:
    lines: list[str] = []

    def gauge(name: str, value: float, **labels: str) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in {"bucket": bucket, **labels}.items())
        if f"# TYPE rempart_offsite_watch_{name} gauge" not in lines:
            lines.append(f"# TYPE rempart_offsite_watch_{name} gauge")
        lines.append(f"rempart_offsite_watch_{name}{{{text}}} {value:.15g}")

    for name in sorted(state.refreshed):
        newest = state.newest_snapshot.get(name)
        gauge("copy_lag_seconds", (now - newest).total_seconds() if newest else -1, repository=name)
    for name, refreshed in sorted(state.refreshed.items()):
        gauge("refresh_age_seconds", (now - refreshed).total_seconds() if refreshed else -1, repository=name)
    gauge("hidden_objects", len(state.hidden))
    gauge("current_objects", state.current)
    horizon = (state.min_horizon - now).total_seconds() if state.min_horizon else -1
    gauge("min_lock_horizon_seconds", horizon)
    gauge("findings", len(findings))
    gauge("last_run_timestamp_seconds", now.timestamp())
    return "\n".join(lines) + "\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offsite-watch", help="metrics and alerts on the offsite bucket from a host without the writer key"
    )
    add_connection_arguments(parser)
    parser.add_argument("--min-retention-days", type=int, required=True, help="offsite.retention_days")
    parser.add_argument("--max-lag-hours", type=float, default=30, help="newest snapshot older: a finding")
    parser.add_argument("--max-refresh-age-hours", type=float, default=48, help="refresh older: a finding")
    parser.add_argument(
        "--horizon-sample", type=int, default=200, help="HEAD this many of the oldest objects"
    )
    parser.add_argument("--metrics-file", type=Path, help="Prometheus textfile (node-exporter collector dir)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    s3 = client(args.endpoint_url, args.region)
    now = utcnow()
    try:
        state = repository_state(s3, args.bucket, args.min_retention_days, now, args.horizon_sample)
    except (ClientError, BotoCoreError) as error:
        print(f"{args.bucket}: cannot be watched: {error}", file=sys.stderr)
        return 1
    findings = watch_findings(
        state,
        args.min_retention_days,
        now,
        dt.timedelta(hours=args.max_lag_hours),
        dt.timedelta(hours=args.max_refresh_age_hours),
    )
    if args.metrics_file:
        temporary = args.metrics_file.with_suffix(".tmp")
        temporary.write_text(metrics(args.bucket, state, findings, now), encoding="utf-8")
        temporary.replace(args.metrics_file)
    for finding in findings:
        print(f"{args.bucket}: {finding}")
    if not findings:
        print(f"{args.bucket}: {state.current} current objects, nothing hidden, locks and refresh on time")
    return 1 if findings else 0
