"""rempart-quota (roles/supervision, issue 15 item 5): a repository at its quota refuses the job, a job whose writes
would pass the quota is stopped (alert, metric), the usage metrics carry the used bytes and the quota."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rempart_quota as quota  # roles/supervision/files (pytest pythonpath), as deployed


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "metrics").mkdir()
    repo = tmp_path / "repos" / "partages" / "data" / "ab"
    repo.mkdir(parents=True)
    (repo / "pack1").write_bytes(b"x" * 600)
    alerts: list[str] = []
    monkeypatch.setattr(quota.syslog, "syslog", lambda priority, line: alerts.append(line))
    config = {
        "establishment": "CH Lab", "host": "backup-01", "metrics_dir": str(tmp_path / "metrics"),
        "repos_dir": str(tmp_path / "repos"),
        "datasets": {"partages": {"host": "files-01", "quota_bytes": 1000}, "imagerie": {"host": "files-01"}},
    }  # fmt: skip

    class Lab:
        conf, log, pack_dir = config, alerts, repo

        def metrics(self, name: str) -> str:
            return (tmp_path / "metrics" / f"rempart_quota_{name}.prom").read_text()

    return Lab()


def test_usage_writes_used_and_quota(lab):
    assert quota.usage(lab.conf, ["partages", "imagerie"]) == 0
    text = lab.metrics("partages")
    assert 'rempart_repository_used_bytes{dataset="partages",host="files-01"} 600' in text
    assert 'rempart_repository_quota_bytes{dataset="partages",host="files-01"} 1000' in text
    assert 'rempart_repository_quota_exceeded{dataset="partages",host="files-01"} 0' in text
    assert "rempart_repository_quota_bytes" not in lab.metrics("imagerie")  # no quota declared


def test_gate_refuses_a_full_repository_and_alerts(lab, capsys):
    assert quota.gate(lab.conf, "partages") == 0
    (lab.pack_dir / "pack2").write_bytes(b"y" * 400)
    assert quota.gate(lab.conf, "partages") == 1
    assert "job refusé" in capsys.readouterr().err
    assert 'rempart_repository_quota_exceeded{dataset="partages",host="files-01"} 1' in lab.metrics(
        "partages"
    )
    assert "dataset=partages" in lab.log[-1] and "level=critical" in lab.log[-1]


def test_watch_stops_the_job_before_the_quota(lab, monkeypatch):
    calls: list[list[str]] = []
    writes = iter([200, 150, 0])  # bytes the job writes between two measures

    class Done:
        def __init__(self, stdout: str = "") -> None:
            self.stdout, self.returncode = stdout, 0

    def run(argv: list[str], **_: Any) -> Done:
        calls.append(argv)
        if argv[1] == "is-active":
            return Done("inactive\n" if any(c[1] == "stop" for c in calls) else "activating\n")
        return Done()

    def sleep(_: float) -> None:
        size = next(writes)
        (lab.pack_dir / f"p{size}-{len(calls)}").write_bytes(b"z" * size)

    monkeypatch.setattr(quota.subprocess, "run", run)
    monkeypatch.setattr(quota.time, "sleep", sleep)
    assert quota.watch(lab.conf, "partages", "rempart-backup@partages.service", 1.0) == 0
    # 600 -> 800 (rate would reach 1000 within the next interval): stopped at 800, below the quota
    assert ["systemctl", "stop", "--no-block", "rempart-backup@partages.service"] in calls
    assert 'rempart_repository_used_bytes{dataset="partages",host="files-01"} 800' in lab.metrics("partages")
    assert "job coupé" in lab.log[-1]
    quota.usage(lab.conf, ["partages"])  # after the job: the cut stays visible though the repository is below
    assert 'rempart_repository_quota_exceeded{dataset="partages",host="files-01"} 1' in lab.metrics(
        "partages"
    )


def test_a_later_uncut_job_clears_the_cut(lab, monkeypatch):
    quota.cut_marker(lab.conf, "partages").write_text("1\n")

    class Done:
        stdout, returncode = "inactive\n", 0

    monkeypatch.setattr(quota.subprocess, "run", lambda argv, **_: Done())
    monkeypatch.setattr(quota.time, "sleep", lambda _: None)
    assert quota.watch(lab.conf, "partages", "rempart-backup@partages.service", 1.0) == 0
    assert not quota.cut_marker(lab.conf, "partages").exists()
    assert 'rempart_repository_quota_exceeded{dataset="partages",host="files-01"} 0' in lab.metrics(
        "partages"
    )


def test_unknown_dataset_is_refused(lab, tmp_path):
    import json

    path = tmp_path / "supervision.json"
    path.write_text(json.dumps(lab.conf))
    assert quota.main(["--config", str(path), "gate", "dpi"]) == 2
