#!/usr/bin/python3
"""The ransomware drill's offsite leg (roles/ransomware_drill, playbooks/drill-ransomware.yml; LAB ONLY): an
attacker who took the backup server uses its own offsite writer key against the Object-Lock bucket (BP100-EXT-03).

Run as root on the backup server by ansible.builtin.script; needs python3-boto3 (installed by roles/offsite_copy).
Reads the writer key (/etc/rempart/offsite/writer.env) and the bucket (/etc/rempart/offsite-copy.json) as the
copy unit does, then, for every dataset prefix:
  - deletes every current object (a delete marker each: allowed to the writer, recoverable);
  - overwrites each repository's ``config`` with junk (a new version: recoverable);
  - tries to delete every version, to shorten a lock, to suspend versioning, to replace the lock, the lifecycle
    and the policy, and to delete the bucket: each must be refused.
Prints one JSON document: attempts (rempart.reports.results.Attempt shape; "recovered" until the recovery proves it),
objects_hidden, versions_tried, versions_deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import sys
from pathlib import Path
from typing import Any

CONFIG = Path("/etc/rempart/offsite-copy.json")


def writer_key(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def client(config: dict[str, Any]) -> Any:
    import boto3
    from botocore.config import Config

    key = writer_key(Path(config["writer_env"]))
    return boto3.client(
        "s3",
        endpoint_url=config["endpoint"],
        region_name=config["region"],
        aws_access_key_id=key["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=key["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def refused(call: Any, **kwargs: Any) -> tuple[bool, str]:
    """(True, error code) when S3 refused the call, (False, 'accepted') when it went through."""
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
    except ClientError as error:
        return True, str(error.response.get("Error", {}).get("Code", "refused"))
    return False, "accepted"


def attack(config: dict[str, Any]) -> dict[str, Any]:
    s3, bucket = client(config), config["bucket"]
    actor = f"root@{socket.gethostname()} (the backup server's offsite writer key)"
    attempts: list[dict[str, str]] = []

    def record(action: str, ok: bool, detail: str, recoverable: bool = False) -> None:
        outcome = "refused" if ok else ("recovered" if recoverable else "succeeded")
        attempts.append({"actor": actor, "action": action, "outcome": outcome, "detail": detail})

    hidden, tried, deleted, codes = 0, 0, 0, set()
    for dataset in sorted(config["datasets"].values(), key=lambda d: d["prefix"]):
        prefix = dataset["prefix"].strip("/") + "/"
        versions = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            versions += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        for key in sorted({key for key, _ in versions}):
            s3.delete_object(Bucket=bucket, Key=key)  # a delete marker
            hidden += 1
        for key, version in versions:
            tried += 1
            ok, code = refused(s3.delete_object, Bucket=bucket, Key=key, VersionId=version)
            deleted += 0 if ok else 1
            codes.add(code)
        config_key = prefix + "config"
        ok, code = refused(s3.put_object, Bucket=bucket, Key=config_key, Body=b"chiffre par l'attaquant")
        record(f"overwrite {config_key} with junk (a new version)", ok, code, recoverable=True)
        if versions:
            key, version = versions[0]
            until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
            ok, code = refused(s3.put_object_retention, Bucket=bucket, Key=key, VersionId=version,
                               Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})  # fmt: skip
            record(f"shorten the COMPLIANCE lock of {key} to 1 day", ok, code)
    record(f"delete every current object of {bucket} (delete markers)", False,
           f"{hidden} object(s) hidden by a delete marker", recoverable=True)  # fmt: skip
    record(f"delete every object version of {bucket} ({tried})", deleted == 0,
           f"{deleted} version(s) deleted; refusals: {', '.join(sorted(codes)) or '-'}")  # fmt: skip
    for action, call, kwargs in (
        ("suspend versioning", s3.put_bucket_versioning,
         {"VersioningConfiguration": {"Status": "Suspended"}}),
        ("replace the Object Lock rule by GOVERNANCE 1 day", s3.put_object_lock_configuration,
         {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled",
                                      "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}}),
        ("add a lifecycle rule expiring every version after 1 day", s3.put_bucket_lifecycle_configuration,
         {"LifecycleConfiguration": {"Rules": [{"ID": "purge", "Status": "Enabled", "Filter": {"Prefix": ""},
                                                "Expiration": {"Days": 1},
                                                "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]}}),
        ("delete the bucket policy", s3.delete_bucket_policy, {}),
        ("delete the bucket", s3.delete_bucket, {}),
    ):  # fmt: skip
        ok, code = refused(call, Bucket=bucket, **kwargs)
        record(f"{action} on {bucket}", ok, code)
    return {
        "attempts": attempts,
        "objects_hidden": hidden,
        "versions_tried": tried,
        "versions_deleted": deleted,
    }


def main(argv: list[str]) -> int:
    config = json.loads((Path(argv[1]) if len(argv) > 1 else CONFIG).read_text(encoding="utf-8"))
    print(json.dumps(attack(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
