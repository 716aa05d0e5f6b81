"""The strict moto wrapper enforces AWS's Object Lock rules that stock moto 5.2 misses (checked against
the S3 user guide: COMPLIANCE retention "can't be shortened", mode "can't be changed"; "after you enable
Object Lock on a bucket, you can't ... suspend versioning")."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError
from moto_servers import REGION, lock_rule, s3_client
from moto_strict import bucket_policy_denies, condition_holds, principal_arn, retention_change_refusal

from rempart.offsite.policy import bucket_policy

NOW = dt.datetime(2026, 11, 30, 12, 0)
LATER = NOW + dt.timedelta(days=30)


@pytest.mark.parametrize(
    ("current", "new", "bypass", "refused"),
    [
        (("COMPLIANCE", LATER), ("COMPLIANCE", LATER + dt.timedelta(days=1)), False, False),  # extend
        (("COMPLIANCE", LATER), ("COMPLIANCE", LATER), False, False),  # same
        (("COMPLIANCE", LATER), ("COMPLIANCE", NOW + dt.timedelta(days=1)), False, True),  # shorten
        (("COMPLIANCE", LATER), ("COMPLIANCE", NOW + dt.timedelta(days=1)), True, True),  # bypass: no
        (("COMPLIANCE", LATER), ("GOVERNANCE", LATER + dt.timedelta(days=9)), True, True),  # mode change
        (("COMPLIANCE", LATER), (None, None), False, True),  # removal
        (("GOVERNANCE", LATER), ("GOVERNANCE", NOW + dt.timedelta(days=1)), False, True),
        (("GOVERNANCE", LATER), ("GOVERNANCE", NOW + dt.timedelta(days=1)), True, False),
        (("GOVERNANCE", LATER), ("COMPLIANCE", LATER), False, False),  # stronger
        (("COMPLIANCE", NOW - dt.timedelta(days=1)), ("COMPLIANCE", NOW), False, False),  # expired lock
        ((None, None), ("COMPLIANCE", NOW + dt.timedelta(days=1)), False, False),  # unlocked
    ],
)
def test_retention_change_rules(current, new, bypass, refused):
    reason = retention_change_refusal(current[0], current[1], new[0], new[1], NOW, bypass)
    assert (reason is not None) is refused, reason


def _locked_object(s3, name):
    s3.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}, ObjectLockEnabledForBucket=True
    )
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock_rule("COMPLIANCE", 30))
    version = s3.put_object(Bucket=name, Key="data/pack", Body=b"pack")["VersionId"]
    return version


def _retain(s3, name, version, mode, until, **extra):
    s3.put_object_retention(
        Bucket=name,
        Key="data/pack",
        VersionId=version,
        Retention={"Mode": mode, "RetainUntilDate": until},
        **extra,
    )


def test_strict_refuses_shortening_and_mode_change(s3, bucket_name):
    version = _locked_object(s3, bucket_name)
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(ClientError) as shorten:
        _retain(s3, bucket_name, version, "COMPLIANCE", now + dt.timedelta(days=1))
    assert shorten.value.response["Error"]["Code"] == "AccessDenied"
    assert shorten.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError):
        _retain(
            s3, bucket_name, version, "GOVERNANCE", now + dt.timedelta(days=1), BypassGovernanceRetention=True
        )
    head = s3.head_object(Bucket=bucket_name, Key="data/pack", VersionId=version)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > now + dt.timedelta(days=29)


def test_strict_allows_extension(s3, bucket_name):
    version = _locked_object(s3, bucket_name)
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=60)).replace(microsecond=0)
    _retain(s3, bucket_name, version, "COMPLIANCE", until)
    head = s3.head_object(
        Bucket=bucket_name, Key="data/pack", VersionId=version
    )  # moto lacks GetObjectRetention
    assert head["ObjectLockRetainUntilDate"] == until


def test_strict_keeps_refusing_version_deletion(s3, bucket_name):
    version = _locked_object(s3, bucket_name)
    with pytest.raises(ClientError):
        s3.delete_object(
            Bucket=bucket_name, Key="data/pack", VersionId=version, BypassGovernanceRetention=True
        )
    marker = s3.delete_object(Bucket=bucket_name, Key="data/pack")
    assert marker["DeleteMarker"] is True
    assert s3.get_object(Bucket=bucket_name, Key="data/pack", VersionId=version)["Body"].read() == b"pack"


def test_strict_refuses_suspending_versioning_on_lock_bucket(s3, bucket_name):
    _locked_object(s3, bucket_name)
    with pytest.raises(ClientError) as error:
        s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Suspended"})
    assert error.value.response["Error"]["Code"] == "InvalidBucketState"
    assert s3.get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"


def test_strict_lets_plain_buckets_suspend_versioning(s3, bucket_name):
    s3.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket_name)["Status"] == "Suspended"


def test_strict_allows_changes_once_the_lock_expired(s3, bucket_name, moto_clock):
    version = _locked_object(s3, bucket_name)
    moto_clock.advance(days=31)
    _retain(s3, bucket_name, version, "GOVERNANCE", moto_clock.now() + dt.timedelta(days=1))
    moto_clock.advance(days=2)
    s3.delete_object(Bucket=bucket_name, Key="data/pack", VersionId=version)


def test_stock_moto_misses_both_rules(stock_endpoint, bucket_name):
    """Why the wrapper exists: if stock moto ever enforces these, the wrapper can go."""
    s3 = s3_client(stock_endpoint)
    version = _locked_object(s3, bucket_name)
    _retain(s3, bucket_name, version, "COMPLIANCE", dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket_name)["Status"] == "Suspended"


def test_strict_applies_unconditional_policy_statements_only(s3, bucket_name):
    import json

    _locked_object(s3, bucket_name)
    arn = f"arn:aws:s3:::{bucket_name}/*"
    conditional = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": arn,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    s3.put_bucket_policy(
        Bucket=bucket_name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [conditional]})
    )
    s3.put_object(Bucket=bucket_name, Key="ok", Body=b"ok")
    unconditional = {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": arn}
    s3.put_bucket_policy(
        Bucket=bucket_name,
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [conditional, unconditional]}),
    )
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket_name, Key="ok")


BREAK_GLASS = "arn:aws:iam::123456789012:role/bg"
DEPLOYER = "arn:aws:iam::123456789012:role/deployer"


@pytest.mark.parametrize(
    ("condition", "principal", "holds"),
    [
        ({"ArnNotEquals": {"aws:PrincipalArn": BREAK_GLASS}}, BREAK_GLASS, False),
        ({"ArnNotEquals": {"aws:PrincipalArn": BREAK_GLASS}}, DEPLOYER, True),
        ({"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER, BREAK_GLASS]}}, DEPLOYER, False),  # none may match
        (
            {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER, BREAK_GLASS]}},
            "arn:aws:iam::123456789012:user/w",
            True,
        ),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/d*"}}, DEPLOYER, True),
        ({"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}}, DEPLOYER, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, DEPLOYER, None),  # not evaluated: statement skipped
        ({"NumericGreaterThan": {"s3:object-lock-remaining-retention-days": "60"}}, DEPLOYER, None),
    ],
)
def test_principal_arn_conditions(condition, principal, holds):
    assert condition_holds(condition, {"aws:principalarn": principal}) is holds


def test_a_role_session_counts_as_its_role():
    session = "arn:aws:sts::123456789012:assumed-role/deployer/day2"
    assert principal_arn(session) == DEPLOYER
    assert (
        principal_arn("arn:aws:iam::123456789012:user/rempart/w")
        == "arn:aws:iam::123456789012:user/rempart/w"
    )


def test_bucket_policy_denies_only_matching_statements():
    document = bucket_policy("arn:aws:s3:::b", BREAK_GLASS, 60, DEPLOYER)
    writer = "arn:aws:iam::123456789012:user/w"
    assert bucket_policy_denies(document, "s3:PutLifecycleConfiguration", "arn:aws:s3:::b", writer)
    assert not bucket_policy_denies(document, "s3:PutLifecycleConfiguration", "arn:aws:s3:::b", DEPLOYER)
    assert bucket_policy_denies(document, "s3:PutBucketPolicy", "arn:aws:s3:::b", DEPLOYER)
    assert not bucket_policy_denies(document, "s3:PutBucketPolicy", "arn:aws:s3:::b", BREAK_GLASS)
    assert bucket_policy_denies(document, "s3:DeleteObjectVersion", "arn:aws:s3:::b/k", writer)
    assert not bucket_policy_denies(
        document, "s3:PutObject", "arn:aws:s3:::b/k", writer
    )  # cap: not evaluated
