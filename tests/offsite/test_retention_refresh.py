"""Retention refresh: a pack uploaded long ago but still referenced must outlive its upload-time lock
(issue 4, "Beware"). moto's clock is advanced past the retention; the strict server enforces the locks."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from rempart.offsite.recover import recover
from rempart.offsite.retention import Schedule, refresh_retention, required_until
from rempart.offsite.s3 import Version

DAYS = 30


def _put(s3, bucket, key, body):
    return s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]


def _deletable(s3, bucket, key, version):
    try:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "AccessDenied"
        return False
    return True


@pytest.fixture
def repository(s3, program_bucket, moto_clock):
    """A restic-shaped repository at T0: config, keys, one old pack referenced forever, one pruned later."""
    bucket_name = program_bucket(retention_days=DAYS)
    versions = {
        key: _put(s3, bucket_name, key, key.encode() * 10)
        for key in (
            "config",
            "keys/k1",
            "data/aa/old-pack",
            "data/bb/pruned-pack",
            "index/i1",
            "snapshots/s1",
        )
    }
    versions["locks/l1"] = _put(s3, bucket_name, "locks/l1", b"lock")
    s3.delete_object(Bucket=bucket_name, Key="locks/l1")  # restic removes its lock: a delete marker
    return bucket_name, versions


def test_without_refresh_an_old_referenced_pack_can_be_destroyed(s3, repository, moto_clock):
    """The danger being guarded against (and proof that the test below can fail)."""
    bucket, versions = repository
    moto_clock.advance(days=DAYS + 1)
    assert _deletable(s3, bucket, "data/aa/old-pack", versions["data/aa/old-pack"])


def test_refresh_keeps_every_state_of_the_window_protected(s3, repository, moto_clock):
    bucket, versions = repository
    old = versions["data/aa/old-pack"]
    moto_clock.advance(days=10)
    s3.delete_object(Bucket=bucket, Key="data/bb/pruned-pack")  # restic prune: a marker
    moto_clock.advance(days=10)  # T0+20: the offsite job copies a new snapshot, then refreshes
    _put(s3, bucket, "snapshots/s2", b"snapshot 2")
    report = refresh_retention(s3, bucket, DAYS, now=moto_clock.now())
    assert report.hidden == ["data/bb/pruned-pack"]
    assert not any(line.startswith("locks/") for line in report.extended)
    attack_at = moto_clock.now() + dt.timedelta(days=4)
    moto_clock.advance(days=5)  # T0+25: the attacker hides the old pack and overwrites a snapshot
    s3.delete_object(Bucket=bucket, Key="data/aa/old-pack")
    _put(s3, bucket, "snapshots/s1", b"garbage")

    moto_clock.advance(days=10)  # T0+35: past the upload-time lock of every T0 object
    assert not _deletable(s3, bucket, "data/aa/old-pack", old)  # refreshed at T0+20 -> T0+50
    assert not _deletable(s3, bucket, "snapshots/s1", versions["snapshots/s1"])
    assert not _deletable(s3, bucket, "data/bb/pruned-pack", versions["data/bb/pruned-pack"])  # -> T0+40
    assert _deletable(s3, bucket, "locks/l1", versions["locks/l1"])  # never refreshed

    refresh_retention(s3, bucket, DAYS, now=moto_clock.now())  # the hidden pack: superseded T0+25 -> T0+55
    moto_clock.advance(days=6)  # T0+41
    assert _deletable(s3, bucket, "data/bb/pruned-pack", versions["data/bb/pruned-pack"])  # window over
    moto_clock.advance(days=10)  # T0+51
    assert not _deletable(s3, bucket, "data/aa/old-pack", old)

    target_bucket = f"{bucket}-pitr"
    s3.create_bucket(Bucket=target_bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    count = recover(s3, bucket, attack_at, (target_bucket, ""))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=target_bucket)["Contents"]}
    assert keys == {"config", "keys/k1", "data/aa/old-pack", "index/i1", "snapshots/s1", "snapshots/s2"}
    assert count == len(keys)
    body = s3.get_object(Bucket=target_bucket, Key="snapshots/s1")["Body"].read()
    assert body == b"snapshots/s1" * 10


def test_refresh_never_shortens_and_is_idempotent(s3, repository, moto_clock):
    bucket, versions = repository
    far = (moto_clock.now() + dt.timedelta(days=DAYS + 30)).replace(microsecond=0)  # past the grid target
    s3.put_object_retention(
        Bucket=bucket,
        Key="config",
        VersionId=versions["config"],
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": far},
    )
    moto_clock.advance(days=3)
    first = refresh_retention(s3, bucket, DAYS, now=moto_clock.now())
    assert not first.incremental and first.extended
    assert not any(line.startswith("config@") for line in first.extended)
    head = s3.head_object(Bucket=bucket, Key="config", VersionId=versions["config"])
    assert head["ObjectLockRetainUntilDate"] == far
    second = refresh_retention(s3, bucket, DAYS, now=moto_clock.now())
    assert second.incremental and second.extended == []
    assert "PutObjectRetention" not in second.requests and "HeadObject" not in second.requests.keys() - {
        "HeadObject"
    }
    assert second.skipped == len(first.extended) + first.unchanged


def test_grid_target_stays_between_retention_and_cap():
    schedule = Schedule(30, 60, 1.0)
    written = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for hours in range(0, 24 * 120, 7):
        now = written + dt.timedelta(hours=hours)
        target = schedule.target(written, now)
        assert now + dt.timedelta(days=31) <= target < now + dt.timedelta(days=60)
    # one change per period (29 days): a run knows what is due from the upload time alone
    targets = {schedule.target(written, written + dt.timedelta(days=d)) for d in range(0, 116)}
    assert len(targets) == 4  # k = 1..4 over 116 days
    tight = Schedule(30, 31, 1.0)  # the smallest cap the establishment allows
    assert tight.lead == tight.period == dt.timedelta(hours=12)


def test_incremental_run_extends_only_what_is_due(s3, repository, moto_clock):
    bucket, _versions = repository
    moto_clock.advance(hours=1)
    first = refresh_retention(s3, bucket, DAYS, now=moto_clock.now())
    moto_clock.advance(hours=6)
    _put(s3, bucket, "data/cc/new-pack", b"new")
    moto_clock.advance(hours=1)  # (what was written within SKEW of a run's start is looked at again)
    second = refresh_retention(s3, bucket, DAYS, now=moto_clock.now())
    assert [line.split("@")[0] for line in second.extended] == ["data/cc/new-pack"]
    assert second.requests.get("PutObjectRetention") == 1
    moto_clock.advance(days=28, hours=-3)  # the grid of the T0 objects moves (period 29 days, 1 day ahead)
    third = refresh_retention(s3, bucket, DAYS, now=moto_clock.now())
    assert len(third.extended) == len(first.extended)  # the T0 objects; not the pack written 6 hours later


def test_required_until_rules():
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    day = dt.timedelta(days=1)

    def v(vid, age_days, marker=False):
        return Version("k", vid, now - age_days * day, False, marker)

    # newest first: marker 5 days ago hides v2 (written 20 days ago); v1 superseded by v2 20 days ago;
    # v0 superseded 40 days ago (out of a 30-day window)
    entries = [v("m", 5, marker=True), v("v2", 20), v("v1", 40), v("v0", 60)]
    assert required_until(entries, now, 30) == {"v2": now + 25 * day, "v1": now + 10 * day}
    assert required_until([v("c", 100)], now, 30) == {"c": now + 30 * day}
