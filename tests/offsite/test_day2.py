"""Day 2 on the lab's stand-in (tests/moto_lab.py, IAM enforced, bucket policy evaluated with
``aws:PrincipalArn``): a later ``pulumi up`` of the program (lab/offsite_replay.py ``update``: the engine's
refresh reads, then the update calls of what changed) runs as the deployer role for a change the lock allows,
is refused to it for a protected setting, and runs as break-glass for that one. moto does not model the roles'
trust (account root + MFA): the role sessions are opened before IAM is enforced; the trust documents are
checked in tests/pulumi/test_vault.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto_servers import served
from offsite_replay import deploy, update
from program_stand_in import an_establishment, reset_stand_in

from rempart_lab.offsite import ADMIN_POLICY, _set_auth, _user

ROOT = Path(__file__).resolve().parents[2]
DATASET = {"name": "dossiers", "description": "d", "host": "files-01", "kind": "files", "paths": ["/srv/d"],
           "criticality": "important", "rpo_hours": 24, "rto_hours": 24}  # fmt: skip


@pytest.fixture(scope="module")
def lab_server():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with served([sys.executable, str(ROOT / "tests" / "moto_lab.py")], env) as endpoint:
        yield endpoint


def _client(endpoint, service, keys):
    return boto3.client(
        service, endpoint_url=endpoint, region_name="eu-west-3", aws_access_key_id=keys["id"],
        aws_secret_access_key=keys["secret"], aws_session_token=keys.get("token"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )  # fmt: skip


def _session(endpoint, role_arn):
    sts = _client(endpoint, "sts", {"id": "lab-setup", "secret": "lab-setup"})
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="day2")["Credentials"]
    return {"id": credentials["AccessKeyId"], "secret": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"]}  # fmt: skip


@pytest.fixture
def stack(lab_server):
    """The program's first `up` (administrator, IAM not yet enforced), then role sessions, then IAM on."""
    _set_auth(lab_server, enforce=False)
    reset_stand_in(lab_server)
    admin = _user(_client(lab_server, "iam", {"id": "x", "secret": "x"}), "lab-admin", ADMIN_POLICY)
    deployment = deploy(an_establishment(), lab_server)
    sessions = {
        kind: _session(lab_server, deployment.outputs[f"{kind}_role_arn"])
        for kind in ("deployer", "break_glass")
    }
    _set_auth(lab_server, enforce=True)
    yield deployment, {"admin": admin, **sessions}
    _set_auth(lab_server, enforce=False)


def with_dataset():
    establishment = an_establishment()
    return establishment.model_copy(
        update={"datasets": [*establishment.datasets, type(establishment.datasets[0])(**DATASET)]}
    )


def test_deployer_runs_a_day2_change(lab_server, stack):
    deployment, keys = stack
    after = update(deployment, with_dataset(), lab_server, keys["deployer"])
    changed = [c for c in after.mocks.calls if not c.startswith("read ")]
    assert changed == ["update offsite-lifecycle"]  # the new dataset's cold-tier rule
    assert len([c for c in after.mocks.calls if c.startswith("read ")]) == len(deployment.mocks.declared)
    s3 = _client(lab_server, "s3", keys["deployer"])
    rules = s3.get_bucket_lifecycle_configuration(Bucket=deployment.outputs["bucket"])["Rules"]
    assert "packs-to-colder-storage-dossiers" in {r["ID"] for r in rules}


def test_protected_change_is_refused_to_the_deployer_and_runs_as_break_glass(lab_server, stack):
    deployment, keys = stack
    longer = an_establishment(retention_days=45)
    with pytest.raises(ClientError) as refused:
        update(deployment, longer, lab_server, keys["deployer"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert refused.value.operation_name == "PutObjectLockConfiguration"
    after = update(deployment, longer, lab_server, keys["break_glass"])
    assert "update offsite-object-lock" in after.mocks.calls
    s3 = _client(lab_server, "s3", keys["break_glass"])
    lock = s3.get_object_lock_configuration(Bucket=deployment.outputs["bucket"])["ObjectLockConfiguration"]
    assert lock["Rule"]["DefaultRetention"]["Days"] == 45


def test_bucket_policy_refuses_day2_changes_to_an_account_administrator(lab_server, stack):
    """The stand-in evaluates the bucket policy's aws:PrincipalArn conditions: an identity allowed "*" by IAM
    is still refused what the bucket policy reserves to the deployer and to break-glass."""
    deployment, keys = stack
    bucket = deployment.outputs["bucket"]
    admin = _client(lab_server, "s3", keys["admin"])
    rules = admin.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]  # reading is fine
    for call, arguments in (
        (admin.put_bucket_lifecycle_configuration, {"LifecycleConfiguration": {"Rules": rules}}),
        (admin.put_bucket_versioning, {"VersioningConfiguration": {"Status": "Enabled"}}),
        (admin.delete_bucket_policy, {}),
    ):
        with pytest.raises(ClientError) as refused:
            call(Bucket=bucket, **arguments)
        assert refused.value.response["Error"]["Code"] == "AccessDenied", call
    deployer = _client(lab_server, "s3", keys["deployer"])
    deployer.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
