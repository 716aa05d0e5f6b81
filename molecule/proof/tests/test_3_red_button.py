"""Red button (BP100-OPS-13): isolated, no client reaches the backup server and a job attempt fails; released,
the jobs resume. Recorded as rempart.reports.results.RedButton."""

from __future__ import annotations

from conftest import SERVER_ADDRESS

from rempart.reports.results import RedButton


def _reach(host, port: int) -> bool:
    return host.run(f"timeout 4 bash -c '</dev/tcp/{SERVER_ADDRESS}/{port}'").rc == 0


def test_isolate_then_release(proof):
    assert _reach(proof.files, 22)  # before: the server's sshd answers the client
    bad = proof.playbook("red-button.yml", "-e", "red_button_state=isolate")
    assert bad.returncode != 0 and "red_button_reason is required" in bad.stdout
    isolate = proof.playbook(
        "red-button.yml", "-e", "red_button_state=isolate", "-e", "red_button_reason=exercice"
    )
    assert isolate.returncode == 0, isolate.stdout[-3000:]
    try:
        assert not _reach(proof.files, 22) and not _reach(proof.db, 22)
        assert proof.server.run("systemctl start rempart-backup@partages.service").rc != 0
        assert not proof.server.service("rempart-rest-server").is_running
        assert proof.server.run("curl -sk https://127.0.0.1:8443/").rc != 0
        assert all(
            ":!" in line
            for line in proof.server.file("/etc/rempart/rest-server.htpasswd").content_string.split()
        )
        # survives a restart of the boot unit path: the ruleset is loaded by rempart-red-button.service
        assert proof.server.service("rempart-red-button").is_enabled
    finally:
        release = proof.playbook("red-button.yml", "-e", "red_button_state=release")
    assert release.returncode == 0, release.stdout[-3000:]
    assert _reach(proof.files, 22)
    assert proof.server.service("rempart-backup-partages.timer").is_running
    assert proof.job("partages") == 0  # and the timers run again
    record = RedButton.model_validate(proof.last("red-button"))
    assert record.isolated_client_refused and record.jobs_resumed
