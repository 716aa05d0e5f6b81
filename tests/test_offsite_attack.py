"""The ransomware drill's offsite leg, fast, against the lab's stand-in (IAM and Object Lock enforced): the
attacker with the backup server's writer key hides every object and overwrites the repositories' config, every
version delete and every reconfiguration is refused, and `rempart offsite-recover` (restore identity) gives back
every object as it was before the attack. The molecule proof scenario runs the same leg on the lab."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from lab_stand_in import identity_client, lab_bucket, stand_in  # noqa: F401 (fixtures)

from rempart.offsite.recover import recover

PROJECT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location(
    "rempart_offsite_attack", PROJECT / "roles/ransomware_drill/files/rempart_offsite_attack.py"
)
assert spec and spec.loader
offsite_attack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(offsite_attack)

REPOSITORY = {"config": b"restic config", "keys/k1": b"key", "data/ab/ab01": b"pack 1" * 1000,
              "data/cd/cd02": b"pack 2" * 1000, "index/i1": b"index", "snapshots/s1": b"snapshot"}  # fmt: skip


@pytest.fixture
def attacked(lab_bucket: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:  # noqa: F811
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    writer = identity_client(lab_bucket, "writer")
    for prefix in ("partages", "dpi-postgresql"):
        for key, body in REPOSITORY.items():
            writer.put_object(Bucket=lab_bucket["bucket"], Key=f"{prefix}/{key}", Body=body)
    time.sleep(1.5)
    before = dt.datetime.now(dt.UTC)
    time.sleep(1.5)
    env = tmp_path / "writer.env"
    keys = lab_bucket["identities"]["writer"]
    env.write_text(f"AWS_ACCESS_KEY_ID={keys['id']}\nAWS_SECRET_ACCESS_KEY={keys['secret']}\n")
    config = {"writer_env": str(env), "bucket": lab_bucket["bucket"], "endpoint": lab_bucket["endpoint"],
              "region": "eu-west-3", "datasets": {"partages": {"prefix": "partages"},
                                                  "dpi-postgresql": {"prefix": "dpi-postgresql"}}}  # fmt: skip
    return {"before": before, "result": offsite_attack.attack(config)}


def test_writer_key_can_hide_but_not_destroy(lab_bucket, attacked):  # noqa: F811
    result = attacked["result"]
    assert result["objects_hidden"] == 2 * len(REPOSITORY)
    assert result["versions_tried"] >= 2 * len(REPOSITORY) and result["versions_deleted"] == 0
    outcomes = {a["action"].split(" on ")[0].split(" of ")[0]: a["outcome"] for a in result["attempts"]}
    assert outcomes["suspend versioning"] == "refused"
    assert outcomes["replace the Object Lock rule by GOVERNANCE 1 day"] == "refused"
    assert outcomes["add a lifecycle rule expiring every version after 1 day"] == "refused"
    assert outcomes["delete the bucket policy"] == "refused"
    assert outcomes["delete the bucket"] == "refused"
    assert all(a["outcome"] == "refused" for a in result["attempts"] if a["action"].startswith("shorten"))
    assert all(a["outcome"] == "recovered" for a in result["attempts"] if a["action"].startswith("overwrite"))
    reader = identity_client(lab_bucket, "restore")
    assert (
        reader.list_objects_v2(Bucket=lab_bucket["bucket"], Prefix="partages/").get("KeyCount") == 1
    )  # junk config


def test_point_in_time_recovery_gives_every_object_back(lab_bucket, attacked, tmp_path):  # noqa: F811
    reader = identity_client(lab_bucket, "restore")
    target = tmp_path / "partages"
    assert recover(reader, lab_bucket["bucket"], attacked["before"], target, "partages/") == len(REPOSITORY)
    restored = {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert {k: hashlib.sha256(v).hexdigest() for k, v in restored.items()} == {
        k: hashlib.sha256(v).hexdigest() for k, v in REPOSITORY.items()
    }  # every object, byte for byte, and nothing else (neither the junk config nor a lock)
