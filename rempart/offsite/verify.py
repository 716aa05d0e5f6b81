"""``rempart verify-offsite``: check a deployed offsite bucket, by reading its settings and by trying what
an attacker holding the writer credentials would try (BP100-EXT-03, HDS-02, BP100-DATA-04).

Run it with the writer credentials: the probes write a small canary object (left locked, then hidden by a
delete marker so lifecycle removes it after the lock) and must see its deletion and the shortening of its
retention refused. Exit 0 when compliant, 1 with one line per finding otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rempart.model.establishment import EEA_REGIONS
from rempart.offsite.policy import as_list
from rempart.offsite.retention import MARKER_PREFIX
from rempart.offsite.s3 import Version, add_connection_arguments, client, history, utcnow

CANARY_PREFIX = "rempart-verify/"
HORIZON_TOLERANCE = dt.timedelta(days=1)  # an object younger than the copy's period is not refreshed yet
COLD_UNREADABLE = {"GLACIER", "DEEP_ARCHIVE"}  # restic cannot read these without a restore request
NOT_FOUND = {
    "ObjectLockConfigurationNotFoundError",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchPublicAccessBlockConfiguration",
    "NoSuchBucketPolicy",
    "NoSuchLifecycleConfiguration",
}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _get(call: Callable[..., Any], **kwargs: Any) -> Any:
    """The response, or None when the setting does not exist."""
    try:
        return call(**kwargs)
    except ClientError as error:
        if _code(error) in NOT_FOUND:
            return None
        raise


def lock_days(rule: dict[str, Any]) -> int:
    retention = rule.get("DefaultRetention", {})
    return int(retention.get("Days", 0)) + 365 * int(retention.get("Years", 0))


def check_object_lock(s3: Any, bucket: str, min_days: int) -> list[str]:
    response = _get(s3.get_object_lock_configuration, Bucket=bucket)
    config = (response or {}).get("ObjectLockConfiguration", {})
    if config.get("ObjectLockEnabled") != "Enabled":
        return ["object lock: not enabled on the bucket (it can only be enabled at creation: recreate it)"]
    rule = config.get("Rule")
    if not rule:
        return ["object lock: no default retention (new objects are not locked)"]
    findings = []
    mode = rule.get("DefaultRetention", {}).get("Mode")
    if mode != "COMPLIANCE":
        findings.append(f"object lock: default mode is {mode}, not COMPLIANCE (GOVERNANCE can be bypassed)")
    if lock_days(rule) < min_days:
        findings.append(f"object lock: default retention {lock_days(rule)} days < required {min_days}")
    return findings


def check_versioning(s3: Any, bucket: str) -> list[str]:
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    return [] if status == "Enabled" else [f"versioning: {status or 'never enabled'}, not Enabled"]


def check_encryption(s3: Any, bucket: str) -> list[str]:
    response = _get(s3.get_bucket_encryption, Bucket=bucket)
    rules = (response or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    algorithms = {r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules}
    if not algorithms & {"AES256", "aws:kms", "aws:kms:dsse"}:
        return ["encryption: no default server-side encryption"]
    return []


def check_public_access_block(s3: Any, bucket: str) -> list[str]:
    response = _get(s3.get_public_access_block, Bucket=bucket)
    config = (response or {}).get("PublicAccessBlockConfiguration", {})
    names = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    missing = [n for n in names if not config.get(n)]
    return [f"public access block: {', '.join(missing)} not set"] if missing else []


def _principal_accounts(principal: Any) -> list[str]:
    """'*' for anyone, else the account ids named by AWS principals (services are ignored)."""
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return []
    accounts = []
    for value in as_list(principal.get("AWS")):
        if value == "*":
            accounts.append("*")
        elif match := re.search(r"(?:^|:)(\d{12})(?::|$)", str(value)):
            accounts.append(match.group(1))
    return accounts


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition", {})
    return statement.get("Effect") == "Deny" and any(
        str(v.get("aws:SecureTransport", "")).lower() == "false"
        for v in condition.values()
        if isinstance(v, dict)
    )


def check_policy(s3: Any, bucket: str, account_id: str | None) -> list[str]:
    response = _get(s3.get_bucket_policy, Bucket=bucket)
    if response is None:
        return ["bucket policy: none (requests over plain HTTP are not refused)"]
    statements = as_list(json.loads(response["Policy"]).get("Statement"))
    findings = []
    for index, statement in enumerate(statements):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", f"#{index}")
        for account in _principal_accounts(statement.get("Principal")):
            if account == "*":
                findings.append(f"bucket policy: statement {sid} allows anyone (Principal '*')")
            elif account_id and account != account_id:
                findings.append(f"bucket policy: statement {sid} grants access to another account {account}")
    if not any(_denies_insecure_transport(s) for s in statements):
        findings.append("bucket policy: does not deny non-TLS requests (aws:SecureTransport false)")
    return findings


def check_lifecycle(s3: Any, bucket: str, min_days: int) -> list[str]:
    response = _get(s3.get_bucket_lifecycle_configuration, Bucket=bucket)
    findings = []
    for rule in (response or {}).get("Rules", []):
        if rule.get("Status") != "Enabled":
            continue
        name = rule.get("ID", "(unnamed)")
        days = rule.get("Expiration", {}).get("Days")
        if days is not None and days < min_days:
            findings.append(
                f"lifecycle: rule {name} expires current objects after {days} days (< {min_days})"
            )
        noncurrent = rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
        if noncurrent is not None and noncurrent < min_days:
            findings.append(
                f"lifecycle: rule {name} expires noncurrent versions after {noncurrent} days (< {min_days})"
            )
        for transition in rule.get("Transitions", []) + rule.get("NoncurrentVersionTransitions", []):
            if transition.get("StorageClass") in COLD_UNREADABLE:
                findings.append(
                    f"lifecycle: rule {name} moves data to {transition['StorageClass']}, "
                    "which restic cannot read without a restore request"
                )
    return findings


def probe_immutability(s3: Any, bucket: str, min_days: int) -> list[str]:
    """Write a canary, then try what the lock must refuse."""
    now = utcnow()
    key = f"{CANARY_PREFIX}canary-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    try:
        version = s3.put_object(Bucket=bucket, Key=key, Body=b"rempart immutability canary\n").get(
            "VersionId"
        )
    except ClientError as error:
        return [f"probe: could not write the canary {key} ({error}); run with the writer credentials"]
    if not version or version == "null":
        s3.delete_object(Bucket=bucket, Key=key)
        return ["probe: the canary got no version (versioning off): an overwrite or delete destroys data"]
    findings = []
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version)
    until = head.get("ObjectLockRetainUntilDate")
    locked = head.get("ObjectLockMode") == "COMPLIANCE" and until is not None
    if not locked:
        findings.append(
            f"probe: a new object is not locked in COMPLIANCE mode (got {head.get('ObjectLockMode')})"
        )
    elif until < now + dt.timedelta(days=min_days) - dt.timedelta(hours=1):
        findings.append(
            f"probe: a new object is locked only until {until:%Y-%m-%d}, less than {min_days} days"
        )
    if locked:
        try:
            s3.put_object_retention(
                Bucket=bucket,
                Key=key,
                VersionId=version,
                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now + dt.timedelta(days=1)},
            )
            findings.append("probe: the retention of the canary could be shortened to 1 day")
        except ClientError:
            pass
    try:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
        findings.append("probe: the canary's version could be deleted (data can be destroyed)")
    except ClientError:
        s3.delete_object(Bucket=bucket, Key=key)  # hide it; lifecycle removes it after the lock
    return findings


def check_location(s3: Any, bucket: str, expected_region: str | None) -> list[str]:
    """HDS-02 / BP100-EXT-01: the bucket lives in the establishment's (EEA) region."""
    location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    if expected_region and location != expected_region:
        return [f"location: the bucket is in {location}, not in {expected_region} (offsite.region)"]
    if location not in EEA_REGIONS["aws"]:
        return [f"location: the bucket is in {location}, outside the EEA (HDS-02)"]
    return []


@dataclass
class RepositoryState:
    """What a host without the writer key sees of the bucket's history (``ListObjectVersions``, HEADs)."""

    hidden: list[str] = field(default_factory=list)  # keys whose latest entry is a delete marker
    current: int = 0
    sampled: int = 0
    min_horizon: dt.datetime | None = None  # earliest retain-until among the sampled current objects
    short: list[tuple[str, dt.datetime | None]] = field(default_factory=list)  # sampled, locked too briefly
    newest_snapshot: dict[str, dt.datetime] = field(default_factory=dict)  # repository -> newest snapshots/*
    refreshed: dict[str, dt.datetime | None] = field(default_factory=dict)  # repository -> last refresh


def _ignored(key: str) -> bool:
    """restic's lock files come and go (delete markers); the verifier's canaries and the refresh's markers."""
    return key.startswith((CANARY_PREFIX, MARKER_PREFIX)) or "/locks/" in f"/{key}"


def repository_state(s3: Any, bucket: str, min_days: int, now: dt.datetime, sample: int) -> RepositoryState:
    state = RepositoryState()
    current: list[Version] = []
    markers: dict[str, dt.datetime] = {}
    for key, entries in history(s3, bucket).items():
        if key.startswith(MARKER_PREFIX) and not entries[0].delete_marker:
            markers[key.removeprefix(MARKER_PREFIX)] = entries[0].last_modified
        if _ignored(key) or not entries:
            continue
        if entries[0].delete_marker:
            state.hidden.append(key)
            continue
        current.append(entries[0])
        if key == "config" or key.endswith("/config"):  # a restic repository: <dataset>/config
            state.refreshed.setdefault(key.removesuffix("config").strip("/") or "_root", None)
        if "/snapshots/" in f"/{key}":
            name = key.split("snapshots/")[0].strip("/") or "_root"
            newest = state.newest_snapshot.get(name, entries[0].last_modified)
            state.newest_snapshot[name] = max(entries[0].last_modified, newest)
    for name in state.refreshed:
        state.refreshed[name] = markers.get(name)
    state.current = len(current)
    threshold = now + dt.timedelta(days=min_days) - HORIZON_TOLERANCE
    for version in sorted(current, key=lambda v: v.last_modified)[:sample]:
        head = s3.head_object(Bucket=bucket, Key=version.key, VersionId=version.version_id)
        until = head.get("ObjectLockRetainUntilDate") if head.get("ObjectLockMode") == "COMPLIANCE" else None
        state.sampled += 1
        if until is not None and (state.min_horizon is None or until < state.min_horizon):
            state.min_horizon = until
        if until is None or until < threshold:
            state.short.append((version.key, until))
    return state


def check_history(
    state: RepositoryState, min_days: int, now: dt.datetime, max_refresh_age: dt.timedelta
) -> list[str]:
    """Hidden objects, locks running out, a retention refresh that stopped."""
    findings = []
    if state.hidden:
        shown = ", ".join(sorted(state.hidden)[:3])
        findings.append(
            f"hidden objects: {len(state.hidden)} key(s) behind a delete marker ({shown}{', ...' * (len(state.hidden) > 3)}): "
            "restore them (`rempart offsite-recover`) before lifecycle removes them, and find who deleted them"
        )
    if state.short:
        key, until = min(state.short, key=lambda s: s[1] or dt.datetime.min.replace(tzinfo=dt.UTC))
        findings.append(
            f"lock horizon: {len(state.short)} of the {state.sampled} oldest current objects are locked less than "
            f"{min_days} days ahead ({key} until {until:%Y-%m-%d} if until else 'not locked'): is the retention refresh running?"
        )
    for name, refreshed in sorted(state.refreshed.items()):
        if refreshed is None:
            findings.append(f"retention refresh: never ran on the repository {name}")
        elif now - refreshed > max_refresh_age:
            hours = (now - refreshed).total_seconds() / 3600
            findings.append(
                f"retention refresh: last run on {name} {hours:.0f} h ago (> {max_refresh_age.total_seconds() / 3600:.0f} h)"
            )
    return findings


def _account_id(endpoint_url: str | None, region: str | None) -> str | None:
    import boto3

    try:
        sts = boto3.client("sts", endpoint_url=endpoint_url, region_name=region or "eu-west-3")
        return str(sts.get_caller_identity()["Account"])
    except (ClientError, BotoCoreError):
        return None


def verify(
    s3: Any,
    bucket: str,
    min_days: int,
    account_id: str | None,
    probe: bool = True,
    *,
    expected_region: str | None = None,
    horizon_sample: int = 200,
    max_refresh_age_hours: float = 48,
    now: dt.datetime | None = None,
) -> list[str]:
    """Every finding about ``bucket`` (empty: compliant)."""
    now = now or utcnow()
    findings = check_location(s3, bucket, expected_region)
    findings += check_object_lock(s3, bucket, min_days)
    findings += check_versioning(s3, bucket)
    findings += check_encryption(s3, bucket)
    findings += check_public_access_block(s3, bucket)
    findings += check_policy(s3, bucket, account_id)
    findings += check_lifecycle(s3, bucket, min_days)
    state = repository_state(s3, bucket, min_days, now, horizon_sample)
    findings += check_history(state, min_days, now, dt.timedelta(hours=max_refresh_age_hours))
    if probe:
        findings += probe_immutability(s3, bucket, min_days)
    return findings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify-offsite", help="check a deployed offsite bucket (writer credentials)"
    )
    add_connection_arguments(parser)
    parser.add_argument("--min-retention-days", type=int, required=True, help="offsite.retention_days")
    parser.add_argument("--account-id", help="the bucket owner's account (default: the caller's, from STS)")
    parser.add_argument("--no-probe", action="store_true", help="read settings only, write no canary")
    parser.add_argument("--expected-region", help="offsite.region (default: any EEA region)")
    parser.add_argument(
        "--horizon-sample",
        type=int,
        default=200,
        help="HEAD this many of the oldest current objects (lock horizon)",
    )
    parser.add_argument(
        "--max-refresh-age-hours",
        type=float,
        default=48,
        help="a repository's retention refresh may not be older",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also record the verdict there (reports/<finess>/offsite/verify.json, docs/results.md)",
    )
    parser.set_defaults(handler=_run)


def bucket_location(s3: Any, bucket: str) -> str | None:
    """The bucket's region as the provider reports it (HDS-02); None when it cannot be read."""
    try:
        response = s3.get_bucket_location(Bucket=bucket)
    except (ClientError, BotoCoreError):
        return None
    return response.get("LocationConstraint") or "us-east-1"  # S3 reports us-east-1 as no constraint


def write_record(
    path: Path, bucket: str, findings: list[str], checked_at: dt.datetime, location: str | None = None
) -> None:
    """The verdict as the evidence report reads it (rempart.reports.results.OffsiteVerification)."""
    record = {
        "bucket": bucket,
        "checked_at": checked_at.isoformat(),
        "compliant": not findings,
        "findings": findings,
        "location": location,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _run(args: argparse.Namespace) -> int:
    s3 = client(args.endpoint_url, args.region)
    account = args.account_id or _account_id(args.endpoint_url, args.region)
    checked_at = utcnow()
    try:
        findings = verify(
            s3,
            args.bucket,
            args.min_retention_days,
            account,
            probe=not args.no_probe,
            expected_region=args.expected_region,
            horizon_sample=args.horizon_sample,
            max_refresh_age_hours=args.max_refresh_age_hours,
        )
    except (ClientError, BotoCoreError) as error:
        print(f"{args.bucket}: cannot be checked: {error}", file=sys.stderr)
        findings = [f"cannot be checked: {error}"]
        if args.json:
            write_record(args.json, args.bucket, findings, checked_at)
        return 1
    if args.json:
        write_record(args.json, args.bucket, findings, checked_at, bucket_location(s3, args.bucket))
    for finding in findings:
        print(f"{args.bucket}: {finding}")
    if findings:
        return 1
    print(f"{args.bucket}: compliant (COMPLIANCE lock >= {args.min_retention_days} days, probes refused)")
    return 0
