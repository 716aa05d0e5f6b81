#!/usr/bin/python3
"""rempart-alert: every Rempart alert to syslog (stable tag ``rempart-alert``, for a SIEM) and to the on-call mail.

  rempart-alert SUBJECT REASONS   the programs' alert hook (backup_server_alert_command and the like, also usable
                                  as the OnFailure= handler's command: SUBJECT a unit, REASONS unit-failed). Runs
                                  inside their sandbox: it only writes the syslog line; ``run`` mails it.
  rempart-alert run               (rempart-alerts.timer, root) 1. evaluates check_rempart's modes and, for every
                                  dataset whose state changed since the last run, writes the syslog line and mails
                                  it (recoveries included); 2. mails every other journal entry tagged rempart-alert
                                  since the last one mailed (the hooks above, the OnFailure= handler's lines).

Mail goes through the local MTA's sendmail (nullmailer relaying to establishment.alerts.smtp_relay, queued while
the relay is down): no SMTP code here. French subject with the establishment, the server, the dataset, the problem
and what to do. Standard library only.
"""

from __future__ import annotations

import argparse
import email.policy
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import syslog
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_rempart  # installed beside this file

CONFIG = Path(os.environ.get("REMPART_SUPERVISION_CONFIG", "/etc/rempart/supervision.json"))
TAG = "rempart-alert"
SENDMAIL = "/usr/sbin/sendmail"
LEVELS = {"critical": "CRITIQUE", "warning": "AVERTISSEMENT", "unknown": "INCONNU", "ok": "RÉTABLI"}
PRIORITIES = {"critical": syslog.LOG_CRIT, "warning": syslog.LOG_WARNING, "unknown": syslog.LOG_ERR,
              "ok": syslog.LOG_NOTICE}  # fmt: skip
STATE_LEVELS = {check_rempart.OK: "ok", check_rempart.WARNING: "warning", check_rempart.CRITICAL: "critical",
                check_rempart.UNKNOWN: "unknown"}  # fmt: skip
# What to do, by the first pattern the problem matches (French: read by the on-call team).
ACTIONS = [
    (r"isolé|bouton rouge", "isolement en cours : lever par red_button_state=release une fois l'incident traité"),
    (r"hold|anomal|quarantaine|quarantine|untrusted|entropy|changed|removed|shrink|tables|skew",
     "vérifier le serveur {host} (rançongiciel ?) : rempart-backup-admin status ; ne lever le hold "
     "(rempart-backup-admin clear-hold {dataset}) qu'après analyse"),
    (r"job-failed|job en échec|aucune sauvegarde",
     "lire le journal du job (journalctl -u rempart-backup@{dataset}) puis le relancer "
     "(systemctl start rempart-backup@{dataset})"),
    (r"sauvegarde réussie il y a", "vérifier le timer (systemctl list-timers 'rempart-backup@*') et le dernier job"),
    (r"check-failed|contrôle d'intégrité", "rempart-backup-admin restic {dataset} check ; ne pas purger avant"),
    (r"quota", "augmenter backup.expected_size_gib de l'établissement (puis converger) ou purger"),
    (r"offsite|lag|externalis", "journalctl -u rempart-offsite-copy ; vérifier l'accès au bucket externalisé"),
    (r"drill|exercice", "lire le rapport du dernier exercice de restauration (rempart-drill)"),
    (r"offline|hors ligne|support", "brancher le prochain support de la rotation hors ligne"),
    (r"unit-failed|FAILED", "journalctl -u {unit}"),
]  # fmt: skip


def action_for(problem: str, alert: dict[str, str]) -> str:
    for pattern, action in ACTIONS:
        if re.search(pattern, problem, re.IGNORECASE):
            return action.format(host=alert.get("host") or "client", dataset=alert.get("dataset", ""),
                                 unit=alert.get("unit") or f"rempart-backup@{alert.get('dataset', '')}")  # fmt: skip
    return "lire le journal du serveur de sauvegarde (journalctl -t rempart-alert)"


# --------------------------------------------------------------------------- syslog line (key=value, one line)

FIELDS = ("level", "source", "establishment", "server", "dataset", "host", "unit", "problem", "action")


def syslog_line(alert: dict[str, str]) -> str:
    return " ".join(f"{k}={shlex.quote(alert[k])}" for k in FIELDS if alert.get(k))


def parse_line(message: str) -> dict[str, str] | None:
    """An alert written by syslog_line, or None for another line (the OnFailure= handler's own)."""
    text = message.removeprefix(f"{TAG}: ").strip()
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    pairs = [w.partition("=") for w in words]
    if not pairs or any(not sep or key not in FIELDS for key, sep, _ in pairs):
        return None
    return {key: value for key, _, value in pairs}


def to_syslog(alert: dict[str, str]) -> None:
    syslog.openlog(TAG, syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(PRIORITIES.get(alert["level"], syslog.LOG_ERR), syslog_line(alert))


# --------------------------------------------------------------------------- mail (local sendmail: queued)


def mail(config: dict[str, Any], alert: dict[str, str]) -> None:
    recipients = config.get("email") or []
    if not recipients:
        return
    level = LEVELS.get(alert["level"], alert["level"].upper())
    where = alert.get("dataset") or alert.get("unit") or "serveur"
    host = f" ({alert['host']})" if alert.get("host") else ""
    # No folding below RFC 5322's 998-character limit: Python's folding of long encoded subjects loses or adds
    # spaces between the encoded words (measured: "en  échec", "échec(s)consécutif(s)").
    message = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    subject = (
        f"[Rempart] {level} - {alert['establishment']} - {alert['server']} - {where}{host} : "
        f"{alert['problem'][:140]} - à faire : {alert['action'][:160]}"
    )
    message["Subject"] = " ".join(subject.split())
    message["From"] = config.get("sender") or f"rempart@{alert['server']}"
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid("rempart")
    message["X-Rempart-Level"] = alert["level"]
    message["X-Rempart-Dataset"] = alert.get("dataset", "")
    message.set_content(
        f"Établissement : {alert['establishment']}\n"
        f"Serveur de sauvegarde : {alert['server']}\n"
        f"Jeu de données : {alert.get('dataset') or '-'}{host}\n"
        f"Niveau : {level}\n\n"
        f"Constat : {alert['problem']}\n\n"
        f"À faire : {alert['action']}\n\n"
        "État complet sur le serveur de sauvegarde : check_rempart --mode backups|offsite|drill|repository|redbutton\n"
        "Journal des alertes : journalctl -t rempart-alert\n"
        f"(message envoyé par Rempart, source {alert.get('source', '?')})\n"
    )
    result = subprocess.run([SENDMAIL, "-t", "-i"], input=message.as_bytes(), capture_output=True, timeout=60,
                            check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(
            f"sendmail exited {result.returncode}: {result.stderr.decode(errors='replace')[-300:]}"
        )


# --------------------------------------------------------------------------- the two entry points


def base_alert(config: dict[str, Any], dataset: str = "") -> dict[str, str]:
    datasets = config.get("datasets") or {}
    return {
        "establishment": str(config.get("establishment", "")),
        "server": str(config.get("host") or socket.gethostname()),
        "dataset": dataset,
        "host": str((datasets.get(dataset) or {}).get("host", "")),
    }


def hook(config: dict[str, Any], subject: str, reasons: str) -> int:
    """The programs' alert command: one syslog line (their sandbox forbids the setuid queue of the MTA)."""
    is_unit = subject.endswith((".service", ".timer"))
    alert = base_alert(config, "" if is_unit else subject)
    unit_dataset = re.search(r"@([a-z][a-z0-9-]*)\.service$", subject)
    if is_unit:
        alert.update(unit=subject, dataset=unit_dataset.group(1) if unit_dataset else "")
        alert["host"] = str(((config.get("datasets") or {}).get(alert["dataset"]) or {}).get("host", ""))
    warning = re.search(r"\blag\b", reasons) is not None
    alert.update(level="warning" if warning else "critical", source="hook", problem=reasons or "alerte")
    alert["action"] = action_for(reasons, alert)
    to_syslog(alert)
    return 0


def watch(config: dict[str, Any], state_path: Path, now: float) -> list[dict[str, str]]:
    """Each dataset's state per mode; the changes since the last run are mailed and sent to syslog."""
    previous = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
    current, sent, failed = dict(previous), [], []
    for mode in check_rempart.MODES:
        names = sorted(config["datasets"])
        for finding in check_rempart.evaluate(config, mode, names, now):
            key = f"{mode}/{finding.dataset}"
            before = previous.get(key, check_rempart.OK)
            if finding.state == before:
                continue
            alert = base_alert(config, "" if mode == "redbutton" else finding.dataset)
            problem = ", ".join(finding.problems) or "retour à la normale"
            alert.update(level=STATE_LEVELS[finding.state], source="watch",
                         problem=f"{check_rempart.MODES[mode].lower()} : {problem}")  # fmt: skip
            alert["action"] = (
                "rien : surveiller les prochaines sauvegardes" if finding.state == check_rempart.OK
                else action_for(problem, alert)
            )  # fmt: skip
            to_syslog(alert)
            try:
                mail(config, alert)
            except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                failed.append(f"{key}: {error}")
                continue  # state kept: the next run tries again
            current[key] = finding.state
            sent.append(alert)
    state_path.write_text(json.dumps(current, sort_keys=True) + "\n", encoding="utf-8")
    if failed:
        raise RuntimeError("mail not queued for " + "; ".join(failed))
    return sent


def journal_entries(cursor: str | None) -> list[dict[str, Any]]:
    args = ["journalctl", "-t", TAG, "-o", "json", "--no-pager", "-q"]
    args += [f"--after-cursor={cursor}"] if cursor else ["--since=-15min"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _text(value: Any) -> str:
    return bytes(value).decode("utf-8", "replace") if isinstance(value, list) else str(value)


def drain(config: dict[str, Any], cursor_path: Path) -> int:
    """Mail every rempart-alert journal entry not yet mailed (the watch's own are mailed already)."""
    cursor = cursor_path.read_text(encoding="utf-8").strip() if cursor_path.exists() else None
    mailed = 0
    for entry in journal_entries(cursor):
        text = _text(entry.get("MESSAGE", ""))
        alert = parse_line(text)
        if alert is None:  # a plain line: the OnFailure= handler's "unit X FAILED"
            unit = re.search(r"unit (\S+)", text)
            alert = base_alert(config)
            alert.update(unit=unit.group(1) if unit else "", problem=text.removeprefix(f"{TAG}: "), source="journal",
                         level="critical" if int(entry.get("PRIORITY", 3)) <= 3 else "warning")  # fmt: skip
            dataset = re.search(r"@([a-z][a-z0-9-]*)\.service", alert["unit"])
            if dataset and dataset.group(1) in (config.get("datasets") or {}):
                alert.update(base_alert(config, dataset.group(1)) | {"unit": alert["unit"]})
            alert["action"] = action_for(alert["problem"], alert)
        if alert.get("source") != "watch":
            mail(config, {**base_alert(config, alert.get("dataset", "")), **alert})
            mailed += 1
        cursor_path.write_text(entry["__CURSOR"] + "\n", encoding="utf-8")
    return mailed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rempart-alert", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--state-dir", type=Path, default=Path("/var/lib/rempart-supervision"))
    parser.add_argument("words", nargs="+", help="run | SUBJECT REASONS")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    if args.words != ["run"]:
        subject, reasons = args.words[0], " ".join(args.words[1:])
        return hook(config, subject, reasons)
    status = 0
    try:
        sent = watch(config, args.state_dir / "states.json", time.time())
        print(f"rempart-alert: {len(sent)} state change(s) mailed")
    except (OSError, RuntimeError, ValueError) as error:
        print(f"rempart-alert: watch FAILED: {error}", file=sys.stderr)
        status = 1
    try:
        print(f"rempart-alert: {drain(config, args.state_dir / 'journal.cursor')} journal alert(s) mailed")
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as error:
        print(f"rempart-alert: journal alerts FAILED: {error}", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
