"""``rempart offsite-recover``: rebuild the offsite repository as it was at a given moment, from the
bucket's object versions (point-in-time recovery after an attacker with the writer credentials put delete
markers on, or overwrote, the current objects; BP100-EXT-03).

For every key, the newest version written at or before ``--at`` is the key's state at that moment; a delete
marker there means the key did not exist. ``locks/`` is skipped (a recovered repository must not start
with restic locks). The target is a directory (then ``restic -r DIR``) or ``s3://BUCKET[/prefix]``, which
may be the source bucket itself: old versions are put again on top (new versions, still locked) and keys
that did not exist at that moment get a delete marker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rempart.offsite.s3 import Version, add_connection_arguments, client, history, key_prefix, parse_timestamp

SKIPPED_PREFIXES = ("locks/", "rempart-refresh/")  # restic lock files; the retention refresh's markers


@dataclass
class RecoveryPlan:
    """Key -> version to restore, and the keys that must not exist."""

    restore: dict[str, Version] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)


def plan(by_key: dict[str, list[Version]], at: dt.datetime, prefix: str = "") -> RecoveryPlan:
    result = RecoveryPlan()
    for key, entries in sorted(by_key.items()):
        relative = key.removeprefix(prefix)
        if relative.startswith(SKIPPED_PREFIXES):
            continue
        state = next((v for v in entries if v.last_modified <= at), None)
        if state is None or state.delete_marker:
            result.absent.append(key)
        else:
            result.restore[key] = state
    return result


def _safe_path(root: Path, relative: str) -> Path:
    parts = PurePosixPath(relative).parts
    if not parts or any(p in ("..", "") or p.startswith("/") for p in parts):
        raise ValueError(f"refusing to write object key {relative!r} outside {root}")
    return root.joinpath(*parts)


def recover_to_directory(s3: Any, bucket: str, recovery: RecoveryPlan, prefix: str, target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    for key, version in recovery.restore.items():
        path = _safe_path(target, key.removeprefix(prefix))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        s3.download_file(bucket, key, str(partial), ExtraArgs={"VersionId": version.version_id})
        os.replace(partial, path)
    return len(recovery.restore)


def recover_to_bucket(
    s3: Any, bucket: str, recovery: RecoveryPlan, prefix: str, target_bucket: str, target_prefix: str
) -> int:
    in_place = target_bucket == bucket and target_prefix == prefix
    for key, version in recovery.restore.items():
        destination = target_prefix + key.removeprefix(prefix)
        # Read and re-put rather than CopyObject: the put carries the checksum header that uploads to an
        # Object-Lock bucket need, and works across accounts. restic packs are small (<= 128 MiB).
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=version.version_id)["Body"].read()
        s3.put_object(Bucket=target_bucket, Key=destination, Body=body)
    if in_place:
        for key in recovery.absent:
            s3.delete_object(Bucket=bucket, Key=key)  # a delete marker: the key did not exist then
    return len(recovery.restore)


def parse_target(text: str) -> tuple[str, str] | Path:
    """``s3://bucket/prefix`` -> (bucket, prefix); anything else is a directory."""
    if text.startswith("s3://"):
        bucket, _, prefix = text.removeprefix("s3://").partition("/")
        if not bucket:
            raise argparse.ArgumentTypeError(f"{text!r}: expected s3://BUCKET[/prefix]")
        return bucket, key_prefix(prefix)
    return Path(text)


def recover(s3: Any, bucket: str, at: dt.datetime, target: tuple[str, str] | Path, prefix: str = "") -> int:
    """Rebuild ``bucket``/``prefix`` as it was at ``at`` into ``target``; the number of objects written."""
    recovery = plan(history(s3, bucket, prefix), at, prefix)
    if isinstance(target, Path):
        return recover_to_directory(s3, bucket, recovery, prefix, target)
    return recover_to_bucket(s3, bucket, recovery, prefix, *target)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offsite-recover", help="rebuild the offsite repository as it was at a moment (restore identity)"
    )
    add_connection_arguments(parser, repository_prefix=True)
    parser.add_argument(
        "--at", required=True, type=parse_timestamp, help="ISO 8601, e.g. 2026-11-30T17:00:00Z"
    )
    parser.add_argument("--to", required=True, type=parse_target, help="a directory, or s3://BUCKET[/prefix]")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    s3 = client(args.endpoint_url, args.region)
    prefix = key_prefix(args.prefix)
    try:
        count = recover(s3, args.bucket, args.at, args.to, prefix)
    except (ClientError, BotoCoreError, ValueError) as error:
        print(f"{args.bucket}: recovery failed: {error}", file=sys.stderr)
        return 1
    print(f"{args.bucket}: {count} object(s) as of {args.at.isoformat()} recovered to {args.to}")
    return 0
