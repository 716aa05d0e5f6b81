"""`rempart verify-offsite` against moto: one compliant bucket, and one bucket per way of getting it wrong."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from moto_servers import ACCOUNT, REGION, lock_rule, s3_client
from offsite_replay import deploy
from program_stand_in import an_establishment, reset_stand_in

from rempart.commands.cli import main
from rempart.offsite.retention import refresh_retention

MIN_DAYS = 30


def without(*names):
    """The program's bucket minus the named resources (a deliberately wrong variant)."""
    return lambda name, inputs: None if name in names else inputs


def no_lock(name, inputs):
    if name == "offsite":
        return {**inputs, "objectLockEnabled": False}
    return None if name == "offsite-object-lock" else inputs


def policy_of(s3, name):
    return json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])


def add_policy_statement(s3, name, statement):
    document = policy_of(s3, name)
    document["Statement"].append(statement)
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(document))


def run(capsys, endpoint, bucket, min_days=MIN_DAYS):
    code = main(
        [
            "verify-offsite",
            "--bucket",
            bucket,
            "--endpoint-url",
            endpoint,
            "--min-retention-days",
            str(min_days),
        ]
    )
    return code, capsys.readouterr().out


def test_compliant_bucket_passes(capsys, s3, strict_endpoint, program_bucket):
    """The bucket the Pulumi program declares (lab/offsite_replay.py) passes."""
    bucket_name = program_bucket()
    code, out = run(capsys, strict_endpoint, bucket_name)
    assert code == 0, out
    assert "compliant" in out
    # the canary stays locked, hidden behind a delete marker
    listing = s3.list_object_versions(Bucket=bucket_name, Prefix="rempart-verify/")
    assert len(listing["Versions"]) == 1
    assert len(listing["DeleteMarkers"]) == 1


def _no_lock(s3, make):
    name = make(adjust=no_lock)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    return name


def _governance(s3, make):
    name = make()
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock_rule("GOVERNANCE", MIN_DAYS))
    return name


def _short_retention(s3, make):
    name = make()
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock_rule("COMPLIANCE", 7))
    return name


def _no_default_retention(s3, make):
    name = make()
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    return name


def _no_encryption(s3, make):
    return make(adjust=without("offsite-encryption"))


def _public_access_partly_allowed(s3, make):
    name = make()
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    return name


def _public_policy(s3, make):
    name = make()
    add_policy_statement(
        s3,
        name,
        {
            "Sid": "Oops",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{name}/*",
        },
    )
    return name


def _cross_account_policy(s3, make):
    name = make()
    add_policy_statement(
        s3,
        name,
        {
            "Sid": "Partner",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{name}/*",
        },
    )
    return name


def _no_tls_policy(s3, make):
    name = make()
    document = policy_of(s3, name)
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != "DenyInsecureTransport"]
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(document))
    return name


def _no_policy(s3, make):
    return make(adjust=without("offsite-policy"))


def _early_noncurrent_expiry(s3, make):
    name = make()
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "cheap",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                    "Expiration": {"Days": 3},
                }
            ]
        },
    )
    return name


def _glacier_transition(s3, make):
    name = make()
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "archive",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "data/"},
                    "Transitions": [{"Days": 30, "StorageClass": "DEEP_ARCHIVE"}],
                }
            ]
        },
    )
    return name


MISCONFIGURED = {
    "no object lock, versioning suspended": (
        _no_lock,
        [
            "object lock: not enabled",
            "versioning: Suspended",
            "probe: the canary got no version",
        ],
    ),
    "governance mode": (_governance, ["default mode is GOVERNANCE", "not locked in COMPLIANCE"]),
    "retention too short": (
        _short_retention,
        ["default retention 7 days < required 30", "locked only until"],
    ),
    "no default retention": (_no_default_retention, ["no default retention", "could be deleted"]),
    "no encryption": (_no_encryption, ["encryption: no default server-side encryption"]),
    "public access partly allowed": (
        _public_access_partly_allowed,
        ["public access block: BlockPublicPolicy, RestrictPublicBuckets not set"],
    ),
    "public policy": (_public_policy, ["statement Oops allows anyone"]),
    "cross-account policy": (
        _cross_account_policy,
        ["statement Partner grants access to another account 999999999999"],
    ),
    "plain HTTP accepted": (_no_tls_policy, ["does not deny non-TLS requests"]),
    "no bucket policy": (_no_policy, ["bucket policy: none"]),
    "noncurrent versions expire early": (
        _early_noncurrent_expiry,
        ["expires noncurrent versions after 1 days", "expires current objects after 3 days"],
    ),
    "packs to deep archive": (_glacier_transition, ["moves data to DEEP_ARCHIVE"]),
}


@pytest.mark.parametrize("case", list(MISCONFIGURED))
def test_misconfigured_bucket_fails(case, capsys, s3, strict_endpoint, program_bucket):
    misconfigure, expected = MISCONFIGURED[case]
    bucket_name = misconfigure(s3, program_bucket)
    code, out = run(capsys, strict_endpoint, bucket_name)
    assert code == 1, out
    for finding in expected:
        assert finding in out, f"{finding!r} missing from:\n{out}"
    lines = out.strip().splitlines()
    assert all(line.startswith(f"{bucket_name}: ") for line in lines)
    assert len(lines) == len(set(lines))


def test_stock_moto_fails_the_shortening_probe(capsys, stock_endpoint):
    """Same settings on S3 semantics that let a COMPLIANCE lock be shortened: only the active probe can
    tell. (Stock moto refuses every request under a conditional bucket policy, so the bucket has none.)"""
    s3 = s3_client(stock_endpoint)
    bucket_name = deploy(an_establishment(), stock_endpoint).outputs["bucket"]
    s3.delete_bucket_policy(Bucket=bucket_name)
    code, out = run(capsys, stock_endpoint, bucket_name)
    assert code == 1
    assert out.strip().splitlines() == [
        f"{bucket_name}: bucket policy: none (requests over plain HTTP are not refused)",
        f"{bucket_name}: probe: the retention of the canary could be shortened to 1 day",
    ]


def test_required_retention_above_bucket_default(capsys, s3, strict_endpoint, program_bucket):
    bucket_name = program_bucket(retention_days=30)
    code, out = run(capsys, strict_endpoint, bucket_name, min_days=45)
    assert code == 1
    assert "default retention 30 days < required 45" in out


def test_own_account_principal_is_fine(capsys, s3, strict_endpoint, program_bucket):
    bucket_name = program_bucket()
    add_policy_statement(
        s3,
        bucket_name,
        {
            "Sid": "Restore",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/rempart-restore"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket_name}/*",
        },
    )
    code, out = run(capsys, strict_endpoint, bucket_name)
    assert code == 0, out


def test_missing_bucket_is_reported(capsys, strict_endpoint):
    code = main(
        [
            "verify-offsite",
            "--bucket",
            "t-does-not-exist",
            "--endpoint-url",
            strict_endpoint,
            "--min-retention-days",
            "30",
        ]
    )
    assert code == 1
    assert "NoSuchBucket" in capsys.readouterr().err


def test_region_and_timestamp_helpers():
    from rempart.offsite.s3 import parse_timestamp

    assert parse_timestamp("2026-11-30T17:00:00Z") == dt.datetime(2026, 11, 30, 17, tzinfo=dt.UTC)
    assert parse_timestamp("2026-11-30 18:00+01:00") == dt.datetime(2026, 11, 30, 17, tzinfo=dt.UTC)
    assert REGION == "eu-west-3"


def _no_lock_versioned(s3, make):
    return make(adjust=no_lock)


def test_versioned_bucket_without_lock_fails_the_deletion_probe(capsys, s3, strict_endpoint, program_bucket):
    bucket_name = _no_lock_versioned(s3, program_bucket)
    code, out = run(capsys, strict_endpoint, bucket_name)
    assert code == 1
    assert "probe: a new object is not locked in COMPLIANCE mode" in out
    assert "probe: the canary's version could be deleted" in out


REPOSITORY = (
    "partages/config",
    "partages/keys/k1",
    "partages/data/aa/p1",
    "partages/index/i1",
    "partages/snapshots/s1",
)


def restic_like(s3, bucket, moto_clock, days_ago):
    """A repository written ``days_ago`` (moto's clock), refreshed then, and not since."""
    moto_clock.advance(days=-days_ago)
    for key in REPOSITORY:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    refresh_retention(s3, bucket, MIN_DAYS, prefix="partages/", now=moto_clock.now())
    moto_clock.advance(days=days_ago)


def test_a_refreshed_repository_passes(capsys, s3, strict_endpoint, program_bucket, moto_clock):
    bucket = program_bucket()
    restic_like(s3, bucket, moto_clock, days_ago=0.5)
    code, out = run(capsys, strict_endpoint, bucket)
    assert code == 0, out


def test_hidden_objects_fail(capsys, s3, strict_endpoint, program_bucket, moto_clock):
    """A writer key hides a pack behind a delete marker: seen from any host that can list versions."""
    bucket = program_bucket()
    restic_like(s3, bucket, moto_clock, days_ago=0.5)
    s3.delete_object(Bucket=bucket, Key="partages/data/aa/p1")
    s3.put_object(Bucket=bucket, Key="partages/locks/l1", Body=b"l")
    s3.delete_object(Bucket=bucket, Key="partages/locks/l1")  # restic's own lock files: not a finding
    code, out = run(capsys, strict_endpoint, bucket)
    assert code == 1
    assert f"{bucket}: hidden objects: 1 key(s) behind a delete marker (partages/data/aa/p1)" in out


def test_stopped_refresh_fails(capsys, s3, strict_endpoint, program_bucket, moto_clock):
    bucket = program_bucket()
    restic_like(s3, bucket, moto_clock, days_ago=3)
    code, out = run(capsys, strict_endpoint, bucket)
    assert code == 1
    assert "retention refresh: last run on partages 72 h ago (> 48 h)" in out
    assert "lock horizon" not in out  # the locks still cover the window: the refresh age tells first


def test_short_lock_horizon_fails(capsys, s3, strict_endpoint, program_bucket, moto_clock):
    bucket = program_bucket()
    restic_like(s3, bucket, moto_clock, days_ago=40)  # refreshed 40 days ago: locked until 19 days from now
    code, out = run(capsys, strict_endpoint, bucket)
    assert code == 1
    assert (
        f"lock horizon: 5 of the 5 oldest current objects are locked less than {MIN_DAYS} days ahead" in out
    )


def test_bucket_outside_the_expected_region_fails(capsys, strict_endpoint):
    reset_stand_in(strict_endpoint)
    bucket = deploy(an_establishment(region="eu-central-1"), strict_endpoint).outputs["bucket"]
    code = main(["verify-offsite", "--bucket", bucket, "--endpoint-url", strict_endpoint, "--region", "eu-central-1",
                 "--min-retention-days", str(MIN_DAYS), "--expected-region", "eu-west-3", "--no-probe"])  # fmt: skip
    assert code == 1
    assert (
        f"{bucket}: location: the bucket is in eu-central-1, not in eu-west-3 (offsite.region)"
        in capsys.readouterr().out
    )
