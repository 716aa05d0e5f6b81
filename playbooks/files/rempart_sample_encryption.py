#!/usr/bin/env python3
"""Sample a restic repository's files, on disk or as S3 objects, and say whether they are ciphertext (HDS-03).

  rempart_sample_encryption.py --where "sur site : partages" --directory /srv/rempart/repos/partages
  rempart_sample_encryption.py --where "hors site : partages" --bucket B --prefix partages [--endpoint-url U]

Reads the first 64 KiB of up to --samples files of data/, index/ and snapshots/ (keys/ holds restic's key files,
JSON by design, and is left out) and the repository's config, and prints one JSON document
(rempart.reports.results.EncryptionSample, written by playbooks/evidence.yml under reports/<finess>/encryption/).
A sample is plaintext when it starts like a known plain format, is mostly printable, or (4 KiB and more) has
less entropy than ciphertext has. Standard library only on disk; boto3 for a bucket (the control node's).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

HEAD = 65536
SAMPLED_FOLDERS = ("data/", "index/", "snapshots/")
# At least three bytes each: a restic file starts with its random IV, so a one-byte magic ("{" of JSON) matched
# about one ciphertext object in 128 (measured: a demo report called a snapshot object "en clair"). Plain JSON is
# caught by its printable share instead.
PLAIN_MAGIC = (
    b"PGDMP",
    b"-- PostgreSQL",
    b"%PDF",
    b"PK\x03\x04",
    b"\x1f\x8b\x08",
    b"BZh",
    b"\xfd7zXZ",
)
MIN_ENTROPY_BITS = 7.5  # bits per byte; ciphertext of 4 KiB or more is above 7.9
MAX_PRINTABLE_SHARE = 0.85  # random bytes are about 37 % printable


def entropy(data: bytes) -> float:
    counts = Counter(data)
    return -sum(n / len(data) * math.log2(n / len(data)) for n in counts.values()) if data else 0.0


def plaintext(data: bytes) -> bool:
    if not data:
        return False
    if data.startswith(PLAIN_MAGIC):
        return True
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in data) / len(data)
    return printable > MAX_PRINTABLE_SHARE or (len(data) >= 4096 and entropy(data) < MIN_ENTROPY_BITS)


def judge(where: str, names: list[str], read: Callable[[str], bytes], samples: int) -> dict[str, object]:
    chosen = random.sample(
        [n for n in names if n.startswith(SAMPLED_FOLDERS)],
        k=min(samples, sum(n.startswith(SAMPLED_FOLDERS) for n in names)),
    )
    config = read("config") if "config" in names else b""
    return {
        "where": where,
        "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "objects_sampled": len(chosen),
        "plaintext_objects": sorted(n for n in chosen if plaintext(read(n))),
        "repository_encrypted": bool(config)
        and not plaintext(config)
        and any(n.startswith("keys/") for n in names),
    }


def _files(root: Path) -> Iterable[str]:
    return (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _read_file(root: Path) -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        with (root / name).open("rb") as handle:
            return handle.read(HEAD)

    return read


def _bucket(args: argparse.Namespace) -> tuple[list[str], Callable[[str], bytes]]:
    import boto3  # only the bucket mode needs it (the control node has it)

    s3 = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region)
    prefix = args.prefix.strip("/") + "/" if args.prefix.strip("/") else ""
    names = [
        item["Key"].removeprefix(prefix)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]

    def read(name: str) -> bytes:
        response = s3.get_object(Bucket=args.bucket, Key=prefix + name, Range=f"bytes=0-{HEAD - 1}")
        return response["Body"].read()

    return names, read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--where", required=True, help="what the report calls this repository (French)")
    parser.add_argument("--samples", type=int, default=20)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--directory", type=Path)
    source.add_argument("--bucket")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    if args.directory:
        if not (args.directory / "config").is_file():
            print(f"{args.directory}: not a restic repository (no config file)", file=sys.stderr)
            return 2
        names, read = sorted(_files(args.directory)), _read_file(args.directory)
    else:
        names, read = _bucket(args)
        if "config" not in names:
            print(
                f"s3://{args.bucket}/{args.prefix}: not a restic repository (no config object)",
                file=sys.stderr,
            )
            return 2
    print(json.dumps(judge(args.where, names, read, args.samples), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
