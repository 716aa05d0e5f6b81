"""Offsite copy throughput: `restic copy` from an on-site repository to the Object-Lock bucket (strict moto
on 127.0.0.1), with a local-disk `restic copy` measured in the same run as the baseline.

    .venv/bin/python tests/benchmarks/offsite.py [--mib 128] [--json]

Prints MiB/s for both copies, their ratio, and the retention refresh time of the copied repository.
moto keeps objects in memory in one Python process: the figure is a lower bound for the copy job's own
cost (restic + TLS-less HTTP + S3 semantics), not a prediction of AWS throughput over the WAN.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "offsite"), str(ROOT / "lab")]

import boto3  # noqa: E402
from offsite_replay import deploy  # noqa: E402
from program_stand_in import an_establishment  # noqa: E402

from rempart.offsite.retention import refresh_retention  # noqa: E402

MIB = 1024 * 1024
PASSWORD = "benchmark-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def restic(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(["restic", "--quiet", *args], env=env, check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - start


def make_data(root: Path, mib: int) -> None:
    """Incompressible files of 1-8 MiB plus small documents: a file share, roughly."""
    root.mkdir(parents=True)
    written, index = 0, 0
    while written < mib * MIB:
        size = min((1 + index % 8) * MIB, mib * MIB - written)
        (root / f"f{index:04d}.bin").write_bytes(os.urandom(size))
        (root / f"doc{index:04d}.txt").write_text(f"compte rendu {index}\n" * 200)
        written += size
        index += 1


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def wait_for(port: int) -> None:
    for _ in range(200):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"moto did not start on port {port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=128, help="dataset size in MiB (default 128)")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of text")
    args = parser.parse_args()
    if shutil.which("restic") is None:
        print("restic not installed (apt-get install restic)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-offsite-"))
    port = free_port()
    env = {
        **os.environ,
        "RESTIC_PASSWORD": PASSWORD,
        "RESTIC_FROM_PASSWORD": PASSWORD,
        "RESTIC_CACHE_DIR": str(work / "cache"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-3",
    }
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "moto_strict.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for(port)
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="eu-west-3",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket = deploy(an_establishment(), endpoint).outputs["bucket"]  # the Pulumi program's bucket
        make_data(work / "data", args.mib)
        onsite, local_copy = str(work / "onsite"), str(work / "local-copy")
        offsite = f"s3:{endpoint}/{bucket}/bench"
        restic("-r", onsite, "init", env=env)
        backup_s = restic("-r", onsite, "backup", str(work / "data"), env=env)
        repo_bytes = tree_bytes(work / "onsite")
        for repository in (local_copy, offsite):
            restic("-r", repository, "init", "--copy-chunker-params", "--from-repo", onsite, env=env)
        local_s = restic("-r", local_copy, "copy", "--from-repo", onsite, env=env)
        moto_s = restic("-r", offsite, "copy", "--from-repo", onsite, env=env)
        start = time.perf_counter()
        report = refresh_retention(s3, bucket, 30, prefix="bench/")
        refresh_s = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "dataset_mib": round(args.mib, 1),
        "repository_mib": round(repo_bytes / MIB, 1),
        "onsite_backup_s": round(backup_s, 2),
        "local_copy_s": round(local_s, 2),
        "local_copy_mib_s": round(repo_bytes / MIB / local_s, 1),
        "moto_copy_s": round(moto_s, 2),
        "moto_copy_mib_s": round(repo_bytes / MIB / moto_s, 1),
        "moto_to_local_ratio": round(local_s / moto_s, 3),
        "refresh_objects": len(report.extended) + report.unchanged,
        "refresh_s": round(refresh_s, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"repository: {result['repository_mib']} MiB (dataset {args.mib} MiB, on-site backup {backup_s:.1f} s)"
        )
        print(f"restic copy -> local disk : {result['local_copy_mib_s']:8.1f} MiB/s ({local_s:.1f} s)")
        print(f"restic copy -> moto S3    : {result['moto_copy_mib_s']:8.1f} MiB/s ({moto_s:.1f} s)")
        print(f"moto / local              : {result['moto_to_local_ratio']:8.3f}")
        print(f"retention refresh         : {result['refresh_objects']} objects in {refresh_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
