"""Retention refresh of the offsite repository (the future ``offsite_copy`` role calls it after each copy).

Object Lock counts from each object's upload, but restic deduplicates: a pack uploaded months ago is still
referenced by today's snapshots while its lock has long expired. Someone holding the writer credentials
could then hide it behind a delete marker and let lifecycle expire it. The refresh keeps this invariant:

    every version that was the current state of its key at some moment of the last ``days`` days is
    locked (COMPLIANCE) until at least ``days`` days after it stopped being current

so the repository as it was at any moment of the last ``days`` days stays recoverable
(``rempart offsite-recover``), whatever the attacker hid or overwrote in between. Concretely, for every key:

* the current version (not a delete marker) is locked until ``now + days``;
* a version superseded (by a newer version or a delete marker) at ``s`` is locked until ``s + days``,
  if that is still in the future.

Locks are only ever extended (COMPLIANCE forbids shortening anyway) and never beyond ``now + days``, which
stays under the bucket policy's ``s3:object-lock-remaining-retention-days`` cap. A current lock is renewed
once it has less than ``days - renew_margin_days`` left, so each object costs at most one
PutObjectRetention per ``renew_margin_days``. ``locks/`` (restic lock files) and the verifier's canaries
are left to their default retention.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rempart.offsite_s3 import Version, add_connection_arguments, client, history, key_prefix, utcnow

SKIPPED_PREFIXES = ("locks/", "rempart-verify/")


@dataclass
class RefreshReport:
    extended: list[str] = field(default_factory=list)  # "key@version -> date"
    unchanged: int = 0
    hidden: list[str] = field(default_factory=list)  # keys whose latest entry is a delete marker

    def summary(self) -> str:
        return (
            f"{len(self.extended)} lock(s) extended, {self.unchanged} already long enough, "
            f"{len(self.hidden)} key(s) currently deleted (kept recoverable for the window)"
        )


def required_until(entries: list[Version], now: dt.datetime, days: int) -> dict[str, dt.datetime]:
    """version id -> the retain-until date the invariant needs (versions out of the window omitted)."""
    needed: dict[str, dt.datetime] = {}
    window = dt.timedelta(days=days)
    superseded_at: dt.datetime | None = None  # entries are newest first
    for entry in entries:
        if not entry.delete_marker:
            until = now + window if superseded_at is None else superseded_at + window
            if until > now:
                needed[entry.version_id] = until
        superseded_at = entry.last_modified
    return needed


def _current_until(s3: Any, bucket: str, key: str, version_id: str) -> dt.datetime | None:
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    if head.get("ObjectLockMode") != "COMPLIANCE":
        return None
    until = head.get("ObjectLockRetainUntilDate")
    return until.astimezone(dt.UTC) if until else None


def refresh_retention(
    s3: Any,
    bucket: str,
    days: int,
    *,
    prefix: str = "",
    now: dt.datetime | None = None,
    renew_margin_days: float = 1.0,
) -> RefreshReport:
    """Extend (never shorten) locks so that every state of the last ``days`` days stays recoverable."""
    now = now or utcnow()
    margin = dt.timedelta(days=renew_margin_days)
    report = RefreshReport()
    for key, entries in sorted(history(s3, bucket, prefix).items()):
        if key.removeprefix(prefix).startswith(SKIPPED_PREFIXES):
            continue
        if entries and entries[0].delete_marker:
            report.hidden.append(key)
        for version_id, until in required_until(entries, now, days).items():
            current = _current_until(s3, bucket, key, version_id)
            if current is not None and current >= until - margin:
                report.unchanged += 1
                continue
            target = until if current is None else max(until, current)
            s3.put_object_retention(
                Bucket=bucket,
                Key=key,
                VersionId=version_id,
                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": target},
            )
            report.extended.append(f"{key}@{version_id} -> {target:%Y-%m-%dT%H:%M:%SZ}")
    return report


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offsite-refresh-retention",
        help="extend offsite locks so every repository state of the last N days stays recoverable",
    )
    add_connection_arguments(parser)
    parser.add_argument("--days", type=int, required=True, help="offsite.retention_days")
    parser.add_argument("--prefix", default="", help="the repository's prefix in the bucket (default: root)")
    parser.add_argument("--renew-margin-days", type=float, default=1.0, help="renew a lock this much early")
    parser.add_argument("--verbose", action="store_true", help="list every extended lock")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    s3 = client(args.endpoint_url, args.region)
    prefix = key_prefix(args.prefix)
    try:
        report = refresh_retention(
            s3, args.bucket, args.days, prefix=prefix, renew_margin_days=args.renew_margin_days
        )
    except (ClientError, BotoCoreError) as error:
        print(f"{args.bucket}: retention refresh failed: {error}", file=sys.stderr)
        return 1
    if args.verbose:
        for line in report.extended:
            print(f"{args.bucket}: extended {line}")
    print(f"{args.bucket}: {report.summary()}")
    return 0
