"""boto3 plumbing shared by the offsite commands: a client, and the bucket's version history."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config


def client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """An S3 client (credentials from the usual AWS environment/profile chain)."""
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def add_connection_arguments(parser: argparse.ArgumentParser, repository_prefix: bool = False) -> None:
    """--bucket, --endpoint-url, --region; with ``repository_prefix``, --prefix (read with :func:`key_prefix`)."""
    parser.add_argument("--bucket", required=True, help="the offsite bucket")
    parser.add_argument("--endpoint-url", help="S3 endpoint (tests, S3-compatible stores); default: AWS")
    parser.add_argument("--region", help="AWS region (default: from the AWS environment)")
    if repository_prefix:
        parser.add_argument(
            "--prefix", default="", help="the repository's prefix in the bucket (default: root)"
        )


def key_prefix(prefix: str) -> str:
    """A repository's prefix in a bucket as S3 keys start with it: '' for the root, else 'path/'."""
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_timestamp(text: str) -> dt.datetime:
    """ISO 8601 (``2026-11-30T17:00:00Z``, ``2026-11-30 17:00+01:00``); naive means UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 timestamp (e.g. 2026-11-30T17:00:00Z)"
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Version:
    """One entry of the bucket's history: an object version or a delete marker."""

    key: str
    version_id: str
    last_modified: dt.datetime
    is_latest: bool
    delete_marker: bool
    size: int = 0


def versions(s3: Any, bucket: str, prefix: str = "") -> Iterator[Version]:
    """Every version and delete marker, newest first within a key (S3's own order)."""
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        entries = [(v, False) for v in page.get("Versions", [])]
        entries += [(m, True) for m in page.get("DeleteMarkers", [])]
        # S3 pages hold both lists separately; merge them back into per-key, newest-first order.
        order = {id(e): i for i, e in enumerate(entries)}
        entries.sort(key=lambda e: (e[0]["Key"], -e[0]["LastModified"].timestamp(), order[id(e)]))
        for entry, marker in entries:
            yield Version(
                key=entry["Key"],
                version_id=entry["VersionId"],
                last_modified=entry["LastModified"],
                is_latest=bool(entry.get("IsLatest")),
                delete_marker=marker,
                size=int(entry.get("Size", 0)),
            )


def history(s3: Any, bucket: str, prefix: str = "") -> dict[str, list[Version]]:
    """Key -> its versions and delete markers, newest first (latest first on equal timestamps)."""
    by_key: dict[str, list[Version]] = {}
    for version in versions(s3, bucket, prefix):
        by_key.setdefault(version.key, []).append(version)
    for entries in by_key.values():
        entries.sort(key=lambda v: (-v.last_modified.timestamp(), not v.is_latest))
    return by_key
