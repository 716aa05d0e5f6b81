"""Build offsite buckets on moto: the compliant one (same documents the Pulumi component deploys) and
ways to get it wrong."""

from __future__ import annotations

import json
from typing import Any

from rempart.offsite_policy import bucket_policy, lifecycle_rules

REGION = "eu-west-3"
ACCOUNT = "123456789012"  # moto's account
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/rempart-break-glass"


def lock_rule(mode: str = "COMPLIANCE", days: int = 30) -> dict[str, Any]:
    return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}}


def policy(name: str, cap_days: int = 60) -> dict[str, Any]:
    return bucket_policy(f"arn:aws:s3:::{name}", BREAK_GLASS, cap_days)


def create_compliant(s3: Any, name: str, days: int = 30, *, lock: bool = True) -> str:
    s3.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}, ObjectLockEnabledForBucket=lock
    )
    if lock:
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock_rule("COMPLIANCE", days))
    else:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy(name, days + 30)))
    s3.put_bucket_lifecycle_configuration(
        Bucket=name, LifecycleConfiguration={"Rules": lifecycle_rules(days + 30, "GLACIER_IR", 30, ["repo"])}
    )
    return name


def add_policy_statement(s3: Any, name: str, statement: dict[str, Any]) -> None:
    document = policy(name)
    document["Statement"].append(statement)
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(document))
