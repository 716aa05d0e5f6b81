"""The lab's offsite stand-in (rempart_lab/offsite.py) and the offsite copy job's pure logic
(roles/offsite_copy/files/rempart_offsite_copy.py): the stand-in bucket is what `rempart verify-offsite` calls
compliant, its outputs are what `rempart offsite-outputs` accepts, and the copy's lag is judged by arrival."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto_servers import ACCOUNT, served
from program_stand_in import an_establishment

from rempart.offsite.outputs import PUBLIC, REQUIRED, split_outputs
from rempart.offsite.verify import verify
from rempart_lab.containers import Lab
from rempart_lab.offsite import gateway, provision, stack_outputs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def copy_job():
    import rempart_offsite_copy  # roles/offsite_copy/files (pytest pythonpath), as the unit runs it

    return rempart_offsite_copy


def test_gateway_is_the_networks_first_address():
    assert gateway(Lab("rempart-lab", "10.89.60.0/24", "10.89.60.5", ())) == "10.89.60.1"


def test_lab_bucket_is_the_programs_and_passes_verify_offsite(lab_server, lab_identities):
    """`rempart-lab offsite up`'s bucket is made by pulumi/program.py; verify-offsite judges it compliant."""
    outputs = lab_identities["outputs"]
    assert outputs["bucket"].startswith("rempart-340999903-offsite-")  # the program's bucket_prefix
    assert outputs["log_bucket"].startswith("rempart-340999903-offsite-logs-")
    assert (
        outputs["break_glass_role_arn"]
        == f"arn:aws:iam::{ACCOUNT}:role/rempart-340999903-offsite-break-glass"
    )
    admin = as_identity(lab_server, lab_identities["identities"]["admin"])
    assert verify(admin, outputs["bucket"], 30, ACCOUNT) == []
    logging = admin.get_bucket_logging(Bucket=outputs["bucket"])["LoggingEnabled"]
    assert logging["TargetBucket"] == outputs["log_bucket"]


def test_stand_in_outputs_are_the_programs_and_what_offsite_outputs_accepts(lab_server, lab_identities):
    establishment = an_establishment()
    outputs = stack_outputs(establishment, "http://10.89.60.1:9000", lab_identities)
    public, secrets = split_outputs(outputs, "340999903")
    assert set(REQUIRED) <= set(outputs)
    assert set(outputs) <= set(PUBLIC) | {"writer_secret_access_key", "restore_secret_access_key"}
    bucket = lab_identities["bucket"]
    assert public["offsite_restic_repositories"] == {
        "partages": f"s3:http://10.89.60.1:9000/{bucket}/partages"
    }
    assert public["offsite_endpoint"] == "http://10.89.60.1:9000"
    assert public["offsite_encryption"] == "sse-s3"
    writer_secret = lab_identities["identities"]["writer"]["secret"]
    assert secrets["vault_offsite_writer_secret_access_key"] == writer_secret
    assert writer_secret not in str(public)


def test_lag_is_the_age_of_the_oldest_snapshot_not_yet_offsite(copy_job):
    local = [
        {"id": "a", "time": "2026-11-30T10:00:00.123456789+01:00"},
        {"id": "b", "time": "2026-11-30T12:00:00+01:00"},
        {"id": "c", "time": "2026-11-30T13:00:00Z"},
    ]
    now = copy_job.snapshot_time({"time": "2026-11-30T14:00:00Z"})
    assert copy_job.lag_seconds(local, {"a", "b", "c"}, {}, now) == (0.0, 0)
    assert copy_job.lag_seconds(local, {"a"}, {}, now) == (3 * 3600.0, 2)  # b: 11:00Z
    # a client forging its snapshot time cannot hide the lag: the server's arrival time counts
    assert copy_job.lag_seconds(local, {"a", "b"}, {"c": now - 600}, now) == (600.0, 1)


def test_copied_snapshots_are_recognised_by_their_original_id(copy_job):
    offsite = [{"id": "x1", "original": "a"}, {"id": "b"}]
    assert copy_job.offsite_ids(offsite) == {"a", "b"}


@pytest.fixture(scope="module")
def lab_server() -> Iterator[str]:
    """The lab's own stand-in program (tests/moto_lab.py, as `rempart-lab offsite up` runs it) on 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with served([sys.executable, str(ROOT / "tests" / "moto_lab.py")], env) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def lab_identities(lab_server: str) -> dict[str, Any]:
    return provision(lab_server, an_establishment())


def as_identity(endpoint: str, keys: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-west-3",
        aws_access_key_id=keys["id"],
        aws_secret_access_key=keys["secret"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_lab_identities_writer_lists_heads_and_writes_but_cannot_delete_a_version(lab_server, lab_identities):
    """The canary of the lab's IAM under the locked moto: what restic's copy does as the writer (ListBucket,
    HeadObject, PutObject) passes, and deleting a version is refused. moto 5.2.6 failed the first two."""
    bucket = lab_identities["bucket"]
    writer = as_identity(lab_server, lab_identities["identities"]["writer"])
    version = writer.put_object(Bucket=bucket, Key="partages/config", Body=b"c")["VersionId"]
    assert writer.head_object(Bucket=bucket, Key="partages/config")["ContentLength"] == 1
    listed = writer.list_objects_v2(Bucket=bucket, Prefix="partages/")
    assert [o["Key"] for o in listed["Contents"]] == ["partages/config"]
    with pytest.raises(ClientError) as refused:
        writer.delete_object(Bucket=bucket, Key="partages/config", VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_lab_identities_restore_reads_but_cannot_write(lab_server, lab_identities):
    bucket = lab_identities["bucket"]
    writer = as_identity(lab_server, lab_identities["identities"]["writer"])
    writer.put_object(Bucket=bucket, Key="partages/keys/k1", Body=b"key")
    restore = as_identity(lab_server, lab_identities["identities"]["restore"])
    assert restore.head_object(Bucket=bucket, Key="partages/keys/k1")["ContentLength"] == 3
    assert restore.get_object(Bucket=bucket, Key="partages/keys/k1")["Body"].read() == b"key"
    assert "partages/keys/k1" in [o["Key"] for o in restore.list_objects_v2(Bucket=bucket)["Contents"]]
    with pytest.raises(ClientError) as refused:
        restore.put_object(Bucket=bucket, Key="partages/keys/k2", Body=b"x")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
