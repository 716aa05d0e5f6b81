"""`rempart offsite-watch` with the restore identity's view (listing and HEADs only): a healthy repository, then
each of hidden objects, a stopped refresh and running-out locks turns it to failure, shows in its metrics, and
turns the supervision's check_rempart (roles/supervision, offsite mode) reading those metrics to WARNING/CRITICAL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_verify_offsite import MIN_DAYS, restic_like

from rempart.commands.cli import main


def watch(capsys, endpoint, bucket, tmp_path):
    path = tmp_path / "rempart_offsite_watch.prom"
    code = main(["offsite-watch", "--bucket", bucket, "--endpoint-url", endpoint, "--min-retention-days",
                 str(MIN_DAYS), "--metrics-file", str(path)])  # fmt: skip
    values = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name.split("{")[0].removeprefix("rempart_offsite_watch_")] = float(value)
    return code, capsys.readouterr().out, values


THRESHOLDS = {"backup_age_warning_ratio": 1.0, "backup_age_critical_ratio": 2.0, "backup_grace_minutes": 60,
              "offsite_lag_warning_hours": 26.0, "offsite_lag_critical_hours": 50.0, "drill_age_warning_days": 8.0,
              "drill_age_critical_days": 15.0, "check_age_warning_days": 8.0, "check_age_critical_days": 15.0,
              "quota_warning_percent": 80.0, "quota_critical_percent": 95.0}  # fmt: skip


def check_offsite(tmp_path: Path, capsys) -> tuple[int, str]:
    """check_rempart --mode offsite on the folder the watch wrote into, the copy itself up to date."""
    import check_rempart as check  # roles/supervision/files (pytest pythonpath), as deployed

    (tmp_path / "rempart_offsite_partages.prom").write_text(
        'rempart_offsite_lag_seconds{dataset="partages"} 0\nrempart_offsite_last_run_success{dataset="partages"} 1\n'
    )
    config = tmp_path / "supervision.json"
    config.write_text(json.dumps({"establishment": "CH test", "metrics_dir": str(tmp_path),
                                  "red_button_flag": str(tmp_path / "none"),
                                  "datasets": {"partages": {"rpo_hours": 24, "thresholds": THRESHOLDS}}}))  # fmt: skip
    capsys.readouterr()
    code = check.main(["--mode", "offsite", "--config", str(config)])
    return code, capsys.readouterr().out


def test_healthy_repository(capsys, s3, strict_endpoint, program_bucket, moto_clock, tmp_path):
    bucket = program_bucket()
    restic_like(s3, bucket, moto_clock, days_ago=0.25)
    code, out, values = watch(capsys, strict_endpoint, bucket, tmp_path)
    assert code == 0, out
    assert values["hidden_objects"] == 0 and values["findings"] == 0
    assert 5 * 3600 < values["copy_lag_seconds"] < 7 * 3600
    assert values["min_lock_horizon_seconds"] > MIN_DAYS * 86400
    code, status = check_offsite(tmp_path, capsys)
    assert code == 0 and f"compartiment {bucket}" in status, status


@pytest.mark.parametrize(
    ("days_ago", "hide", "expected", "metric"),
    [
        (0.25, True, "hidden objects: 1 key(s)", ("hidden_objects", 1)),
        (3, False, "retention refresh: last run on partages 72 h ago", ("refresh_age_seconds", 72 * 3600)),
        (40, False, "lock horizon: 5 of the 5 oldest", ("min_lock_horizon_seconds", 19 * 86400)),
    ],
    ids=["hidden", "stopped-refresh", "lock-horizon"],
)
def test_each_case_fails(capsys, s3, strict_endpoint, program_bucket, moto_clock, tmp_path, days_ago, hide,
                         expected, metric):  # fmt: skip
    bucket = program_bucket()
    restic_like(s3, bucket, moto_clock, days_ago=days_ago)
    if hide:
        s3.delete_object(Bucket=bucket, Key="partages/data/aa/p1")
    code, out, values = watch(capsys, strict_endpoint, bucket, tmp_path)
    assert code == 1
    assert expected in out
    name, value = metric
    assert values[name] == pytest.approx(value, rel=0.01)
    assert values["findings"] >= 1
    code, status = check_offsite(tmp_path, capsys)
    assert code in (1, 2) and f"compartiment {bucket} :" in status, status
