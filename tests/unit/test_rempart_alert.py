"""rempart-alert (roles/supervision): the hook writes one parseable syslog line tagged rempart-alert; the watch
mails each state change once (recovery included) with a French subject naming the establishment, the server, the
dataset and what to do; the journal drain mails the hooks' and the OnFailure= handler's lines, not the watch's."""

from __future__ import annotations

import email
import email.policy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import rempart_alert as alerts  # roles/supervision/files (pytest pythonpath), as deployed

THRESHOLDS = {
    "backup_age_warning_ratio": 1.0, "backup_age_critical_ratio": 2.0, "backup_grace_minutes": 60,
    "offsite_lag_warning_hours": 26.0, "offsite_lag_critical_hours": 50.0, "drill_age_warning_days": 8.0,
    "drill_age_critical_days": 15.0, "check_age_warning_days": 8.0, "check_age_critical_days": 15.0,
    "quota_warning_percent": 80.0, "quota_critical_percent": 95.0,
}  # fmt: skip


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(f'#!/bin/sh\ncat > "{outbox}/$(date +%s%N).eml"\n')
    sendmail.chmod(0o755)
    monkeypatch.setattr(alerts, "SENDMAIL", str(sendmail))
    logged: list[tuple[int, str]] = []
    monkeypatch.setattr(alerts.syslog, "syslog", lambda priority, line: logged.append((priority, line)))
    config = {
        "establishment": "Centre hospitalier du Lab (fictif)", "host": "backup-01", "metrics_dir": str(metrics),
        "red_button_flag": str(tmp_path / "flag.json"), "email": ["astreinte@ch-lab.fr"], "sender": "rempart@ch-lab.fr",
        "datasets": {"partages": {"host": "files-01", "rpo_hours": 24, "quota_bytes": None, "thresholds": THRESHOLDS}},
    }  # fmt: skip

    class Lab:
        state = tmp_path / "states.json"
        conf = config
        log = logged

        def metrics(self, success: float, ok: int) -> None:
            labels = 'dataset="partages",host="files-01"'
            (metrics / "rempart_backup_partages.prom").write_text(
                f"rempart_backup_last_success_timestamp_seconds{{{labels}}} {success}\n"
                f"rempart_backup_last_run_success{{{labels}}} {ok}\n"
            )

        def mails(self) -> list[email.message.EmailMessage]:
            found = [
                email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in sorted(outbox.iterdir())
            ]
            for path in outbox.iterdir():
                path.unlink()
            return found  # type: ignore[return-value]

    return Lab()


def test_hook_writes_one_parseable_line(lab):
    assert alerts.hook(lab.conf, "partages", "job-failed: ssh exited 255") == 0
    [(priority, line)] = lab.log
    assert priority == alerts.syslog.LOG_CRIT
    parsed = alerts.parse_line(f"rempart-alert: {line}")
    assert parsed == {
        "level": "critical", "source": "hook", "establishment": "Centre hospitalier du Lab (fictif)",
        "server": "backup-01", "dataset": "partages", "host": "files-01", "problem": "job-failed: ssh exited 255",
        "action": "lire le journal du job (journalctl -u rempart-backup@partages) puis le relancer "
                  "(systemctl start rempart-backup@partages)",
    }  # fmt: skip
    assert alerts.parse_line("rempart-alert: unit rempart-backup@partages.service FAILED") is None


def test_hook_as_on_failure_command_names_the_dataset_of_the_unit(lab):
    alerts.hook(lab.conf, "rempart-check@partages.service", "unit-failed")
    parsed = alerts.parse_line(lab.log[0][1])
    assert parsed["unit"] == "rempart-check@partages.service"
    assert (parsed["dataset"], parsed["host"], parsed["action"]) == (
        "partages",
        "files-01",
        "journalctl -u rempart-check@partages.service",
    )


def test_watch_mails_each_change_once_and_the_recovery(lab):
    now = time.time()
    lab.metrics(now - 3600, 0)  # failed job
    sent = alerts.watch(lab.conf, lab.state, now)
    [mail] = [m for m in lab.mails() if "sauvegardes :" in m["Subject"]]
    assert [a["level"] for a in sent if a["problem"].startswith("sauvegardes")] == ["critical"]
    subject = mail["Subject"]
    assert subject.startswith(
        "[Rempart] CRITIQUE - Centre hospitalier du Lab (fictif) - backup-01 - partages (files-01)"
    )
    assert (
        "sauvegardes : dernier job en échec (1 échec(s) consécutif(s)) - à faire : lire le journal du job"
        in subject
    )
    assert mail["To"] == "astreinte@ch-lab.fr" and mail["From"] == "rempart@ch-lab.fr"
    assert "systemctl start rempart-backup@partages" in mail.get_content()
    assert alerts.watch(lab.conf, lab.state, now) == [] and lab.mails() == []  # once per change
    lab.metrics(now - 60, 1)
    alerts.watch(lab.conf, lab.state, now)
    [recovery] = lab.mails()
    assert recovery["Subject"].startswith(
        "[Rempart] RÉTABLI - Centre hospitalier du Lab (fictif) - backup-01 - partages"
    )
    lines = [alerts.parse_line(line) for _, line in lab.log]
    assert [(x["level"], x["source"]) for x in lines if x["dataset"] == "partages"][-1] == ("ok", "watch")


def test_watch_keeps_the_state_when_the_mail_is_not_queued(lab, monkeypatch):
    now = time.time()
    lab.metrics(now - 3600, 0)
    monkeypatch.setattr(alerts, "SENDMAIL", "/bin/false")
    with pytest.raises(RuntimeError, match="mail not queued for backups/partages"):
        alerts.watch(lab.conf, lab.state, now)
    monkeypatch.undo()


def test_drain_mails_hooks_and_plain_lines_not_the_watch(lab, monkeypatch, tmp_path):
    hook_line = alerts.syslog_line({**alerts.base_alert(lab.conf, "partages"), "level": "critical", "source": "hook",
                                    "problem": "anomaly: entropy", "action": "x"})  # fmt: skip
    watch_line = alerts.syslog_line({**alerts.base_alert(lab.conf, "partages"), "level": "ok", "source": "watch",
                                     "problem": "p", "action": "a"})  # fmt: skip
    entries = [
        {"MESSAGE": hook_line, "PRIORITY": "2", "__CURSOR": "c1"},
        {"MESSAGE": watch_line, "PRIORITY": "5", "__CURSOR": "c2"},
        {"MESSAGE": "rempart-alert: unit rempart-retention@partages.service FAILED (journalctl -u x)", "PRIORITY": "2",
         "__CURSOR": "c3"},
    ]  # fmt: skip
    seen: list[str | None] = []
    monkeypatch.setattr(alerts, "journal_entries", lambda cursor: seen.append(cursor) or entries)
    cursor = tmp_path / "cursor"
    assert alerts.drain(lab.conf, cursor) == 2
    first, second = lab.mails()
    assert "anomaly: entropy" in first["Subject"]
    assert second["Subject"].startswith(
        "[Rempart] CRITIQUE - Centre hospitalier du Lab (fictif) - backup-01 - partages"
    )
    assert "à faire : journalctl -u rempart-retention@partages.service" in second["Subject"]
    assert cursor.read_text().strip() == "c3"
    entries.clear()
    alerts.drain(lab.conf, cursor)
    assert seen == [None, "c3"]


def test_config_round_trip_through_the_cli(lab, tmp_path, monkeypatch):
    path = tmp_path / "supervision.json"
    path.write_text(json.dumps(lab.conf))
    assert alerts.main(["--config", str(path), "imagerie-x", "lag 99999s"]) == 0
    assert alerts.parse_line(lab.log[-1][1])["level"] == "warning"
