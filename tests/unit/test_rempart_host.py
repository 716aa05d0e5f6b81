"""rempart_host, the library of the deployed programs: one test per function, on real files and processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rempart_host import alert, dumps, failure, files, journal, ledger, metrics, privileges, program, restic

LIBRARY = Path(__file__).resolve().parents[2] / "roles/program_library/files"


def fake_restic(tmp_path: Path, script: str) -> str:
    path = tmp_path / "restic"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


# --------------------------------------------------------------------------- journal


def test_log_writes_one_line_with_the_sd_daemon_priority(capsys):
    journal.log("backup of dpi FAILED", journal.ERR)
    journal.log("all good")
    assert capsys.readouterr().err == "<3>backup of dpi FAILED\n<6>all good\n"


# --------------------------------------------------------------------------- files


def test_write_atomic_creates_parents_sets_the_mode_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a" / "b" / "status.json"
    files.write_atomic(target, "{}\n", 0o640)
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    files.write_atomic(target, "new\n")
    assert target.read_text() == "new\n" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["status.json"]


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "kept.txt"
    files.write_atomic(target, "old")
    with pytest.raises(UnicodeEncodeError):
        files.write_atomic(target, "\udcff")  # not encodable: fails after the temporary file was opened
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_locked_serialises_two_holders(tmp_path):
    lock = tmp_path / "locks" / "dpi.lock"
    order: list[str] = []

    def second() -> None:
        with files.locked(lock):
            order.append("second")

    with files.locked(lock):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]


# --------------------------------------------------------------------------- metrics


def test_write_metrics_renders_help_type_and_sorted_labels(tmp_path):
    path = metrics.write_metrics(
        tmp_path, "rempart_backup_dpi", {"rempart_b": ("second", 2), "rempart_a": ("first", 0.5)},
        {"host": "db-01", "dataset": "dpi"},
    )  # fmt: skip
    assert path == tmp_path / "rempart_backup_dpi.prom"
    assert path.read_text().splitlines() == [
        "# HELP rempart_a first", "# TYPE rempart_a gauge", 'rempart_a{dataset="dpi",host="db-01"} 0.5',
        "# HELP rempart_b second", "# TYPE rempart_b gauge", 'rempart_b{dataset="dpi",host="db-01"} 2',
    ]  # fmt: skip


def test_write_samples_describes_a_metric_once_and_escapes_label_values(tmp_path):
    path = metrics.write_samples(tmp_path, "offline", [
        ("rempart_stale", "stale copies", {"dataset": "a"}, 1),
        ("rempart_stale", "stale copies", {"dataset": 'b"\\'}, 0),
        ("rempart_alerts", "alerts", {}, 3),
    ])  # fmt: skip
    text = path.read_text()
    assert text.count("# HELP rempart_stale") == 1
    assert 'rempart_stale{dataset="b\\"\\\\"} 0' in text
    assert "\nrempart_alerts 3\n" in text


def test_read_values_returns_what_an_unlabelled_file_holds(tmp_path):
    assert metrics.read_values(tmp_path, "missing") == {}
    metrics.write_metrics(
        tmp_path, "export", {"rempart_export_success": ("ok", 1), "rempart_export_bytes": ("b", 12.5)}
    )
    assert metrics.read_values(tmp_path, "export") == {
        "rempart_export_success": 1.0,
        "rempart_export_bytes": 12.5,
    }


# --------------------------------------------------------------------------- ledger


def test_ledger_appends_json_lines_and_reads_them_back(tmp_path):
    book = ledger.Ledger(tmp_path / "ledger" / "dpi.jsonl")
    assert book.read() == []
    book.append([{"event": "snapshot", "id": "a"}])
    book.append([{"event": "hold", "b": 1}, {"event": "hold-cleared"}])
    assert [e["event"] for e in book.read()] == ["snapshot", "hold", "hold-cleared"]
    assert book.path.read_text().splitlines()[0] == '{"event": "snapshot", "id": "a"}'


def test_ledger_refuses_a_damaged_line_unless_told_to_skip_it(tmp_path):
    book = ledger.Ledger(tmp_path / "l.jsonl")
    book.path.write_text('{"event": "a"}\nnot json\n\n{"event": "b"}\n')
    with pytest.raises(ValueError):
        book.read()
    assert [e["event"] for e in book.read(skip_invalid=True)] == ["a", "b"]


# --------------------------------------------------------------------------- restic


def test_restic_run_passes_the_environment_and_options_never_the_password_in_argv(tmp_path):
    binary = fake_restic(tmp_path, 'echo "$RESTIC_PASSWORD|$*"')
    runner = restic.Restic(binary, {"RESTIC_PASSWORD": "s3cret"}, options=["-o", "local.connections=4"])
    result = runner.run("snapshots", "--no-lock")
    assert result.stdout == "s3cret|-o local.connections=4 snapshots --no-lock\n"
    assert "s3cret" not in " ".join(runner.command("snapshots"))


def test_restic_run_raises_with_the_end_of_stderr_unless_unchecked(tmp_path):
    runner = restic.Restic(fake_restic(tmp_path, 'echo "repository index is damaged" >&2; exit 12'), {})
    with pytest.raises(restic.ResticError, match=r"restic check failed \(12\): repository index is damaged"):
        runner.run("check")
    assert runner.run("check", check=False).returncode == 12


def test_restic_run_times_out(tmp_path):
    runner = restic.Restic(fake_restic(tmp_path, "sleep 5"), {}, timeout=0.2)
    with pytest.raises(subprocess.TimeoutExpired):
        runner.run("copy")


def test_restic_json_adds_json_once_and_parses_stdout(tmp_path):
    runner = restic.Restic(fake_restic(tmp_path, 'printf \'{"args": "%s"}\' "$*"'), {})
    assert runner.json("snapshots", "--no-lock") == {"args": "snapshots --no-lock --json"}
    assert runner.json("stats", "--json") == {"args": "stats --json"}
    assert restic.Restic(fake_restic(tmp_path, "true"), {}).json("snapshots") is None


def test_restic_popen_streams_stdout(tmp_path):
    runner = restic.Restic(fake_restic(tmp_path, 'printf "%s" "$2"'), {})
    process = runner.popen("dump", "content", stdout=subprocess.PIPE)
    assert process.communicate()[0] == b"content"


def test_parse_time_takes_restic_nanoseconds_and_zones():
    assert restic.parse_time("2026-01-02T03:04:05.123456789Z") == pytest.approx(1767323045.123456)
    assert restic.parse_time("2026-01-02T04:04:05+01:00") == 1767323045.0


# --------------------------------------------------------------------------- dumps


DUMP = (
    b"SET x = 1;\nCOPY public.patients (id, nom) FROM stdin;\n1\tA\n2\tB\n3\tC\n\\.\n\n"
    b"COPY public.empty (id) FROM stdin;\n\\.\n"
    b"-- COPY public.fake FROM stdin; in a comment\nCOPY public.sejours (id) FROM stdin;\n7\n8\n\\.\n"
)


@pytest.mark.parametrize("size", [1, 3, 7, 64, len(DUMP)])
def test_copy_rows_counts_rows_per_table_whatever_the_chunks(size):
    rows = dumps.CopyRows()
    for start in range(0, len(DUMP), size):
        rows.feed(DUMP[start : start + size])
    assert rows.rows == {"public.patients": 3, "public.empty": 0, "public.sejours": 2}


# --------------------------------------------------------------------------- alert


def test_alert_call_runs_the_command_with_its_words(tmp_path):
    out = tmp_path / "alert.txt"
    script = fake_restic(tmp_path, f'echo "$*" > {out}')
    assert alert.call(f"{script} --to 'ops team'", "dpi", "job-failed") is True
    assert out.read_text() == "--to ops team dpi job-failed\n"
    assert alert.call("", "dpi", "x") is False
    assert alert.call(str(tmp_path / "missing"), "dpi", "x") is False
    assert alert.call("/bin/false", "dpi", "x") is False


# --------------------------------------------------------------------------- privileges


def test_drop_privileges_switches_to_the_user(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "setgroups", lambda groups: calls.append(("groups", groups)))
    monkeypatch.setattr(os, "setgid", lambda gid: calls.append(("gid", gid)))
    monkeypatch.setattr(os, "setuid", lambda uid: calls.append(("uid", uid)))
    privileges.drop_privileges("nobody")
    import pwd

    nobody = pwd.getpwnam("nobody")
    assert calls == [("groups", []), ("gid", nobody.pw_gid), ("uid", nobody.pw_uid)]  # groups before uid


# --------------------------------------------------------------------------- program.run


def _metric(metrics_dir: Path, name: str) -> float:
    text = "".join(p.read_text() for p in metrics_dir.glob("*.prom"))
    line = next(line for line in text.splitlines() if line.startswith(name + "{"))
    return float(line.rsplit(" ", 1)[1])


def test_program_run_success_writes_the_metric_and_no_ledger_entry(tmp_path):
    book = ledger.Ledger(tmp_path / "l.jsonl")
    code = program.run(
        lambda: 0, program="backup-job", metrics_dir=tmp_path, ledger=book, labels={"dataset": "d"}
    )
    assert code == 0 and book.read() == []
    assert _metric(tmp_path, "rempart_program_last_run_success") == 1
    assert 'program="backup-job"' in (tmp_path / "rempart_program_backup_job_d.prom").read_text()


def test_program_run_turns_a_traceback_into_a_ledger_entry_a_metric_and_exit_1(tmp_path, capsys):
    book = ledger.Ledger(tmp_path / "l.jsonl")

    def crash() -> int:
        rows = ["not", "a", "dict"]
        return sum(rows.values())  # type: ignore[attr-defined]

    code = program.run(
        crash, program="backup-job", metrics_dir=tmp_path, ledger=book, labels={"dataset": "d"}
    )
    assert code == 1
    [entry] = book.read()
    assert entry["event"] == "program-failed" and entry["program"] == "backup-job" and entry["dataset"] == "d"
    assert entry["exit_code"] == 1 and "AttributeError" in entry["error"]
    assert _metric(tmp_path, "rempart_program_last_run_success") == 0
    err = capsys.readouterr().err
    assert "<3>rempart: backup-job crashed: AttributeError" in err and "rows.values()" in err


@pytest.mark.parametrize(("outcome", "code", "why"), [(2, 2, "exit status 2"), (SystemExit("bad input"), 1, "bad input"),
                                                      (SystemExit(64), 64, "exit status 64")])  # fmt: skip
def test_program_run_records_non_zero_exits(tmp_path, outcome, code, why):
    def main() -> int:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    book = ledger.Ledger(tmp_path / "l.jsonl")
    assert program.run(main, program="p", metrics_dir=tmp_path, ledger=book) == code
    assert book.read()[0]["error"] == why
    assert _metric(tmp_path, "rempart_program_last_run_exit_code") == code


def test_program_run_fails_when_its_metrics_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert program.run(lambda: 0, program="p", metrics_dir=blocker / "sub") == 1
    assert program.run(lambda: None, program="p", metrics_dir=None) == 0


# --------------------------------------------------------------------------- failure (OnFailure= handler)


def test_failure_record_logs_the_tag_counts_and_calls_the_alert_command(tmp_path, capsys):
    out = tmp_path / "alert.txt"
    command = fake_restic(tmp_path, f'echo "$*" >> {out}')
    config = {"metrics_dir": str(tmp_path / "metrics"), "alert_command": command}
    assert failure.record(config, "rempart-backup@dpi.service", now=1000.0) == 0
    assert failure.record(config, "rempart-backup@dpi.service", now=2000.0) == 0
    assert "<2>rempart-alert: unit rempart-backup@dpi.service FAILED" in capsys.readouterr().err
    prom = (tmp_path / "metrics" / "rempart_unit_failure_rempart_backup_dpi_service.prom").read_text()
    assert 'rempart_unit_failures{unit="rempart-backup@dpi.service"} 2' in prom
    assert 'rempart_unit_last_failure_timestamp_seconds{unit="rempart-backup@dpi.service"} 2000' in prom
    assert out.read_text() == "rempart-backup@dpi.service unit-failed\n" * 2


def test_failure_main_without_configuration_still_logs_and_a_failing_alert_is_an_error(tmp_path, capsys):
    assert failure.main(["rempart-check@x.service", "--config", str(tmp_path / "none.json")]) == 0
    assert "rempart-alert: unit rempart-check@x.service FAILED" in capsys.readouterr().err
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"alert_command": "/bin/false"}))
    assert failure.main(["u.service", "--config", str(config)]) == 1


# --------------------------------------------------------------------------- rempart_run.py (entry script)


def test_rempart_run_finds_the_library_under_python_isolated_mode(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"metrics_dir": str(tmp_path)}))
    result = subprocess.run(
        [sys.executable, "-I", str(LIBRARY / "rempart_run.py"), "rempart_host.failure", "a.service", "--config", str(config)],
        capture_output=True, text=True, check=False, cwd=tmp_path, env={"PYTHONPATH": "/nonexistent"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "rempart-alert: unit a.service FAILED" in result.stderr
    assert (tmp_path / "rempart_unit_failure_a_service.prom").exists()


@pytest.mark.parametrize("target", ["os", "/usr/lib/python3/os.py", "rempart_x/../os", ""])
def test_rempart_run_refuses_what_is_not_a_rempart_program(target):
    result = subprocess.run([sys.executable, "-I", str(LIBRARY / "rempart_run.py"), target], capture_output=True,
                            text=True, check=False)  # fmt: skip
    assert result.returncode == 64 and "usage" in result.stderr


def test_rempart_run_runs_a_program_file_by_path_with_the_library_importable(tmp_path):
    script = tmp_path / "rempart_probe.py"
    script.write_text(
        "import sys\nfrom rempart_host.journal import log\nlog(__file__ + ' ' + ' '.join(sys.argv))\n"
        "raise SystemExit(3)\n"
    )
    result = subprocess.run([sys.executable, "-I", str(LIBRARY / "rempart_run.py"), str(script), "a", "b"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 3
    assert result.stderr == f"<6>{script} {script} a b\n"


# --------------------------------------------------------------------------- the role's filter


def test_program_files_installs_each_module_in_its_package_folder(tmp_path):
    from plugins.filter.rempart_program import rempart_program_files

    sources = sorted(str(p) for p in (LIBRARY / "rempart_host").glob("*.py"))
    entries = rempart_program_files(sources, "/usr/local/lib/rempart/python/")
    assert {e["path"] for e in entries} == {
        f"/usr/local/lib/rempart/python/rempart_host/{Path(s).name}" for s in sources
    }
    journal_entry = next(e for e in entries if e["path"].endswith("/journal.py"))
    assert (
        journal_entry["content"] == (LIBRARY / "rempart_host/journal.py").read_text()
        and journal_entry["mode"] == "0644"
    )


def test_program_run_explains_the_program_s_own_exit_statuses(tmp_path):
    book = ledger.Ledger(tmp_path / "l.jsonl")
    assert program.run(lambda: 2, program="p", metrics_dir=None, ledger=book, meanings={2: "anomaly"}) == 2
    assert book.read()[0]["error"] == "exit status 2 (anomaly)"


def test_write_prefixed_and_read_prefixed_round_trip_one_program_s_file(tmp_path):
    target = tmp_path / "rempart_degraded_station.prom"
    assert metrics.read_prefixed(target, "rempart_degraded_station_") == {}
    metrics.write_prefixed(target, "rempart_degraded_station_", {"fetch_success": 1, "stale": 0}, "station")
    text = target.read_text()
    assert "# HELP rempart_degraded_station_fetch_success station: fetch success\n" in text
    assert "\nrempart_degraded_station_stale 0\n" in text
    assert metrics.read_prefixed(target, "rempart_degraded_station_") == {"fetch_success": 1.0, "stale": 0.0}


def test_program_command_runs_a_program_the_way_the_units_do():
    argv = program.command("rempart_host.failure", "x.service")
    assert argv[:3] == [sys.executable, "-I", str(LIBRARY / "rempart_run.py")] and argv[3:] == [
        "rempart_host.failure",
        "x.service",
    ]


def test_dataset_secrets_and_repository_password_read_the_role_s_file(tmp_path):
    from rempart_host import secrets

    (tmp_path / "dpi.json").write_text('{"repository_password": "r", "http_password": "h"}')
    assert secrets.dataset_secrets(tmp_path, "dpi") == {"repository_password": "r", "http_password": "h"}
    assert secrets.repository_password(tmp_path, "dpi") == "r"
    with pytest.raises(FileNotFoundError):
        secrets.repository_password(tmp_path, "missing")


def test_read_json_reads_a_configuration(tmp_path):
    (tmp_path / "c.json").write_text('{"a": [1]}')
    assert files.read_json(tmp_path / "c.json") == {"a": [1]}


def test_program_run_records_a_sigterm_as_a_termination(tmp_path):
    import signal

    book = ledger.Ledger(tmp_path / "l.jsonl")

    def stopped() -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0

    before = signal.getsignal(signal.SIGTERM)
    assert program.run(stopped, program="p", metrics_dir=tmp_path, ledger=book) == 143
    assert book.read()[0]["error"] == "exit status 143 (terminated: the unit was stopped or timed out)"
    assert signal.getsignal(signal.SIGTERM) == before
