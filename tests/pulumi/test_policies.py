"""Each policy of the pack on good and bad resource arguments, and the whole pack on both stacks."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from pulumi_harness import PULUMI_DIR, STACKS
from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs
from pulumi_policy.policy import PolicyResource

import pulumi
from rempart.offsite.policy import (
    bucket_policy,
    kms_key_policy,
    operator_permissions,
    restore_policy,
    writer_policy,
)

sys.path.insert(0, str(PULUMI_DIR / "policy"))
import offsite_policies as p

ARN = "arn:aws:s3:::rempart-340999903-offsite-x"
BREAK_GLASS = "arn:aws:iam::123456789012:role/rempart-340999903-offsite-break-glass"


def run(validate, resource_type, props, config=None, name="r"):
    found: list[str] = []
    args = ResourceValidationArgs(
        resource_type, props, f"urn:pulumi:s::p::{resource_type}::{name}", name, None, None, config
    )
    validate(args, lambda message, urn=None: found.append(message))
    return found


def lock(mode="COMPLIANCE", days=30, **extra):
    return {
        "bucket": "b",
        "objectLockEnabled": "Enabled",
        "rule": {"defaultRetention": {"mode": mode, "days": days}},
    } | extra


V7_AND_V2 = pytest.mark.parametrize("v2", [False, True], ids=["v7", "v2"])


def token(tokens, v2):
    return next(t for t in sorted(tokens) if t.endswith("V2") == v2)


# (policy, token set, good props, [(bad props, expected message fragment)])
CASES = {
    "eea-region": (
        p.validate_eea_region,
        {"pulumi:providers:aws"},
        {"region": "eu-west-3"},
        [
            ({"region": "us-east-1"}, "outside the EEA"),
            ({"region": "eu-west-2"}, "outside the EEA"),
            ({}, "no explicit region"),
        ],
    ),
    "offsite-bucket": (
        p.validate_bucket,
        p.BUCKET,
        {"objectLockEnabled": True, "forceDestroy": False},
        [
            ({"objectLockEnabled": False}, "no Object Lock"),
            ({"objectLockEnabled": True, "forceDestroy": True}, "forceDestroy"),
            ({"objectLockEnabled": True, "acl": "public-read"}, "readable outside"),
            (
                {
                    "objectLockConfiguration": {
                        "rule": {"defaultRetention": {"mode": "GOVERNANCE", "days": 30}}
                    }
                },
                "COMPLIANCE is required",
            ),
        ],
    ),
    "object-lock-compliance": (
        p.validate_object_lock,
        p.OBJECT_LOCK,
        lock(),
        [
            (lock("GOVERNANCE"), "COMPLIANCE is required"),
            (lock(days=7), "below the policy minimum of 14"),
            ({"bucket": "b", "objectLockEnabled": "Enabled"}, "no default retention"),
        ],
    ),
    "versioning-enabled": (
        p.validate_versioning,
        p.VERSIONING,
        {"versioningConfiguration": {"status": "Enabled"}},
        [({"versioningConfiguration": {"status": "Suspended"}}, "must be 'Enabled'")],
    ),
    "public-access-blocked": (
        p.validate_public_access_block,
        p.PUBLIC_ACCESS_BLOCK,
        {
            "blockPublicAcls": True,
            "ignorePublicAcls": True,
            "blockPublicPolicy": True,
            "restrictPublicBuckets": True,
        },
        [
            (
                {"blockPublicAcls": True, "ignorePublicAcls": True, "blockPublicPolicy": True},
                "restrictPublicBuckets",
            )
        ],
    ),
    "bucket-owner-enforced": (
        p.validate_ownership,
        p.OWNERSHIP,
        {"rule": {"objectOwnership": "BucketOwnerEnforced"}},
        [({"rule": {"objectOwnership": "ObjectWriter"}}, "BucketOwnerEnforced")],
    ),
    "encryption-at-rest": (
        p.validate_encryption,
        p.ENCRYPTION,
        {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
        [
            ({"rules": []}, "default encryption"),
            ({"rules": [{"applyServerSideEncryptionByDefault": {}}]}, "default encryption"),
        ],
    ),
    "kms-key-protected": (
        p.validate_kms_key,
        p.KMS_KEY,
        {"enableKeyRotation": True, "policy": json.dumps(kms_key_policy("123456789012", BREAK_GLASS))},
        [
            (
                {
                    "enableKeyRotation": False,
                    "policy": json.dumps(kms_key_policy("123456789012", BREAK_GLASS)),
                },
                "rotation",
            ),
            ({"enableKeyRotation": True}, "default policy"),
            (
                {
                    "enableKeyRotation": True,
                    "policy": json.dumps(
                        {
                            "Statement": [
                                {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}
                            ]
                        }
                    ),
                },
                "does not deny kms:DisableKey, kms:ScheduleKeyDeletion",
            ),
        ],
    ),
    "tls-only": (
        p.validate_tls_only,
        p.BUCKET_POLICY,
        {"policy": json.dumps(bucket_policy(ARN, BREAK_GLASS, 60))},
        [
            (
                {"policy": json.dumps({"Statement": bucket_policy(ARN, BREAK_GLASS, 60)["Statement"][2:]})},
                "TLS",
            ),
            (
                {
                    "policy": json.dumps(
                        {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Principal": "*",
                                    "Action": "s3:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            ]
                        }
                    )
                },
                "TLS",
            ),
        ],
    ),
    "writer-cannot-destroy": (
        p.validate_identity_cannot_destroy,
        {"aws:iam/userPolicy:UserPolicy", "aws:iam/policy:Policy"},
        {"user": "rempart-340999903-offsite-writer", "policy": json.dumps(writer_policy(ARN))},
        [
            (
                {
                    "user": "w",
                    "policy": json.dumps(
                        {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
                    ),
                },
                "s3:DeleteObjectVersion",
            ),
            (
                {
                    "user": "w",
                    "policy": json.dumps(
                        {"Statement": [{"Effect": "Allow", "Action": "s3:Delete*", "Resource": "*"}]}
                    ),
                },
                "s3:DeleteObjectVersion",
            ),
            (
                {
                    "user": "w",
                    "policy": json.dumps(
                        {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["s3:PutObject", "s3:BypassGovernanceRetention"],
                                    "Resource": "*",
                                }
                            ]
                        }
                    ),
                },
                "s3:BypassGovernanceRetention",
            ),
            (
                {
                    "user": "w",
                    "policy": json.dumps(
                        {"Statement": [{"Effect": "Allow", "Action": "s3:PutBucket*", "Resource": "*"}]}
                    ),
                },
                "s3:PutBucketPolicy",
            ),
            (
                {
                    "user": "w",
                    "policy": json.dumps(
                        {"Statement": [{"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "*"}]}
                    ),
                },
                "s3:PutObjectLegalHold",
            ),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_policy_accepts_the_good_resource(name):
    validate, types, good, _ = CASES[name]
    for resource_type in sorted(types):
        assert run(validate, resource_type, good) == [], resource_type


@pytest.mark.parametrize(("name", "index"), [(n, i) for n in sorted(CASES) for i in range(len(CASES[n][3]))])
def test_policy_refuses_the_bad_resource(name, index):
    validate, types, _, bad = CASES[name]
    props, fragment = bad[index]
    for resource_type in sorted(types):
        found = run(validate, resource_type, props)
        assert found and any(fragment in f for f in found), (resource_type, found)


@V7_AND_V2
def test_v2_tokens_are_checked_too(v2):
    assert run(p.validate_object_lock, token(p.OBJECT_LOCK, v2), lock("GOVERNANCE"))
    assert run(
        p.validate_versioning, token(p.VERSIONING, v2), {"versioningConfiguration": {"status": "Suspended"}}
    )
    assert run(p.validate_encryption, token(p.ENCRYPTION, v2), {"rules": []})
    assert run(p.validate_bucket, token(p.BUCKET, v2), {})


def test_policies_ignore_other_resources():
    for validate, *_ in CASES.values():
        if validate is not p.validate_eea_region:
            assert run(validate, "aws:ec2/instance:Instance", {"region": "us-east-1"}) == []
    assert run(p.validate_eea_region, "kubernetes:core/v1:Namespace", {"region": "us-east-1"}) == []
    assert run(p.validate_eea_region, "aws:s3/bucket:Bucket", {"region": "us-east-1"})


def test_configurable_minimum_and_break_glass():
    assert run(
        p.validate_object_lock,
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        lock(days=30),
        {"minRetentionDays": 45},
    )
    broad = {
        "role": "ops-admin",
        "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
    }
    assert run(p.validate_identity_cannot_destroy, "aws:iam/rolePolicy:RolePolicy", broad)
    assert (
        run(
            p.validate_identity_cannot_destroy,
            "aws:iam/rolePolicy:RolePolicy",
            broad,
            {"breakGlassRolePattern": "ops-*"},
        )
        == []
    )
    assert (
        run(
            p.validate_identity_cannot_destroy,
            "aws:iam/userPolicy:UserPolicy",
            {"user": "r", "policy": json.dumps(restore_policy(ARN))},
        )
        == []
    )


def _stack(resources):
    found: list[str] = []
    args = StackValidationArgs(
        [
            PolicyResource(t, props, f"urn:{i}", f"r{i}", None, None, None, [], {})
            for i, (t, props) in enumerate(resources)
        ]
    )
    p.validate_lifecycle_after_lock(args, lambda message, urn=None: found.append(message))
    return found


def test_lifecycle_after_lock_stack_policy():
    lifecycle = "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"
    lock_type = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
    early = {
        "rules": [{"id": "x", "status": "Enabled", "noncurrentVersionExpiration": {"noncurrentDays": 10}}]
    }
    late = {
        "rules": [{"id": "x", "status": "Enabled", "noncurrentVersionExpiration": {"noncurrentDays": 60}}]
    }
    assert _stack([(lock_type, lock(days=30)), (lifecycle, early)]) == [
        "lifecycle rule 'x' expires noncurrent versions after 10 days, before the 30-day lock ends"
    ]
    assert _stack([(lock_type, lock(days=30)), (lifecycle, late)]) == []


def test_pack_declares_every_policy():
    names = [policy.name for policy in p.policies()]
    assert names == [*p.RESOURCE_POLICIES, *p.STACK_POLICIES]


def engine(resources, config=None):
    """The pack as the engine runs it: every policy object of ``policies()`` through its own ``validate`` (the
    entry point pulumi-policy calls), with the policy configuration the engine hands over."""
    found: list[str] = []
    for policy in p.policies():
        settings = (config or {}).get(policy.name, {})

        def report(message, urn=None, name=policy.name):
            found.append(f"{name}: {message}")

        if isinstance(policy, ResourceValidationPolicy):
            for i, (resource_type, props) in enumerate(resources):
                urn = f"urn:pulumi:s::p::{resource_type}::r{i}"
                policy.validate(
                    ResourceValidationArgs(resource_type, props, urn, f"r{i}", None, None, settings), report
                )
        else:
            stack = [PolicyResource(t, props, f"urn:{i}", f"r{i}", None, None, None, [], {})
                     for i, (t, props) in enumerate(resources)]  # fmt: skip
            policy.validate(StackValidationArgs(stack, settings), report)
    return found


BUCKET_TYPE = "aws:s3/bucket:Bucket"
SETTINGS = {
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": lock(),
    "aws:s3/bucketVersioning:BucketVersioning": {"bucket": "b", "versioningConfiguration": {"status": "Enabled"}},
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {
        "bucket": "b", "blockPublicAcls": True, "ignorePublicAcls": True, "blockPublicPolicy": True,
        "restrictPublicBuckets": True,
    },
    "aws:s3/bucketPolicy:BucketPolicy": {"bucket": "b", "policy": json.dumps(bucket_policy("arn:aws:s3:::b", BREAK_GLASS, 60))},
    "aws:s3/bucketLogging:BucketLogging": {"bucket": "b", "targetBucket": "logs", "targetPrefix": "access/"},
}  # fmt: skip


@pytest.mark.parametrize("missing", [None, *SETTINGS], ids=lambda t: (t or "complete").split(":")[-1])
def test_every_locked_bucket_comes_with_its_settings(missing):
    bucket = (BUCKET_TYPE, {"bucket": "b", "objectLockEnabled": True, "forceDestroy": False})
    found = engine([bucket, *[(t, props) for t, props in SETTINGS.items() if t != missing]])
    if missing is None:
        assert found == []
    else:
        label = next(k for k, types in p.REQUIRED_SETTINGS.items() if missing in types)
        assert found == [f"offsite-settings-present: bucket b has no {label}"]


def test_settings_are_counted_while_names_are_unknown():
    unknown = {**SETTINGS}
    stack = [
        (BUCKET_TYPE, {"objectLockEnabled": True}),
        *[(t, {**v, "bucket": None}) for t, v in unknown.items()],
    ]
    assert not [f for f in engine(stack) if f.startswith("offsite-settings-present")]
    stack.pop()  # the logging
    assert "offsite-settings-present: 1 Object-Lock bucket(s) but 0 access logging(s)" in engine(stack)


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        ("aws:iam/userPolicyAttachment:UserPolicyAttachment",
         {"user": "rempart-340999903-offsite-writer", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        ("aws:iam/policyAttachment:PolicyAttachment",
         {"users": ["rempart-340999903-offsite-writer"], "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"}),
        ("aws:iam/userGroupMembership:UserGroupMembership",
         {"user": "rempart-340999903-offsite-writer", "groups": ["admins"]}),
    ],
    ids=["attachment", "policy-attachment", "group"],
)  # fmt: skip
def test_the_writer_gets_no_managed_policy(resource_type, props):
    assert engine([(resource_type, props)]) == [
        f"writer-inline-only: rempart-340999903-offsite-writer gets rights outside its inline policy "
        f"({resource_type.rsplit(':', 1)[-1]})"
    ]
    restore = {
        **props,
        "user": "rempart-340999903-offsite-restore",
        "users": ["rempart-340999903-offsite-restore"],
    }
    assert engine([(resource_type, restore)]) == []


def test_minimum_retention_comes_from_the_establishment(tmp_path, capsys):
    """`rempart offsite-pack-config` turns offsite.retention_days into the pack's minimum."""
    import yaml

    from rempart.commands.cli import main

    inventory = tmp_path / "inventory"
    shutil.copytree(STACKS["lab"].parents[2], inventory)
    establishment_file = inventory / "group_vars" / "all" / "establishment.yml"
    data = yaml.safe_load(establishment_file.read_text())
    data["establishment"]["offsite"]["retention_days"] = 45
    establishment_file.write_text(yaml.safe_dump(data))
    assert main(["offsite-pack-config", "--inventory", str(inventory)]) == 0
    config = json.loads(capsys.readouterr().out)
    lock_type = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
    assert engine([(lock_type, lock(days=30))]) == []  # the pack's own floor
    assert engine([(lock_type, lock(days=30))], config) == [
        "object-lock-compliance: default retention 30 days is below the policy minimum of 45 days"
    ]


@pytest.fixture(params=sorted(STACKS))
def stack(request):
    return STACKS[request.param]


@pulumi.runtime.test
def test_the_program_passes_its_own_pack(mocks, stack):
    import program

    vault = program.build(program.load_establishment(stack))

    def check(_):
        violations = []
        for resource in mocks.resources:
            for name, (_, validate) in p.RESOURCE_POLICIES.items():
                for message in run(validate, resource.type, resource.inputs, name=resource.name):
                    violations.append(f"{name}: {resource.name}: {message}")
        violations += _stack([(r.type, r.inputs) for r in mocks.resources])
        violations += engine([(r.type, r.inputs) for r in mocks.resources])  # every policy, stack ones too
        assert violations == []
        assert {r.type for r in mocks.resources} >= {
            "pulumi:providers:aws",
            "aws:s3/bucketPolicy:BucketPolicy",
        }

    return pulumi.Output.all(*[r.urn for r in vault.resources]).apply(check)


def test_an_unknown_operator_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="'auditor': one of deployer, break-glass"):
        operator_permissions("auditor", ARN, ARN + "-logs", "arn:aws:iam::123456789012:user/rempart/*")
