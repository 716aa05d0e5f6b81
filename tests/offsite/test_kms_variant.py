"""The ``sse-kms`` variant as AWS accepts it. Two rules of the KMS reference that moto does not enforce are
encoded in lab/offsite_replay.py ``key_policy_refusal`` (and applied by the replay before CreateKey):
the key-policy lockout safety check (the policy must let its creator call PutKeyPolicy again) and "principals
named in a key policy must exist"."""

from __future__ import annotations

import boto3
import pytest
from moto_servers import ACCOUNT, s3_client
from offsite_replay import KeyPolicyRefused, ReplayMocks, caller_principal, deploy, key_policy_refusal
from program_stand_in import an_establishment, reset_stand_in

from rempart.offsite.policy import KMS_PROTECTED_ACTIONS, kms_key_policy
from rempart.offsite.verify import verify

ADMIN = f"arn:aws:iam::{ACCOUNT}:user/admin"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/bg"
EXISTING = {ADMIN, BREAK_GLASS}


def previous_policy(account: str, break_glass: str) -> dict:
    """The key policy before issue 19: PutKeyPolicy denied to everyone but break-glass, creator included."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "Deny", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": list(KMS_PROTECTED_ACTIONS),
             "Resource": "*", "Condition": {"ArnNotEquals": {"aws:PrincipalArn": break_glass}}},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "caller", "refused"),
    [
        (previous_policy(ACCOUNT, BREAK_GLASS), ADMIN, "will not allow"),  # the issue: AWS refused it
        (kms_key_policy(ACCOUNT, BREAK_GLASS, ADMIN), ADMIN, None),
        (kms_key_policy(ACCOUNT, BREAK_GLASS, ADMIN), BREAK_GLASS, None),  # day 2: break-glass re-polices
        (kms_key_policy(ACCOUNT, BREAK_GLASS), ADMIN, "will not allow"),  # creator not an administrator
        (kms_key_policy(ACCOUNT, BREAK_GLASS, f"arn:aws:iam::{ACCOUNT}:user/gone"), ADMIN, "does not exist"),
        (kms_key_policy(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/not-yet", ADMIN), ADMIN, "does not exist"),
    ],
)
def test_key_policy_rules(policy, caller, refused):
    reason = key_policy_refusal(policy, caller, ACCOUNT, EXISTING.__contains__)
    assert (reason is None) if refused is None else (refused in reason), reason


def test_the_key_keeps_destruction_for_break_glass():
    statements = {s["Sid"]: s for s in kms_key_policy(ACCOUNT, BREAK_GLASS, ADMIN)["Statement"]}
    deny = statements["DenyKeyDestructionExceptBreakGlass"]
    assert {"kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:DisableKeyRotation"} <= set(deny["Action"])
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": BREAK_GLASS}}
    repolice = statements["DenyRepolicingExceptAdministrators"]
    assert repolice["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [BREAK_GLASS, ADMIN]}}


def an_administrator(endpoint):
    """An IAM user of the stand-in, its keys: the identity that runs the first `up`."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="eu-west-3")
    iam.create_user(UserName="kms-admin")
    key = iam.create_access_key(UserName="kms-admin")["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def test_kms_variant_is_created_on_the_stand_in_and_passes_verify(strict_endpoint):
    reset_stand_in(strict_endpoint)
    keys = an_administrator(strict_endpoint)
    creator, _account = caller_principal(ReplayMocks(strict_endpoint, keys))
    assert creator == f"arn:aws:iam::{ACCOUNT}:user/kms-admin"
    deployment = deploy(
        an_establishment(encryption="sse-kms"), strict_endpoint, keys, key_administrator_arn=creator
    )
    outputs = deployment.outputs
    assert outputs["encryption"] == "sse-kms" and outputs["kms_key_arn"].startswith("arn:aws:kms:eu-west-3:")
    made = [d.name for d in deployment.mocks.declared]
    assert made.index("offsite-break-glass") < made.index("offsite-key")  # named in the key policy
    s3 = s3_client(strict_endpoint)
    rule = s3.get_bucket_encryption(Bucket=outputs["bucket"])["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == outputs["kms_key_arn"]
    assert verify(s3, outputs["bucket"], 30, ACCOUNT) == []


def test_a_key_its_creator_could_not_re_police_is_refused(strict_endpoint):
    reset_stand_in(strict_endpoint)
    keys = an_administrator(strict_endpoint)
    other = f"arn:aws:iam::{ACCOUNT}:role/rempart-340999903-offsite-break-glass"  # exists, not the creator
    with pytest.raises(KeyPolicyRefused, match="kms-admin to update the key policy"):
        deploy(an_establishment(encryption="sse-kms"), strict_endpoint, keys, key_administrator_arn=other)
