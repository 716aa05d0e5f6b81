"""Flow 1 (pull) end to end: jobs started by the server's units, snapshots, byte-identical restores."""

from __future__ import annotations

import os
import subprocess

from conftest import DB, FILES, SERVER


def test_repository_listens_on_the_server_loopback_only(lab):
    assert lab.server.service("rempart-rest-server").is_running
    listening = lab.server.run("ss -Hltn").stdout
    assert "127.0.0.1:8443" in listening
    assert "0.0.0.0:8443" not in listening and "*:8443" not in listening
    unit = lab.server.run("systemctl show rempart-rest-server -p ProtectSystem -p User -p ExecStart").stdout
    assert "ProtectSystem=strict" in unit and "User=rempart" in unit
    assert "--append-only" in unit and "--private-repos" in unit and "--tls" in unit


def test_timers_follow_the_rpo(lab):
    assert "00/12" in lab.server.run("systemctl cat rempart-backup-dpi-postgresql.timer").stdout
    timers = lab.server.run("systemctl list-timers --all --no-legend").stdout
    for dataset in ("dpi-postgresql", "partages", "imagerie"):
        for flow in ("backup", "retention", "check"):
            assert f"rempart-{flow}-{dataset}.timer" in timers


def test_jobs_from_the_server_units_store_snapshots(lab):
    for dataset in ("dpi-postgresql", "partages", "imagerie"):
        before = len(lab.snapshots(dataset))
        assert lab.job(dataset) == 0, lab.server.run(f"journalctl -u rempart-backup@{dataset} -n 20").stdout
        assert len(lab.snapshots(dataset)) == before + 1
        assert lab.metric("rempart_backup_last_run_success", dataset) == 1
        assert lab.metric("rempart_backup_last_success_timestamp_seconds", dataset) > 1.7e9
        entry = lab.ledger(dataset)[-1]
        assert entry["event"] == "snapshot" and entry["trusted"] and entry["arrived"] > 0
    # the transient job unit on the client is gone: no connection to the server is left open
    assert "rempart-backup-job" not in lab.files.run("systemctl list-units --no-legend 'rempart-*'").stdout


def _sums(host, command):
    out = host.check_output(command)
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in out.splitlines() if line.strip()}


def test_file_restore_is_byte_identical(lab):
    lab.server.check_output(
        "rm -rf /tmp/restore && rempart-backup-admin restic partages restore latest --target /tmp/restore"
    )
    restored = _sums(
        lab.server, "cd /tmp/restore && find srv -type f -exec sha256sum {} + | sed 's#  srv#  /srv#'"
    )
    original = _sums(lab.files, "find /srv/partages -type f ! -name '*.tmp' -exec sha256sum {} +")
    assert restored == original and len(original) >= 100
    assert not any(path.endswith(".tmp") for path in restored)  # excludes honoured
    # the manifest the job recorded on the server says the same
    ledger = [e for e in lab.ledger("partages") if e.get("manifest")]
    manifest = lab.server.file(ledger[-1]["manifest"]).content_string
    recorded = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in manifest.splitlines()}
    assert recorded == original


def test_postgresql_dump_restores_the_same_rows(lab, tmp_path):
    lab.server.check_output("rempart-backup-admin restic dpi-postgresql dump latest /dpi.sql > /tmp/dpi.sql")
    local = tmp_path / "dpi.sql"
    subprocess.run(["podman", "cp", f"{SERVER}:/tmp/dpi.sql", str(local)], check=True)
    subprocess.run(["podman", "cp", str(local), f"{DB}:/tmp/dpi.sql"], check=True)
    assert os.path.getsize(local) > 100_000
    lab.db.check_output("runuser -u postgres -- dropdb --if-exists dpi_restore")
    lab.db.check_output("runuser -u postgres -- createdb dpi_restore")
    lab.db.check_output("runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d dpi_restore -f /tmp/dpi.sql")
    query = (
        "SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM sejours), "
        "(SELECT md5(string_agg(ipp || nom || naissance, ',' ORDER BY id)) FROM patients), "
        "(SELECT md5(string_agg(service || note || entree, ',' ORDER BY id)) FROM sejours)"
    )
    original = lab.db.check_output(f'runuser -u postgres -- psql -tA -d dpi -c "{query}"')
    restored = lab.db.check_output(f'runuser -u postgres -- psql -tA -d dpi_restore -c "{query}"')
    assert original == restored and original.startswith("5000|20000|")
    # the dump's sha256 recorded by the job matches the restored stream
    entry = [e for e in lab.ledger("dpi-postgresql") if e.get("manifest")][-1]
    digest = lab.server.file(entry["manifest"]).content_string.split()[0]
    assert lab.server.check_output("sha256sum /tmp/dpi.sql").split()[0] == digest


def test_client_cannot_reach_the_server_outside_a_job(lab):
    for port in (8443, 22):
        probe = lab.files.run(
            f"python3 -c 'import socket; socket.create_connection((\"10.89.62.10\", {port}), timeout=3)'"
        )
        if port == 8443:
            assert probe.rc != 0  # the repository is not on the network at all
    # no tunnel outside a job: nothing listens on the client's tunnel ports
    listening = lab.files.run("ss -Hltn").stdout
    assert "127.0.0.1:18101" not in listening and "127.0.0.1:18102" not in listening
    # root on the client holds no key the server accepts
    login = lab.files.run(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5 rempart@10.89.62.10 true"
    )
    assert login.rc != 0
    # and the job key's forced command runs nothing but a declared dataset's job
    assert "command=" in lab.files.file("/var/lib/rempart-backup/.ssh/authorized_keys").content_string
    refused = lab.files.run("sudo -u rempart-backup sudo -n /bin/sh -c id")
    assert refused.rc != 0


def test_secrets_never_appear_in_the_converge_output():
    log = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ansible.log")
    with open(log, encoding="utf-8") as handle:
        text = handle.read()
    assert "backup_server" in text  # the log does hold the converge
    import yaml

    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    with open(f"{scenario}/inventory/group_vars/all/vault.yml", encoding="utf-8") as handle:
        vault = yaml.safe_load(handle)
    for variable in vault.values():
        for value in variable.values():
            assert value not in text, f"a vault value leaked into the converge output ({FILES})"
