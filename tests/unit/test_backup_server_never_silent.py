"""Issue 15 item 5: a backup job that crashes on what a client sent is never silent (real restic repository)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
from rempart_backup_server import __main__ as cli
from rempart_backup_server import config as server_config
from rempart_backup_server import job as server_job

ANOMALY = {"samples": 4, "entropy_bits": 7.5, "history": 10, "changed_ratio": 0.5, "removed_ratio": 0.5,
           "entropy_share": 0.5, "volume_factor": 5, "volume_floor_bytes": 1 << 20, "time_skew_seconds": 300}  # fmt: skip


@pytest.fixture
def server(tmp_path, monkeypatch):
    config = {
        "user": "root",
        "datasets": {"dpi": {"host": socket.gethostname(), "kind": "postgresql", "database": "dpi"}},
        "repos_dir": str(tmp_path / "repos"),
        "secrets_dir": str(tmp_path / "secrets"),
        "state_dir": str(tmp_path / "state"),
        "metrics_dir": str(tmp_path / "metrics"),
        "restic": "/usr/bin/restic",
        "anomaly": ANOMALY,
    }
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "dpi.json").write_text('{"repository_password": "pw-dpi-0123456789"}')
    env = server_config.restic_env(config, "dpi")
    subprocess.run(["restic", "init", "-q"], env=env, check=True, capture_output=True)
    monkeypatch.setattr(cli, "load_config", lambda: config)
    monkeypatch.setattr(
        server_job, "secrets_of", lambda c, n: {"repository_password": "x", "http_password": "y"}
    )
    monkeypatch.setattr(server_config, "CONFIG", Path("/nonexistent"))
    config["ca_cert"] = str(tmp_path / "ca.pem")
    Path(config["ca_cert"]).write_text("CA")
    return config, env, tmp_path


def client_job(env: dict[str, str], tmp_path: Path, summary: dict):
    """What a (compromised) client does during its job: a real snapshot arrives, then its summary."""

    def run_ssh(config, name, credentials):
        dump = "COPY public.t (id) FROM stdin;\n1\n\\.\n"
        subprocess.run(["restic", "backup", "-q", "--host", socket.gethostname(), "--stdin", "--stdin-filename",
                        "dpi.sql"], input=dump, text=True, env=env, check=True, capture_output=True)  # fmt: skip
        return 0, [], "", summary

    return run_ssh


def metric(metrics_dir: Path, name: str) -> float:
    text = "".join(p.read_text() for p in metrics_dir.glob("*.prom"))
    match = re.search(rf"^{name}{{[^}}]*}} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def test_a_summary_with_rows_as_a_list_is_refused_loudly_not_a_crash(server, monkeypatch, capsys):
    _, env, tmp_path = server
    monkeypatch.setattr(
        server_job, "run_ssh", client_job(env, tmp_path, {"rc": 0, "rows": ["not", "a", "dict"]})
    )
    assert cli.main(["job", "dpi"]) == 2  # stored, untrusted, on hold: the anomaly exit status
    ledger = [json.loads(line) for line in (tmp_path / "state/ledger/dpi.jsonl").read_text().splitlines()]
    arrival = next(e for e in ledger if e["event"] == "snapshot")
    assert not arrival["trusted"] and arrival["client"]["rows"] is None
    assert arrival["server_rows"] == {"public.t": 1}  # the server counted the rows itself
    assert any(p.startswith("client-summary-malformed: rows is a list") for p in arrival["problems"])
    assert (tmp_path / "state/holds/dpi.json").exists()
    assert metric(tmp_path / "metrics", "rempart_backup_anomaly") == 1
    assert "PRUNE HOLD on dpi" in capsys.readouterr().err


def test_a_crash_of_the_job_is_never_silent(server, monkeypatch, capsys):
    _, env, tmp_path = server
    monkeypatch.setattr(server_job, "run_ssh", client_job(env, tmp_path, {"rc": 0}))
    monkeypatch.setattr(server_job, "diff_stats", lambda *a: {}["boom"])
    assert cli.main(["job", "dpi"]) == 1
    ledger = [json.loads(line) for line in (tmp_path / "state/ledger/dpi.jsonl").read_text().splitlines()]
    failed = ledger[-1]
    assert failed["event"] == "program-failed" and failed["program"] == "backup-job"
    assert failed["dataset"] == "dpi" and failed["exit_code"] == 1 and "KeyError" in failed["error"]
    metrics = tmp_path / "metrics"
    assert metric(metrics, "rempart_backup_last_run_success") == 0
    assert metric(metrics, "rempart_backup_consecutive_failures") == 1
    assert metric(metrics, "rempart_program_last_run_success") == 0
    assert "backup-job crashed: KeyError" in capsys.readouterr().err


def test_a_clean_job_records_success_and_no_failure(server, monkeypatch):
    _, env, tmp_path = server
    rows = {"public.t": 1}
    monkeypatch.setattr(server_job, "run_ssh", client_job(env, tmp_path, {"rc": 0, "rows": rows}))
    assert cli.main(["job", "dpi"]) == 0
    ledger = [json.loads(line) for line in (tmp_path / "state/ledger/dpi.jsonl").read_text().splitlines()]
    assert [e["event"] for e in ledger] == ["snapshot"] and ledger[0]["trusted"] and ledger[0]["admitted"]
    assert ledger[0]["server_rows"] == rows
    assert metric(tmp_path / "metrics", "rempart_backup_last_run_success") == 1
    assert metric(tmp_path / "metrics", "rempart_program_last_run_success") == 1


def test_an_unknown_dataset_is_refused_before_any_record(server, capsys):
    _, _, tmp_path = server
    with pytest.raises(SystemExit, match="unknown dataset 'x'"):
        cli.main(["job", "x"])
    assert not (tmp_path / "state" / "ledger").exists()


def test_a_damaged_status_file_is_a_failed_job_not_a_silent_one(server, monkeypatch):
    _, env, tmp_path = server
    monkeypatch.setattr(server_job, "run_ssh", client_job(env, tmp_path, {"rc": 0, "rows": {"public.t": 1}}))
    status = tmp_path / "state/status/dpi.json"
    status.parent.mkdir(parents=True)
    status.write_text("{not json")
    assert cli.main(["job", "dpi"]) == 1
    assert metric(tmp_path / "metrics", "rempart_backup_last_run_success") == 0
    assert json.loads(status.read_text())["last_ok"] == 0  # rewritten, readable again
    assert cli.main(["job", "dpi"]) == 0
