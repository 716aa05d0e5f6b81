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

Locks are only ever extended (COMPLIANCE forbids shortening anyway) and stay under the bucket policy's
``s3:object-lock-remaining-retention-days`` cap. It scales with what is due, not with the bucket: a current
version is extended on a grid anchored at its upload (:class:`Schedule`), so a run knows from the listing
alone (1 LIST request per 1,000 versions) which versions are due since the previous complete run (recorded
in ``rempart-refresh/<prefix>``) and sends a PutObjectRetention for those only; HEAD is used only for
versions superseded since then. ``locks/`` (restic lock files), the verifier's canaries and the markers are
left to their default retention.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rempart.offsite.limits import OFFSITE_CAP_MARGIN_DAYS
from rempart.offsite.s3 import Version, add_connection_arguments, client, history, key_prefix, utcnow

MARKER_PREFIX = "rempart-refresh/"
SKEW = dt.timedelta(minutes=10)  # between this host's clock and S3's LastModified
SKIPPED_PREFIXES = ("locks/", "rempart-verify/", MARKER_PREFIX)


@dataclass
class RefreshReport:
    extended: list[str] = field(default_factory=list)  # "key@version -> date"
    unchanged: int = 0
    hidden: list[str] = field(default_factory=list)  # keys whose latest entry is a delete marker
    skipped: int = 0  # current versions whose grid target has not moved since the last run: no request
    incremental: bool = False
    requests: dict[str, int] = field(default_factory=dict)  # S3 operation -> calls made

    def summary(self) -> str:
        return (
            f"{len(self.extended)} lock(s) extended, {self.unchanged} already long enough, "
            f"{self.skipped} not due, {len(self.hidden)} key(s) currently deleted (kept recoverable for the "
            f"window), {sum(self.requests.values())} S3 request(s)"
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


@dataclass(frozen=True)
class Schedule:
    """When a current version's lock is extended, and to what: on a grid anchored at its upload, so that a
    run knows which objects need it from the listing alone (no HEAD per object).

    ``target(written, now)`` is at least ``now + days + lead`` and less than ``now + cap``: the lock always
    covers ``days`` ahead with ``lead`` to spare for a late run, never reaches the bucket policy's cap, and
    changes only once per ``period = cap - days - lead``: each object costs one PutObjectRetention per
    period (29 days with the defaults), not one HEAD per run."""

    days: int
    cap_days: int
    lead_days: float = 1.0

    @property
    def lead(self) -> dt.timedelta:
        return dt.timedelta(days=min(self.lead_days, (self.cap_days - self.days) / 2))

    @property
    def period(self) -> dt.timedelta:
        return dt.timedelta(days=self.cap_days - self.days) - self.lead

    def target(self, written: dt.datetime, now: dt.datetime) -> dt.datetime:
        steps = max(1, math.ceil((now - written + self.lead) / self.period))
        return (written + dt.timedelta(days=self.days) + steps * self.period).replace(microsecond=0)


def marker_key(prefix: str) -> str:
    """Where a run records itself (its LastModified: when; metadata ``started``: from when it listed)."""
    return f"{MARKER_PREFIX}{prefix.strip('/') or '_root'}"


def last_run_started(s3: Any, bucket: str, prefix: str) -> dt.datetime | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=marker_key(prefix))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    started = head.get("Metadata", {}).get("started")
    return dt.datetime.fromisoformat(started) if started else None


def count_requests(s3: Any, report: RefreshReport) -> None:
    def counted(model: Any, **_: Any) -> None:
        report.requests[model.name] = report.requests.get(model.name, 0) + 1

    s3.meta.events.register("before-call.s3", counted)


def refresh_retention(
    s3: Any,
    bucket: str,
    days: int,
    *,
    prefix: str = "",
    now: dt.datetime | None = None,
    cap_days: int | None = None,
    lead_days: float = 1.0,
    full: bool = False,
) -> RefreshReport:
    """Extend (never shorten) locks so that every state of the last ``days`` days stays recoverable.

    Incremental after a complete run (the marker's ``started``, minus ``SKEW``): only current versions whose
    grid target moved since then or that are new, and versions superseded since then, are touched. Without a
    marker (first run, or ``full``) every version of the window is."""
    now = now or utcnow()
    schedule = Schedule(days, cap_days or days + OFFSITE_CAP_MARGIN_DAYS, lead_days)
    report = RefreshReport()
    count_requests(s3, report)
    since = None if full else last_run_started(s3, bucket, prefix)
    since = since - SKEW if since else None
    report.incremental = since is not None
    for key, entries in sorted(history(s3, bucket, prefix).items()):
        if key.removeprefix(prefix).startswith(SKIPPED_PREFIXES):
            continue
        if entries and entries[0].delete_marker:
            report.hidden.append(key)
        superseded_at: dt.datetime | None = None  # entries are newest first
        for entry in entries:
            if entry.delete_marker:
                pass
            elif superseded_at is None:
                _current(s3, bucket, entry, schedule, now, since, report)
            elif superseded_at + dt.timedelta(days=days) > now and (since is None or superseded_at > since):
                _superseded(s3, bucket, entry, superseded_at + dt.timedelta(days=days), report)
            superseded_at = entry.last_modified
    s3.put_object(
        Bucket=bucket,
        Key=marker_key(prefix),
        Body=b"rempart retention refresh\n",
        Metadata={"started": now.isoformat()},
    )
    return report


def _current(
    s3: Any,
    bucket: str,
    entry: Version,
    schedule: Schedule,
    now: dt.datetime,
    since: dt.datetime | None,
    report: RefreshReport,
) -> None:
    target = schedule.target(entry.last_modified, now)
    moved = (
        since is None or entry.last_modified > since or schedule.target(entry.last_modified, since) != target
    )
    if not moved:
        report.skipped += 1
        return
    try:
        s3.put_object_retention(
            Bucket=bucket,
            Key=entry.key,
            VersionId=entry.version_id,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": target},
        )
    except ClientError:  # COMPLIANCE refuses to shorten: a longer lock is already there?
        current = _current_until(s3, bucket, entry.key, entry.version_id)
        if current is None or current < target:
            raise
        report.unchanged += 1
        return
    report.extended.append(f"{entry.key}@{entry.version_id} -> {target:%Y-%m-%dT%H:%M:%SZ}")


def _superseded(s3: Any, bucket: str, entry: Version, until: dt.datetime, report: RefreshReport) -> None:
    current = _current_until(s3, bucket, entry.key, entry.version_id)
    if current is not None and current >= until:
        report.unchanged += 1
        return
    target = until if current is None else max(until, current)
    s3.put_object_retention(
        Bucket=bucket,
        Key=entry.key,
        VersionId=entry.version_id,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": target},
    )
    report.extended.append(f"{entry.key}@{entry.version_id} -> {target:%Y-%m-%dT%H:%M:%SZ}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offsite-refresh-retention",
        help="extend offsite locks so every repository state of the last N days stays recoverable",
    )
    add_connection_arguments(parser, repository_prefix=True)
    parser.add_argument("--days", type=int, required=True, help="offsite.retention_days")
    parser.add_argument(
        "--cap-days",
        type=int,
        help="offsite.retention_cap_days (default retention_days + 30): locks stay under it",
    )
    parser.add_argument("--lead-days", type=float, default=1.0, help="renew a lock this much early")
    parser.add_argument("--full", action="store_true", help="look at every version, not only what is due")
    parser.add_argument("--verbose", action="store_true", help="list every extended lock")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    s3 = client(args.endpoint_url, args.region)
    prefix = key_prefix(args.prefix)
    try:
        report = refresh_retention(
            s3,
            args.bucket,
            args.days,
            prefix=prefix,
            cap_days=args.cap_days,
            lead_days=args.lead_days,
            full=args.full,
        )
    except (ClientError, BotoCoreError) as error:
        print(f"{args.bucket}: retention refresh failed: {error}", file=sys.stderr)
        return 1
    if args.verbose:
        for line in report.extended:
            print(f"{args.bucket}: extended {line}")
    print(f"{args.bucket}: {report.summary()}")
    return 0
