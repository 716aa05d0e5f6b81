"""The lab's offsite stand-in (rempart/lab_offsite.py) and the offsite copy job's pure logic
(roles/offsite_copy/files/rempart_offsite_copy.py): the stand-in bucket is what `rempart verify-offsite` calls
compliant, its outputs are what `rempart offsite-outputs` accepts, and the copy's lag is judged by arrival."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from buckets import ACCOUNT
from moto_servers import s3_client

from rempart.establishment import Establishment
from rempart.lab import Lab
from rempart.lab_offsite import bucket_name, create_bucket, gateway, stack_outputs
from rempart.offsite_outputs import PUBLIC, REQUIRED, split_outputs
from rempart.offsite_verify import verify
from rempart.validation import load_valid

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def establishment() -> Establishment:
    return load_valid(
        {
            "finess": "340999903",
            "name": "CH du Lab",
            "retention": {"daily": 7, "monthly": 12, "yearly": 5},
            "offsite": {"provider": "aws", "region": "eu-west-3", "retention_days": 30},
            "datasets": [
                {"name": "partages", "description": "d", "host": "files-01", "kind": "files",
                 "paths": ["/srv/partages"], "criticality": "important", "rpo_hours": 24, "rto_hours": 24},
            ],
        },
        ["files-01"],
    )  # fmt: skip


@pytest.fixture
def copy_job():
    path = ROOT / "roles" / "offsite_copy" / "files" / "rempart_offsite_copy.py"
    spec = importlib.util.spec_from_file_location("rempart_offsite_copy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gateway_is_the_networks_first_address():
    assert gateway(Lab("rempart-lab", "10.89.60.0/24", "10.89.60.5", ())) == "10.89.60.1"


def test_stand_in_bucket_passes_verify_offsite(strict_endpoint, establishment):
    s3 = s3_client(strict_endpoint)
    name = bucket_name(establishment) + "-verify"
    create_bucket(s3, name, establishment)
    assert verify(s3, name, 30, ACCOUNT) == []


def test_stand_in_outputs_are_what_offsite_outputs_accepts(establishment):
    keys = {
        "writer": {"user": "w", "id": "AKIAW", "secret": "writer-secret"},
        "restore": {"user": "r", "id": "AKIAR", "secret": "restore-secret"},
    }
    outputs = stack_outputs(establishment, "http://10.89.60.1:9000", {"bucket": "b", "identities": keys})
    public, secrets = split_outputs(outputs, "340999903")
    assert set(REQUIRED) <= set(outputs)
    assert set(outputs) <= set(PUBLIC) | {"writer_secret_access_key", "restore_secret_access_key"}
    assert public["offsite_restic_repositories"] == {"partages": "s3:http://10.89.60.1:9000/b/partages"}
    assert secrets == {
        "vault_offsite_writer_secret_access_key": "writer-secret",
        "vault_offsite_restore_secret_access_key": "restore-secret",
    }
    assert "writer-secret" not in str(public)


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
