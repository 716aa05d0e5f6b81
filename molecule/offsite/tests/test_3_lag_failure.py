"""Lag and failure: with the bucket unreachable the unit fails at once, the metrics say so (failure, pending
snapshot, lag growing), and the next run after the outage copies and clears them. Never silent."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import COPY_UNIT


def test_unreachable_bucket_fails_the_unit_and_sets_the_metrics(lab):
    assert lab.copy() == 0  # up to date first
    lab.files.check_output(
        "seq 1 60000 > /srv/partages/services/urgences/nouveau.txt"
    )  # no anomaly: plain text
    assert lab.backup("partages") == 0
    lab.cut_offsite()
    try:
        started = time.monotonic()
        status = lab.copy()
        elapsed = time.monotonic() - started
    finally:
        lab.restore_offsite()
    assert status != 0
    assert elapsed < 120  # fails fast (probe timeout), restic would retry for 15 minutes
    assert lab.server.service(COPY_UNIT).systemd_properties["Result"] == "exit-code"
    assert lab.metric("rempart_offsite_last_run_success", "partages") == 0
    assert lab.metric("rempart_offsite_consecutive_failures", "partages") >= 1
    assert lab.metric("rempart_offsite_snapshots_pending", "partages") == 1
    assert lab.metric("rempart_offsite_lag_seconds", "partages") > 0
    journal = lab.server.run(f"journalctl -u {COPY_UNIT} -p err -n 20 --no-pager").stdout
    assert "partages: offsite copy FAILED" in journal

    assert lab.copy() == 0  # the outage is over: the next run catches up
    assert lab.metric("rempart_offsite_last_run_success", "partages") == 1
    assert lab.metric("rempart_offsite_consecutive_failures", "partages") == 0
    assert lab.metric("rempart_offsite_snapshots_pending", "partages") == 0
    assert lab.metric("rempart_offsite_lag_seconds", "partages") == 0
    assert lab.metric("rempart_offsite_copied_bytes", "partages") > 0


def offsite_originals(lab, dataset: str, cache: Path) -> set[str]:
    listed = lab.restic(dataset, "snapshots", "--json", "--no-lock", cache=cache)
    assert listed.returncode == 0, listed.stderr
    return {s.get("original") or s["id"] for s in json.loads(listed.stdout or "[]")}


def test_a_snapshot_taken_under_a_hold_stays_on_site_until_the_admin_clears_it(lab, tmp_path):
    """Only trusted snapshots leave (issue 15): one that arrives during a prune hold ("maybe under attack") stays
    on-site, counted in rempart_offsite_snapshots_untrusted, while the copy of the trusted ones still succeeds;
    once an admin clears the hold it is trusted and the next copy carries it."""
    lab.server.check_output("rempart-backup-admin hold partages --reason 'molecule: offsite during a hold'")
    try:
        lab.files.check_output("seq 1 3000 > /srv/partages/services/urgences/pendant-hold.txt")
        before = lab.local_snapshot_ids("partages")
        lab.backup("partages")  # stored and admitted; untrusted while the hold is open
        (held,) = lab.local_snapshot_ids("partages") - before
        assert lab.copy() == 0
        assert held not in offsite_originals(lab, "partages", tmp_path / "cache")
        assert lab.metric("rempart_offsite_snapshots_untrusted", "partages") >= 1
        assert lab.metric("rempart_offsite_snapshots_pending", "partages") == 0
    finally:
        lab.server.run("rempart-backup-admin clear-hold partages --by molecule --reason 'test over'")
    assert lab.copy() == 0
    assert held in offsite_originals(lab, "partages", tmp_path / "cache")
    assert lab.metric("rempart_offsite_snapshots_pending", "partages") == 0


def test_timer_is_scheduled_and_unit_sandboxed(lab):
    timer = lab.server.service("rempart-offsite-copy.timer")
    assert timer.is_enabled and timer.is_running
    properties = lab.server.service(COPY_UNIT).systemd_properties
    assert properties["ProtectSystem"] == "strict"
    assert properties["NoNewPrivileges"] == "yes"
    assert properties["Nice"] == "15"
    assert properties["CPUQuotaPerSecUSec"] == "500ms"
    key = lab.server.file("/etc/rempart/offsite/writer.env")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert lab.server.file("/etc/rempart/offsite").mode == 0o700
