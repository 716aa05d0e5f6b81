"""Every property of the offsite vault, per stack (both inventories), from the Pulumi program's mocked run."""

from __future__ import annotations

import json

import pytest
from pulumi_harness import ACCOUNT, STACKS

import pulumi
from rempart.model.establishment import Establishment

ADMINISTRATOR = f"arn:aws:iam::{ACCOUNT}:user/first-deployer"


def deploy(mocks, establishment_file, **config):
    import program  # after set_mocks (the mocks fixture)

    establishment = program.load_establishment(establishment_file)
    vault = program.build(establishment, **config)
    return establishment, vault, pulumi.Output.all(*[r.urn for r in vault.resources])


@pytest.fixture(params=sorted(STACKS))
def stack(request):
    return STACKS[request.param]


@pulumi.runtime.test
def test_stack_properties(mocks, stack):
    establishment, _vault, settled = deploy(mocks, stack)
    return settled.apply(lambda _: check_everything(mocks, establishment))


def check_everything(mocks, establishment: Establishment):
    finess, offsite = establishment.finess, establishment.offsite
    cap = offsite.effective_retention_cap_days

    provider = mocks.of_type("pulumi:providers:aws")
    assert [p.inputs["region"] for p in provider] == [offsite.region]

    buckets = {r.name: r for r in mocks.of_type("aws:s3/bucket:Bucket")}
    main, logs = buckets["offsite"], buckets["offsite-logs"]
    assert main.inputs["objectLockEnabled"] is True
    assert main.inputs["forceDestroy"] is False
    assert main.inputs["bucketPrefix"] == f"rempart-{finess}-offsite-"
    assert main.inputs["tags"]["rempart:finess"] == finess
    assert "BP100-EXT-03" in main.inputs["tags"]["rempart:requirements"]
    assert not logs.inputs.get("objectLockEnabled")  # lock buckets cannot receive access logs

    assert mocks.one("offsite-versioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
    lock = mocks.one("offsite-object-lock").inputs
    assert lock["objectLockEnabled"] == "Enabled"
    assert lock["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": offsite.retention_days}

    sse = mocks.one("offsite-encryption").inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert sse == {"sseAlgorithm": "AES256"}  # default: no key to crypto-shred (restic encrypts, HDS-03)
    assert mocks.of_type("aws:kms/key:Key") == []

    for name in ("offsite-public-access-block", "offsite-logs-public-access-block"):
        block = mocks.one(name).inputs
        assert all(
            block[k] is True
            for k in ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
        )
    for name in ("offsite-ownership", "offsite-logs-ownership"):
        assert mocks.one(name).inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}

    policy = json.loads(mocks.one("offsite-policy").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    bucket_arn = f"arn:aws:s3:::rempart-{finess}-offsite-0123abcd"
    break_glass = f"arn:aws:iam::{ACCOUNT}:role/rempart-{finess}-offsite-break-glass"
    tls = statements["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(tls["Resource"]) == {bucket_arn, f"{bucket_arn}/*"}
    versions = statements["DenyVersionDeletionExceptBreakGlass"]
    assert "s3:DeleteObjectVersion" in versions["Action"] and "s3:PutObjectLegalHold" in versions["Action"]
    assert versions["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": break_glass}}
    protection = statements["DenyProtectionChangesExceptBreakGlass"]
    for action in (
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutBucketVersioning",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketLogging",
    ):
        assert action in protection["Action"]
    day2 = statements["DenyDay2ChangesExceptDeployer"]
    deployer = f"arn:aws:iam::{ACCOUNT}:role/rempart-{finess}-offsite-deployer"
    assert "s3:PutLifecycleConfiguration" in day2["Action"]
    assert not set(day2["Action"]) & set(protection["Action"])
    assert day2["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [deployer, break_glass]}}
    capped = statements["CapObjectLockRetention"]
    assert capped["Condition"] == {
        "NumericGreaterThan": {"s3:object-lock-remaining-retention-days": str(cap)}
    }
    assert set(capped["Action"]) == {"s3:PutObject", "s3:PutObjectRetention"}

    rules = {r["id"]: r for r in mocks.one("offsite-lifecycle").inputs["rules"]}
    expiry = rules["expire-noncurrent-after-lock"]
    assert expiry["noncurrentVersionExpiration"]["noncurrentDays"] >= cap > offsite.retention_days
    assert expiry["expiration"] == {"expiredObjectDeleteMarker": True}
    assert "days" not in expiry["expiration"]  # current versions never expire by lifecycle
    datasets = sorted(d.name for d in establishment.datasets)
    assert sorted(r for r in rules if r.startswith("packs-to-colder-storage-")) == [
        f"packs-to-colder-storage-{d}" for d in datasets
    ]
    for dataset in datasets:
        cold = rules[f"packs-to-colder-storage-{dataset}"]
        assert cold["filter"] == {"prefix": f"{dataset}/data/"}  # where restic writes (test_cold_tier.py)
        assert cold["transitions"] == [
            {"days": offsite.cold_after_days, "storageClass": offsite.cold_storage_class}
        ]

    logging = mocks.one("offsite-logging").inputs
    assert logging["targetBucket"] == f"rempart-{finess}-offsite-logs-0123abcd"
    log_policy = json.loads(mocks.one("offsite-logs-policy").inputs["policy"])
    assert log_policy["Statement"][0]["Principal"] == {"Service": "logging.s3.amazonaws.com"}

    writer = json.loads(mocks.one("offsite-writer-policy").inputs["policy"])
    allowed = {a for s in writer["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    denied = {a for s in writer["Statement"] if s["Effect"] == "Deny" for a in s["Action"]}
    assert {"s3:PutObject", "s3:DeleteObject", "s3:PutObjectRetention"} <= allowed
    forbidden = {
        "s3:DeleteObjectVersion",
        "s3:BypassGovernanceRetention",
        "s3:PutBucketPolicy",
        "s3:PutBucketVersioning",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutObjectLegalHold",
    }
    assert forbidden <= denied
    assert not forbidden & allowed
    assert not any("*" in a for a in allowed)
    restore = json.loads(mocks.one("offsite-restore-policy").inputs["policy"])
    restore_actions = {a for s in restore["Statement"] for a in s["Action"]}
    assert {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucketVersions"} <= restore_actions
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in restore_actions)

    users = {r.inputs["name"] for r in mocks.of_type("aws:iam/user:User")}
    assert users == {f"rempart-{finess}-offsite-writer", f"rempart-{finess}-offsite-restore"}
    for kind in ("break-glass", "deployer"):
        role = mocks.one(f"offsite-{kind}").inputs
        assert role["name"] == f"rempart-{finess}-offsite-{kind}"
        trust = json.loads(role["assumeRolePolicy"])["Statement"][0]
        assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    deployer_policy = json.loads(mocks.one("offsite-deployer-policy").inputs["policy"])
    granted = {a for s in deployer_policy["Statement"] for a in s["Action"]}
    assert "s3:PutLifecycleConfiguration" in granted and "s3:GetBucket*" in granted
    assert not granted & set(protection["Action"])
    # break-glass can run `pulumi up` itself: the deployer's reads plus the protected settings
    break_glass_policy = json.loads(mocks.one("offsite-break-glass-policy").inputs["policy"])
    assert (
        deployer_policy["Statement"] == break_glass_policy["Statement"][: len(deployer_policy["Statement"])]
    )
    assert {a for s in break_glass_policy["Statement"] for a in s["Action"]} >= set(protection["Action"])
    assert len(mocks.of_type("aws:iam/accessKey:AccessKey")) == 2


@pulumi.runtime.test
def test_outputs_for_ansible(mocks, stack):
    establishment, vault, _settled = deploy(mocks, stack)
    secret = vault.writer_key.secret

    def check(values):
        bucket_id, secret_value = values
        assert bucket_id.startswith(f"rempart-{establishment.finess}-offsite-")
        assert secret_value.startswith("secret-of-")

    return pulumi.Output.all(vault.bucket.id, secret).apply(check)


def _with_offsite(tmp_path, **offsite):
    import yaml

    data = yaml.safe_load(STACKS["lab"].read_text())
    data["establishment"]["offsite"].update(offsite)
    path = tmp_path / "establishment.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pulumi.runtime.test
def test_kms_variant_protects_its_key(mocks, tmp_path):
    path = _with_offsite(
        tmp_path, encryption="sse-kms", break_glass_role_arn=f"arn:aws:iam::{ACCOUNT}:role/bg"
    )
    _establishment, _vault, settled = deploy(mocks, path, key_administrator_arn=ADMINISTRATOR)

    def check(_):
        (key,) = mocks.of_type("aws:kms/key:Key")
        assert key.inputs["enableKeyRotation"] is True
        assert key.inputs["deletionWindowInDays"] == 30
        statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
        deny = statements["DenyKeyDestructionExceptBreakGlass"]
        assert {"kms:DisableKey", "kms:ScheduleKeyDeletion"} <= set(deny["Action"])
        assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/bg"}}
        repolice = statements["DenyRepolicingExceptAdministrators"]  # the creator passes AWS's lockout check
        administrators = [f"arn:aws:iam::{ACCOUNT}:role/bg", ADMINISTRATOR]
        assert repolice["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": administrators}}
        assert statements["KeyAdministrators"]["Principal"] == {"AWS": administrators}
        sse = mocks.one("offsite-encryption").inputs["rules"][0]
        assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert sse["bucketKeyEnabled"] is True
        assert [r.name for r in mocks.of_type("aws:iam/role:Role")] == ["offsite-deployer"]  # own break-glass
        writer = json.loads(mocks.one("offsite-writer-policy").inputs["policy"])
        assert writer["Statement"][0]["Resource"].startswith("arn:aws:kms:")

    return settled.apply(check)


def test_kms_variant_needs_the_first_deployers_arn(mocks, tmp_path):
    """AWS's key-policy lockout check (tests/offsite/test_kms_variant.py): refused before any AWS resource."""
    with pytest.raises(ValueError, match="rempart:keyAdministratorArn"):
        deploy(mocks, _with_offsite(tmp_path, encryption="sse-kms"))
    assert not [r for r in mocks.resources if r.type.startswith("aws:")]  # nothing made on AWS


def test_invalid_establishment_is_refused(mocks, tmp_path):
    import program

    from rempart.model.validation import EstablishmentInvalid

    with pytest.raises(EstablishmentInvalid, match="EEA"):
        program.load_establishment(_with_offsite(tmp_path, region="us-east-1"))


def test_stack_files_point_at_the_inventories():
    import yaml
    from pulumi_harness import PULUMI_DIR

    for name, path in STACKS.items():
        config = yaml.safe_load((PULUMI_DIR / f"Pulumi.{name}.yaml").read_text())["config"]
        assert (PULUMI_DIR / config["rempart:establishmentFile"]).resolve() == path


@pulumi.runtime.test
def test_writer_key_rotation_is_a_new_key(mocks):
    """`rempart offsite-rotate-writer-key` sets rempart:writerKeyRotation: a new logical name, so `pulumi up`
    makes a new writer key (and deletes the previous one); the restore key does not move."""
    _establishment, _vault, settled = deploy(mocks, STACKS["lab"], writer_key_rotation="20261206T100000Z")

    def check(_):
        keys = sorted(r.name for r in mocks.of_type("aws:iam/accessKey:AccessKey"))
        assert keys == ["offsite-restore-key", "offsite-writer-key-20261206T100000Z"]

    return settled.apply(check)
