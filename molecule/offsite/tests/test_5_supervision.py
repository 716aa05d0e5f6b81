"""Alerts (issue 16) and the repository quota (issue 15 item 5) on the scenario's converge.

Each condition - a failed job (imagerie, its client's sshd stopped), a backup older than its RPO, an offsite lag, a
stale drill, a quota near its limit (partages; old timestamps and values injected in the metrics: containers share
the host's clock), then a prune hold - gives: check_rempart WARNING/CRITICAL naming the dataset, the rule firing in
a Prometheus on the host that scrapes the server's node exporter (the declared supervision address), and a mail in
the SMTP sink standing for the hospital's relay. Recovery returns every mode to OK and mails RÉTABLI. Mail queued
while the relay is down is delivered after it is back, without help. The quota refuses a job at the quota and cuts
a job that passes it (the overshoot is measured and printed)."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FILES, METRICS, wait_until

ROOT = Path(__file__).resolve().parents[3]
SERVER_ADDRESS, FILES_ADDRESS = "10.89.65.10", "10.89.65.22"
SINK_DIR, SINK_UNIT = "/var/spool/lab-smtp-sink", "lab-smtp-sink"
CHECK = "/usr/local/lib/nagios/plugins/check_rempart"
ALERTS_UNIT = "rempart-alerts.service"
CONFIG = "/etc/rempart/supervision.json"
HOUR = 3600


# --------------------------------------------------------------------------- fixtures: sink, Prometheus


def start_sink(lab: Any) -> None:
    lab.files.run(f"systemctl reset-failed {SINK_UNIT}")
    lab.files.check_output(
        f"systemd-run --unit={SINK_UNIT} /usr/bin/python3 -W ignore /usr/local/bin/lab-smtp-sink.py 0.0.0.0 2525 {SINK_DIR}"
    )
    wait_until(lambda: lab.files.run("ss -ltn 'sport = :2525' | grep -q LISTEN").rc == 0)


def stop_sink(lab: Any) -> None:
    lab.files.run(f"systemctl stop {SINK_UNIT}")


def sink_mails(lab: Any) -> list[email.message.EmailMessage]:
    names = lab.files.run(f"ls {SINK_DIR}").stdout.split()
    found = []
    for name in sorted(n for n in names if n.endswith(".eml")):
        raw = subprocess.run(
            ["podman", "exec", FILES, "cat", f"{SINK_DIR}/{name}"], capture_output=True, check=True
        ).stdout
        found.append(email.message_from_bytes(raw, policy=email.policy.default))
    return found  # type: ignore[return-value]


def clear_sink(lab: Any) -> None:
    lab.files.run(f"rm -f {SINK_DIR}/*.eml")


def queue_length(lab: Any) -> int:
    return int(lab.server.check_output("ls /var/spool/nullmailer/queue | wc -l"))


def flush_queue(lab: Any) -> None:
    """Deliver what nullmailer queued (e.g. the converge's first alerts, sent while no relay listened)."""
    if queue_length(lab):
        lab.server.check_output("systemctl restart nullmailer.service")  # it sends at start, no pause
        wait_until(lambda: queue_length(lab) == 0, timeout=90)


@pytest.fixture(scope="module")
def supervision(lab: Any) -> Iterator[Any]:
    subprocess.run(
        [
            "podman",
            "cp",
            str(Path(__file__).with_name("smtp_sink.py")),
            f"{FILES}:/usr/local/bin/lab-smtp-sink.py",
        ],
        check=True,
    )
    start_sink(lab)
    flush_queue(lab)
    yield lab
    stop_sink(lab)


@pytest.fixture(scope="module")
def prometheus() -> Iterator[str]:
    """A Prometheus on the host (Debian's, as promtool) scraping the server's node exporter every second, with the
    role's rules minus their `for:` (the durations are promtool-tested in tests/prometheus)."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing on the host: make host (.ci/apt-packages.txt)"
    work = Path(tempfile.mkdtemp(prefix="rempart-prometheus-"))
    rules = yaml.safe_load((ROOT / "roles/supervision/files/prometheus/rempart-rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    (work / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    (work / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(work / "rules.yml")],
                "scrape_configs": [
                    {"job_name": "rempart", "static_configs": [{"targets": [f"{SERVER_ADDRESS}:9100"]}]}
                ],
            }
        )
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(work / "prometheus.log", "w"),  # noqa: SIM115
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _get(f"{url}/-/ready") is not None, timeout=60)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
    except OSError:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def firing(url: str) -> set[tuple[str, str, str]]:
    data = _get(f"{url}/api/v1/alerts") or {"data": {"alerts": []}}
    return {
        (a["labels"]["alertname"], a["labels"].get("dataset", ""), a["labels"]["severity"])
        for a in data["data"]["alerts"]
        if a["state"] == "firing"
    }


def wait_firing(
    url: str, wanted: set[tuple[str, str, str]], timeout: float = 60
) -> set[tuple[str, str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        found = firing(url)
        if wanted <= found or time.monotonic() > deadline:
            return found
        time.sleep(1)


# --------------------------------------------------------------------------- helpers on the server


def check(lab: Any, mode: str) -> tuple[int, str]:
    result = lab.server.run(f"runuser -u nobody -- {CHECK} --mode {mode}")  # as NRPE would: unprivileged
    return result.rc, result.stdout.strip()


def alerts_run(lab: Any) -> None:
    lab.server.run(f"systemctl reset-failed {ALERTS_UNIT}")
    assert lab.server.run(f"systemctl start {ALERTS_UNIT}").rc == 0, lab.server.run(
        f"journalctl -u {ALERTS_UNIT} -n 20 --no-pager"
    ).stdout


def set_metric(lab: Any, stem: str, metric: str, value: float) -> None:
    """Replace one sample's value in a textfile the programs wrote (as a later run would)."""
    path = f"{METRICS}/{stem}.prom"
    lab.server.check_output(f"sed -i -E 's/^({metric}(\\{{[^}}]*\\}})?) .*/\\1 {value:.0f}/' {path}")


def write_drill(lab: Any, finished: float) -> None:
    lines = [
        f"rempart_drill_last_run_timestamp_seconds {finished:.0f}",
        "rempart_drill_success 1",
        'rempart_drill_dataset_success{dataset="partages"} 1',
        'rempart_drill_dataset_success{dataset="imagerie"} 1',
    ]
    lab.server.check_output(
        f"printf '%s\\n' {' '.join(repr(x) for x in lines)} > {METRICS}/rempart_drill.prom"
    )


def supervision_config(lab: Any) -> dict[str, Any]:
    return json.loads(lab.server.check_output(f"cat {CONFIG}"))


def put_config(lab: Any, config: dict[str, Any]) -> None:
    text = json.dumps(config, indent=4, ensure_ascii=False)  # as the role writes it (to_nice_json)
    lab.server.check_output(f"cat > {CONFIG} <<'EOF'\n{text}\nEOF")


def mail_subjects(lab: Any) -> list[str]:
    return [str(m["Subject"]) for m in sink_mails(lab)]


# --------------------------------------------------------------------------- tests (in order)


def test_exporter_serves_the_supervision_address_only(supervision, prometheus):
    lab = supervision
    listening = lab.server.check_output("ss -ltnH 'sport = :9100'")
    assert [line.split()[3] for line in listening.splitlines()] == [f"{SERVER_ADDRESS}:9100"], listening
    metrics = _get(f"http://{SERVER_ADDRESS}:9100/metrics")
    assert (
        metrics and b"rempart_alert_backup_age_warning_seconds" in metrics
    )  # from the host (supervision address)
    refused = lab.files.run(
        f"python3 -c \"import urllib.request; urllib.request.urlopen('http://{SERVER_ADDRESS}:9100/metrics', timeout=3)\""
    )
    assert refused.rc != 0  # from a client: dropped
    table = lab.server.check_output("nft list table inet rempart_supervision")
    assert "10.89.65.1" in table and "drop" in table


def test_healthy_baseline_is_ok(supervision, prometheus):
    lab = supervision
    for dataset in ("partages", "imagerie"):
        assert lab.backup(dataset) == 0
        assert lab.run_unit(f"rempart-check@{dataset}.service") == 0
    assert lab.copy() == 0
    write_drill(lab, time.time())
    for mode in ("backups", "offsite", "drill", "repository", "offline", "redbutton"):
        code, line = check(lab, mode)
        assert code == 0, line
    alerts_run(lab)  # records the healthy states (and mails what changed since the converge)
    flush_queue(lab)
    clear_sink(lab)
    time.sleep(5)  # a few scrapes and evaluations of the healthy metrics
    assert firing(prometheus) == set()


def test_each_condition_warns_fires_and_mails(supervision, prometheus, tmp_path):
    lab = supervision
    now = time.time()
    original = supervision_config(lab)
    # a failed job (imagerie): its client's sshd is down during the job
    lab.files.check_output("systemctl stop ssh.service")
    try:
        assert lab.backup("imagerie") != 0
    finally:
        lab.files.check_output("systemctl start ssh.service")
    # partages: newest success 30 h ago (RPO 24 h), offsite lag 27 h, drill 10 days ago, repository at 85 % of its quota
    set_metric(
        lab, "rempart_backup_partages", "rempart_backup_last_success_timestamp_seconds", now - 30 * HOUR
    )
    set_metric(lab, "rempart_offsite_partages", "rempart_offsite_lag_seconds", 27 * HOUR)
    write_drill(lab, now - 10 * 86400)
    used = int(re.search(r"rempart_repository_used_bytes\{[^}]*\} (\d+)",
                         lab.server.check_output(f"cat {METRICS}/rempart_quota_partages.prom")).group(1))  # fmt: skip
    config = json.loads(json.dumps(original))
    config["datasets"]["partages"]["quota_bytes"] = int(used / 0.85)
    put_config(lab, config)
    try:
        lab.server.check_output("rempart-quota usage partages")
        expected = {
            "backups": (
                2,
                ["imagerie : dernier job en échec", "partages : dernière sauvegarde réussie il y a 30.0 h"],
            ),
            "offsite": (1, ["partages : copie externalisée en retard de 27.0 h"]),
            "drill": (1, ["partages : dernier exercice de restauration il y a 10.0 j"]),
            "repository": (1, ["partages : dépôt à 85 % de son quota"]),
        }
        for mode, (code, words) in expected.items():
            found, line = check(lab, mode)
            print(line)
            assert found == code, line
            for word in words:
                assert word in line, line
        wanted = {
            ("RempartBackupJobFailed", "imagerie", "critical"),
            ("RempartBackupOlderThanRPO", "partages", "warning"),
            ("RempartOffsiteLag", "partages", "warning"),
            ("RempartDrillStale", "", "warning"),
            ("RempartQuotaNear", "partages", "warning"),
        }
        found = wait_firing(prometheus, wanted)
        assert wanted <= found, found
        alerts_run(lab)
        wait_until(lambda: len(sink_mails(lab)) >= 7, timeout=60)  # 6 state changes + the failed job's hook
        subjects = mail_subjects(lab)
        print("\n".join(subjects))
        prefix = "[Rempart] {} - Centre hospitalier du Lab (fictif) - mo-backup-01 - {} (mo-files-01) : {}"
        for level, dataset, words in (
            ("CRITIQUE", "imagerie", "sauvegardes : dernier job en échec"),
            ("AVERTISSEMENT", "partages", "sauvegardes : dernière sauvegarde réussie il y a 30.0 h"),
            ("AVERTISSEMENT", "partages", "externalisation : copie externalisée en retard de 27.0 h"),
            (
                "AVERTISSEMENT",
                "partages",
                "exercices de restauration : dernier exercice de restauration il y a 10.0 j",
            ),
            (
                "AVERTISSEMENT",
                "imagerie",
                "exercices de restauration : dernier exercice de restauration il y a 10.0 j",
            ),
            ("AVERTISSEMENT", "partages", "dépôts : dépôt à 85 % de son quota"),
        ):
            assert any(s.startswith(prefix.format(level, dataset, words)) and " - à faire : " in s for s in subjects), (
                level, dataset, words,
            )  # fmt: skip
        # the hook of the failed job (backup_server_alert_command), mailed from the journal
        assert any(s.startswith(prefix.format("CRITIQUE", "imagerie", "job-failed")) for s in subjects), (
            subjects
        )
        journal = lab.server.check_output("journalctl -t rempart-alert --no-pager -o cat")
        assert "source=hook" in journal and "source=watch" in journal and "dataset=partages" in journal
    finally:
        put_config(lab, original)
    # recovery: a job, a copy, a drill, the quota as declared
    clear_sink(lab)
    assert lab.backup("partages") == 0 and lab.backup("imagerie") == 0
    assert lab.copy() == 0
    write_drill(lab, time.time())
    lab.server.check_output("rempart-quota usage")
    for mode in ("backups", "offsite", "drill", "repository"):
        code, line = check(lab, mode)
        assert code == 0, line
    alerts_run(lab)
    recovered_wanted = {
        ("imagerie", "sauvegardes"), ("partages", "sauvegardes"), ("partages", "externalisation"),
        ("partages", "exercices de restauration"), ("imagerie", "exercices de restauration"), ("partages", "dépôts"),
    }  # fmt: skip

    def recovered() -> set[tuple[str, str]]:
        found = set()
        for subject in mail_subjects(lab):
            match = re.match(
                r"\[Rempart\] RÉTABLI - .* - mo-backup-01 - (\S+) \(mo-files-01\) : ([^:]+?) :", subject
            )
            if match:
                found.add((match.group(1), match.group(2)))
        return found

    wait_until(lambda: recovered_wanted <= recovered(), timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and {a[0] for a in firing(prometheus)} & {a[0] for a in wanted}:
        time.sleep(1)
    assert not {a[0] for a in firing(prometheus)} & {a[0] for a in wanted}, firing(prometheus)


def test_hold_mail_is_queued_while_the_relay_is_down_then_delivered(supervision, prometheus):
    lab = supervision
    clear_sink(lab)
    stop_sink(lab)
    lab.server.check_output("rempart-backup-admin hold partages --reason 'molecule: alerte'")
    try:
        code, line = check(lab, "backups")
        assert code == 2 and "partages : rétention suspendue (hold)" in line, line
        assert ("RempartPruneHold", "partages", "critical") in wait_firing(
            prometheus, {("RempartPruneHold", "partages", "critical")}
        )
        alerts_run(lab)
        assert queue_length(lab) >= 1  # the relay is down: queued, not lost
        time.sleep(5)
        assert sink_mails(lab) == []
        start_sink(lab)
        started = time.monotonic()
        wait_until(lambda: any("rétention suspendue (hold)" in s for s in mail_subjects(lab)), timeout=150)
        print(f"queued alert delivered {time.monotonic() - started:.0f} s after the relay came back")
        wait_until(lambda: queue_length(lab) == 0, timeout=60)
    finally:
        lab.server.run("rempart-backup-admin clear-hold partages --by molecule --reason 'test over'")
        if lab.files.run(f"systemctl is-active {SINK_UNIT}").rc != 0:
            start_sink(lab)
    assert check(lab, "backups")[0] == 0
    alerts_run(lab)
    wait_until(lambda: any(s.startswith("[Rempart] RÉTABLI") for s in mail_subjects(lab)), timeout=60)


def test_quota_refuses_a_full_repository_and_cuts_a_job_that_passes_it(supervision):
    lab = supervision
    original = supervision_config(lab)

    def size() -> int:  # as the quota program measures it (sum of the files' sizes)
        lab.server.check_output("rempart-quota usage imagerie")
        text = lab.server.check_output(f"cat {METRICS}/rempart_quota_imagerie.prom")
        return int(re.search(r"rempart_repository_used_bytes\{[^}]*\} (\d+)", text).group(1))

    before = size()
    try:
        # refused: the repository is already at its quota
        config = json.loads(json.dumps(original))
        config["datasets"]["imagerie"]["quota_bytes"] = before
        put_config(lab, config)
        snapshots = lab.local_snapshot_ids("imagerie")
        lab.backup("imagerie")
        result = lab.server.run(
            "systemctl show -p Result --value rempart-backup@imagerie.service"
        ).stdout.strip()
        assert result == "exit-code", result  # ExecStartPre (the gate) failed: nothing was pulled
        assert lab.local_snapshot_ids("imagerie") == snapshots
        assert "job refusé" in lab.server.check_output("journalctl -t rempart-alert -n 5 --no-pager -o cat")
        code, line = check(lab, "repository")
        assert (
            code == 2 and "imagerie : " in line and "dernier job refusé ou coupé au quota du dépôt" in line
        ), line
        # cut: 200 MiB of new incompressible data against 8 MiB of room
        quota = before + 8 * 2**20
        config["datasets"]["imagerie"]["quota_bytes"] = quota
        put_config(lab, config)
        lab.files.check_output("head -c 209715200 /dev/urandom > /srv/imagerie/quota-test.dcm")
        started = time.monotonic()
        lab.backup("imagerie")
        elapsed = time.monotonic() - started
        after = size()
        assert lab.local_snapshot_ids("imagerie") == snapshots, "the job was cut before its snapshot"
        assert "job coupé" in lab.server.check_output("journalctl -t rempart-alert -n 5 --no-pager -o cat")
        code, line = check(lab, "repository")
        assert (
            code == 2 and "imagerie : " in line and "dernier job refusé ou coupé au quota du dépôt" in line
        ), line
        overshoot = after - quota
        print(
            f"quota cut: job stopped after {elapsed:.1f} s, repository {after / 2**20:.1f} MiB for a quota of "
            f"{quota / 2**20:.1f} MiB (overshoot {overshoot / 2**20:.1f} MiB, watch interval 1 s)"
        )
        assert after < before + 200 * 2**20 * 0.9, "most of the 200 MiB never reached the repository"
    finally:
        put_config(lab, original)
        lab.files.run("rm -f /srv/imagerie/quota-test.dcm")
    assert lab.backup("imagerie") == 0  # no quota declared for imagerie: jobs resume
    lab.server.check_output("rempart-quota usage")
    assert check(lab, "repository")[0] == 0


def test_quota_usage_unit_runs_in_its_sandbox(lab):
    """The timer's unit (not the command run as root above) measures the repositories as the backup user, in the
    common sandbox (issue 20 item 4)."""
    lab.server.run("systemctl reset-failed rempart-quota-usage.service")
    assert lab.server.run("systemctl start rempart-quota-usage.service").rc == 0
    assert (
        lab.server.check_output("systemctl show -p Result --value rempart-quota-usage.service") == "success"
    )
