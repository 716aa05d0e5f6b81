"""Converging the database server does not cut its applications: a PostgreSQL session opened from another host
(the file server stands in for an application server; prepare.yml) before the converge is still running its query
after converge and idempotence (base and backup_client on the DPI host; roles/hardening leaves backup clients alone
by default: establishment.hardening)."""

from __future__ import annotations

SESSION = "lab-application-session"


def test_session_opened_before_the_converge_is_still_connected(proof):
    assert proof.files.run(f"systemctl is-active {SESSION}").stdout.strip() == "active"
    assert proof.files.run(f"systemctl show -p NRestarts --value {SESSION}").stdout.strip() == "0"
    rows = proof.db.run(
        "runuser -u postgres -- psql -tA -F ' ' -c \"SELECT client_addr, state, extract(epoch FROM backend_start)::bigint "
        f"FROM pg_stat_activity WHERE application_name = '{SESSION}'\""
    ).stdout.split()
    assert rows[:2] == ["10.89.66.22", "active"], rows
    # the converge wrote the backup client's configuration after the session began
    written = int(proof.db.run("stat -c %Y /etc/rempart/backup-client.json").stdout)
    assert int(rows[2]) < written
