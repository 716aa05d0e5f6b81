"""Retention refresh at scale: an incremental run on the strict stand-in (moto, in this process, 127.0.0.1)
over N restic-like objects (default 100,000), then the 1,000,000 projection.

    .venv/bin/python tests/benchmarks/refresh.py [--objects 100000] [--json]

The objects are put straight into moto's backend (uploads spread over the last 55 days, each already locked to
the target a working refresh gave it at the previous run, 6 hours ago, which is recorded in the marker); the
run itself goes through S3 requests like production. Printed: wall time, S3 requests by operation, and for
1,000,000 objects the requests per run and per month (4 runs a day) and their cost at the given per-request
prices (inputs, not measurements: check the provider's price list), with the previous design (one HEAD per
current object per run) beside it.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import logging
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "offsite")]

import boto3  # noqa: E402
import moto.s3.models as s3_models  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402
from moto_servers import free_port  # noqa: E402
from moto_strict import strict_object_lock  # noqa: E402

from rempart.offsite.retention import Schedule, marker_key, refresh_retention  # noqa: E402

ACCOUNT, BUCKET, DAYS, CAP = "123456789012", "rempart-bench-refresh", 30, 60
RUNS_PER_DAY = 4  # the copy job's timer (every 6 hours)


class _Listed:
    """A version as moto's listing sees it: its own ``is_latest``, everything else the stored version's."""

    def __init__(self, version: object) -> None:
        self.__dict__.update(_version=version, is_latest=getattr(version, "is_latest", False))

    def __getattr__(self, name: str) -> object:
        return getattr(self.__dict__["_version"], name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(listed, FakeDeleteMarker) as for the stored version
        return type(self.__dict__["_version"])


class _ListingCopy:
    """moto 5.2.5's list_object_versions deep-copies every version of the bucket for every page (only to set
    ``is_latest`` on the copies): quadratic, hours at 100,000 objects. The benchmark gives it light copies
    instead; the pages it answers are the same. Every other use of ``copy`` in moto is unchanged."""

    def __getattr__(self, name: str) -> object:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(versions: list) -> list:
        return [_Listed(v) for v in versions]


def populate(objects: int, now: dt.datetime) -> None:
    backend = s3_models.s3_backends[ACCOUNT]["global"]
    schedule = Schedule(DAYS, CAP)
    previous = now - dt.timedelta(hours=24 / RUNS_PER_DAY)
    for index in range(objects):
        written = now - dt.timedelta(days=55) * (index + 0.5) / objects
        key = backend.put_object(BUCKET, f"bench/data/{index % 256:02x}/{index:064x}", b"p")
        key.last_modified = written.replace(tzinfo=None)
        key.lock_mode = "COMPLIANCE"
        key.lock_until = schedule.target(written, previous).strftime("%Y-%m-%dT%H:%M:%SZ")
    marker = backend.put_object(BUCKET, marker_key("bench/"), b"rempart retention refresh\n")
    marker.set_metadata({"x-amz-meta-started": previous.isoformat()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--put-price-per-1000", type=float, default=0.0053, help="PUT/LIST requests (input)")
    parser.add_argument("--get-price-per-1000", type=float, default=0.00042, help="GET/HEAD requests (input)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    s3_models.copy = _ListingCopy()  # type: ignore[assignment]
    with strict_object_lock():
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="eu-west-3",
                              aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
            s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"},
                             ObjectLockEnabledForBucket=True)  # fmt: skip
            now = dt.datetime.now(dt.UTC)
            populate(args.objects, now)
            start = time.perf_counter()
            report = refresh_retention(s3, BUCKET, DAYS, prefix="bench/", cap_days=CAP, now=now)
            seconds = time.perf_counter() - start
        finally:
            server.stop()
    assert report.incremental, "the marker was not read: this would be a full run"
    scale = 1_000_000 / args.objects
    lists, puts = math.ceil(1_000_000 / 1000), round(report.requests.get("PutObjectRetention", 0) * scale)
    other = sum(
        v for k, v in report.requests.items() if k not in ("ListObjectVersions", "PutObjectRetention")
    )
    per_run = (lists + puts + other) * args.put_price_per_1000 / 1000
    old_per_run = lists * args.put_price_per_1000 / 1000 + 1_000_000 * args.get_price_per_1000 / 1000
    result = {
        "objects": args.objects,
        "seconds": round(seconds, 2),
        "requests": report.requests,
        "extended": len(report.extended),
        "skipped": report.skipped,
        "projection_1m": {
            "list_requests": lists,
            "put_object_retention": puts,
            "cost_per_run": round(per_run, 4),
            "cost_per_month": round(per_run * RUNS_PER_DAY * 30, 2),
            "previous_design_head_requests": 1_000_000,
            "previous_design_cost_per_month": round(old_per_run * RUNS_PER_DAY * 30, 2),
        },
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"incremental refresh of {args.objects:,} objects on the stand-in: {seconds:.2f} s")
    print(f"  S3 requests: {report.requests} ({len(report.extended)} extended, {report.skipped:,} not due)")
    p = result["projection_1m"]
    print(
        f"1,000,000 objects (requests projected x{scale:g}; no time: moto's listing costs O(N) per page, "
        f"AWS's does not): {p['list_requests']:,} LIST + ~{p['put_object_retention']:,} PutObjectRetention per run"
    )
    print(
        f"  at {args.put_price_per_1000}/1000 PUT-LIST and {args.get_price_per_1000}/1000 GET-HEAD (inputs): "
        f"{p['cost_per_run']} per run, {p['cost_per_month']} per month ({RUNS_PER_DAY} runs a day)"
    )
    print(f"  previous design (a HEAD per current object per run): 1,000,000 HEAD per run, "
          f"{p['previous_design_cost_per_month']} per month")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
