"""After an on-site job the copy unit copies; a restore from the bucket with the *restore* identity (from the host,
against the stand-in) is byte-identical to the source; the restore identity cannot write."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from conftest import COPY_UNIT, remote_digest, tree_digest


def test_copy_after_backup_then_restore_is_byte_identical(lab, tmp_path):
    assert lab.backup("partages") == 0
    assert lab.backup("imagerie") == 0
    started = time.time()
    assert lab.copy() == 0, lab.server.run(f"journalctl -u {COPY_UNIT} -n 30 --no-pager").stdout
    copied, seconds = (
        lab.metric("rempart_offsite_copied_bytes", "imagerie"),
        lab.metric("rempart_offsite_duration_seconds", "imagerie"),
    )
    figure = {
        "dataset": "imagerie (incompressible)",
        "bytes": copied,
        "seconds": seconds,
        "mib_s": copied / seconds / 2**20,
        "includes": "restic init, copy, retention refresh, listing",
    }
    Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "offsite-throughput.json").write_text(json.dumps(figure))
    print(
        f"lab copy backup-01 -> moto: {figure['mib_s']:.1f} MiB/s ({copied / 2**20:.1f} MiB in {seconds:.1f} s)"
    )
    for dataset in ("partages", "imagerie"):
        assert lab.metric("rempart_offsite_last_run_success", dataset) == 1
        assert lab.metric("rempart_offsite_last_success_timestamp_seconds", dataset) >= started - 5
        assert lab.metric("rempart_offsite_lag_seconds", dataset) == 0
        assert lab.metric("rempart_offsite_snapshots_pending", dataset) == 0
        listed = lab.restic(dataset, "snapshots", "--json", "--no-lock", cache=tmp_path / "cache")
        assert listed.returncode == 0, listed.stderr
        offsite = {s.get("original") or s["id"] for s in json.loads(listed.stdout)}
        assert lab.local_snapshot_ids(dataset) <= offsite  # every on-site snapshot is offsite

    target = tmp_path / "restore"
    restored = lab.restic(
        "partages", "restore", "latest", "--no-lock", "--target", str(target), cache=tmp_path / "cache"
    )
    assert restored.returncode == 0, restored.stderr
    source = remote_digest(lab.files, "/srv/partages", excludes=("*.tmp", "~$*"))
    assert source and tree_digest(target / "srv" / "partages") == source

    target = tmp_path / "restore-imagerie"
    restored = lab.restic(
        "imagerie", "restore", "latest", "--no-lock", "--target", str(target), cache=tmp_path / "cache"
    )
    assert restored.returncode == 0, restored.stderr
    assert tree_digest(target / "srv" / "imagerie") == remote_digest(lab.files, "/srv/imagerie")


def test_offsite_repository_dedups_like_the_on_site_one(lab):
    """Same chunker parameters: a second copy with nothing new uploads nothing."""
    assert lab.copy() == 0
    assert lab.metric("rempart_offsite_copied_bytes", "imagerie") == 0
    assert lab.metric("rempart_offsite_copied_bytes", "partages") == 0


def test_objects_are_locked_in_compliance_mode(lab):
    s3 = lab.s3("restore")
    key = s3.list_objects_v2(Bucket=lab.bucket, Prefix="partages/data/")["Contents"][0]["Key"]
    head = s3.head_object(Bucket=lab.bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    days = (head["ObjectLockRetainUntilDate"].timestamp() - time.time()) / 86400
    assert lab.vars["offsite_retention_days"] - 1 <= days <= lab.vars["offsite_retention_cap_days"]


def test_restore_identity_cannot_write(lab, tmp_path):
    s3 = lab.s3("restore")
    for attempt in (
        lambda: s3.put_object(Bucket=lab.bucket, Key="partages/keys/evil", Body=b"x"),
        lambda: s3.delete_object(Bucket=lab.bucket, Key="partages/config"),
    ):
        try:
            attempt()
        except s3.exceptions.ClientError as error:
            assert error.response["Error"]["Code"] == "AccessDenied"
        else:
            raise AssertionError("the restore identity could write to the bucket")


def test_restore_secret_never_on_the_backup_server(lab):
    secret = lab.vars["vault_offsite_restore_secret_access_key"]
    found = lab.server.run(f"grep -rlF -- '{secret}' /etc /var/lib /usr/local /root 2>/dev/null").stdout
    assert found == ""
