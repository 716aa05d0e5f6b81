"""Point-in-time recovery: restic backs up to the locked bucket, an attacker holding the writer
credentials hides or overwrites every current object, `rempart offsite-recover` rebuilds the repository
as it was before, and `restic restore` gives the data back byte for byte."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from restic_helpers import make_dataset, require_restic, restic, tree_digest

from rempart.commands.cli import main


@pytest.fixture
def attacked_repository(s3, strict_endpoint, program_bucket, tmp_path):
    require_restic()
    bucket_name = program_bucket()
    data = make_dataset(tmp_path / "data")
    repository = f"s3:{strict_endpoint}/{bucket_name}"
    cache = tmp_path / "cache"
    restic(repository, "init", cache=cache)
    restic(repository, "backup", str(data), cache=cache)
    time.sleep(1.2)  # S3 timestamps have (at best) millisecond, moto's listing second precision
    before_attack = dt.datetime.now(dt.UTC)
    time.sleep(1.2)
    current = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name)
        for o in page.get("Contents", [])
    ]
    assert any(k.startswith("data/") for k in current)
    for index, key in enumerate(current):
        if index % 2:
            s3.delete_object(Bucket=bucket_name, Key=key)
        else:
            s3.put_object(Bucket=bucket_name, Key=key, Body=b"encrypted by the attacker")
    broken = restic(
        repository, "restore", "latest", "--target", str(tmp_path / "broken"), cache=cache, check=False
    )
    assert broken.returncode != 0
    return bucket_name, before_attack, data, cache


def _restore_and_compare(repository, data, cache, target):
    restic(repository, "check", cache=cache)
    restic(repository, "restore", "latest", "--target", str(target), cache=cache)
    restored = target / data.relative_to(data.anchor)
    assert tree_digest(restored) == tree_digest(data)
    assert len(tree_digest(data)) == 40


def _recover(bucket, endpoint, moment, destination, capsys):
    arguments = ["offsite-recover", "--bucket", bucket, "--endpoint-url", endpoint]
    code = main([*arguments, "--at", moment.isoformat(), "--to", destination])
    assert code == 0, capsys.readouterr().err


def test_recover_to_directory(attacked_repository, strict_endpoint, tmp_path, capsys):
    bucket, before_attack, data, _cache = attacked_repository
    rebuilt = tmp_path / "rebuilt"
    _recover(bucket, strict_endpoint, before_attack, str(rebuilt), capsys)
    assert not (rebuilt / "locks").exists()
    _restore_and_compare(str(rebuilt), data, tmp_path / "cache-dir", tmp_path / "restored")


def test_recover_in_place(attacked_repository, strict_endpoint, s3, tmp_path, capsys):
    bucket, before_attack, data, _cache = attacked_repository
    _recover(bucket, strict_endpoint, before_attack, f"s3://{bucket}", capsys)
    _restore_and_compare(f"s3:{strict_endpoint}/{bucket}", data, tmp_path / "cache-s3", tmp_path / "restored")
    # the attacker's versions are still there, under the recovered ones: nothing was destroyed
    versions = s3.list_object_versions(Bucket=bucket)
    assert any(not v["IsLatest"] for v in versions["Versions"])


def test_plan_picks_the_state_at_the_moment():
    from pathlib import Path

    from rempart.offsite.recover import parse_target, plan
    from rempart.offsite.s3 import Version

    t = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    second = dt.timedelta(seconds=1)
    history = {
        "config": [
            Version("config", "c2", t + second, True, False),
            Version("config", "c1", t - second, False, False),
        ],
        "data/ab/p": [
            Version("data/ab/p", "m", t + second, True, True),
            Version("data/ab/p", "p1", t, False, False),
        ],
        "index/gone": [
            Version("index/gone", "m", t - second, True, True),
            Version("index/gone", "i", t - 9 * second, False, False),
        ],
        "snapshots/new": [Version("snapshots/new", "s", t + second, True, False)],
        "locks/l": [Version("locks/l", "l", t - second, True, False)],
    }
    result = plan(history, t)
    assert {k: v.version_id for k, v in result.restore.items()} == {"config": "c1", "data/ab/p": "p1"}
    assert result.absent == ["index/gone", "snapshots/new"]
    assert parse_target("s3://b/repo/") == ("b", "repo/")
    assert parse_target("s3://b") == ("b", "")
    assert parse_target("/srv/x") == Path("/srv/x")


def test_keys_cannot_escape_the_target(tmp_path):
    from rempart.offsite.recover import _safe_path

    with pytest.raises(ValueError, match="outside"):
        _safe_path(tmp_path, "../../etc/passwd")
    assert _safe_path(tmp_path, "data/ab/cd") == tmp_path / "data" / "ab" / "cd"
