"""Root on a client, during a job, with the credentials stolen from the job's own process: it can append,
nothing else. Forged-time snapshots never make retention drop a real one; an encryption-like rewrite
triggers the anomaly and the prune hold (BP100-OPS-10 / R21)."""

from __future__ import annotations

import time

from conftest import PORTS

FORGER = r"""#!/bin/sh
# Attacker's wrapper: the real backup, then 50 snapshots dated decades in the past and in the future.
/usr/bin/restic.real "$@"; rc=$?
[ "$1" = backup ] || exit $rc
for batch in 0 1 2 3 4; do
  for i in 0 1 2 3 4 5 6 7 8 9; do
    n=$((batch * 10 + i + 1))
    if [ $((n % 2)) -eq 0 ]; then when="$((2026 + n))-01-01 00:00:00"; else when="$((1990 - n))-06-01 00:00:00"; fi
    echo "forged $n" | /usr/bin/restic.real backup --stdin --stdin-filename "forged-$n" --host mb-files-01 \
      --tag rempart --tag dataset-partages --time "$when" --quiet >/dev/null 2>&1 &
  done
  wait
done
exit $rc
"""


def _stolen_environment(lab, pid: int) -> dict[str, str]:
    raw = lab.files.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def test_root_on_the_client_cannot_delete_overwrite_or_read_others(lab):
    before = lab.ids("imagerie")
    lab.new_random_file("/srv/imagerie/attack-window.dcm", 12)
    lab.start_job("imagerie")
    pid = lab.wait_client_restic()
    env = _stolen_environment(lab, pid)
    # the job runs niced and CPU-capped in a transient sandboxed unit
    props = lab.files.run(
        "systemctl show rempart-backup-job-imagerie -p Nice -p CPUQuotaPerSecUSec -p ProtectSystem"
    ).stdout
    assert "Nice=10" in props and "ProtectSystem=strict" in props and "CPUQuotaPerSecUSec=1s" in props
    assert env["RESTIC_REST_USERNAME"] == "imagerie"
    # The job is frozen while the attacker uses its tunnel, so the attack window does not depend on how long a
    # 12 MiB backup takes on a loaded machine (the job's tunnel closes when the job ends).
    lab.files.check_output(f"kill -STOP {pid}")
    try:
        port = PORTS["imagerie"]
        auth = f"-u imagerie:{env['RESTIC_REST_PASSWORD']} --cacert {env['RESTIC_CACERT']}"
        base = f"https://127.0.0.1:{port}"
        curl = f"curl -s -o /dev/null -w '%{{http_code}}' {auth}"
        victim = sorted(before)[0]
        # HTTP DELETE of a snapshot, of the config, of a key: refused by the append-only server
        assert lab.files.check_output(f"{curl} -X DELETE {base}/imagerie/snapshots/{victim}") == "403"
        assert lab.files.check_output(f"{curl} -X DELETE {base}/imagerie/config") == "403"
        keys = lab.files.check_output(
            f"curl -s {auth} -H 'Accept: application/vnd.x.restic.rest.v2' {base}/imagerie/keys/"
        )
        key = keys.split('"name":"')[1].split('"')[0]
        assert lab.files.check_output(f"{curl} -X DELETE {base}/imagerie/keys/{key}") == "403"
        # overwrite an existing file: refused
        assert lab.files.check_output(f"{curl} -X POST --data-binary garbage {base}/imagerie/config") == "403"
        assert (
            lab.files.check_output(f"{curl} -X POST --data-binary garbage {base}/imagerie/snapshots/{victim}")
            == "403"
        )
        # another client's repository: refused with these credentials (private repositories)
        assert lab.files.check_output(f"{curl} {base}/partages/config") in ("401", "403")
        assert lab.files.check_output(f"{curl} {base}/dpi-postgresql/config") in ("401", "403")
    finally:
        lab.files.check_output(f"kill -CONT {pid}")
    # restic forget with the stolen credentials (exit code not trusted: we count what is left). If the job's
    # tunnel has closed meanwhile, restic would retry for 15 min: the attempt is bounded instead.
    lab.files.run(
        f"timeout 120 env RESTIC_REPOSITORY={env['RESTIC_REPOSITORY']} RESTIC_REST_USERNAME=imagerie "
        f"RESTIC_REST_PASSWORD={env['RESTIC_REST_PASSWORD']} RESTIC_PASSWORD={env['RESTIC_PASSWORD']} "
        f"RESTIC_CACERT={env['RESTIC_CACERT']} restic forget --keep-last 1 --prune --retry-lock 30s"
    )
    status = lab.wait_job("imagerie")
    journal = lab.server.run("journalctl -u rempart-backup@imagerie.service -n 40 --no-pager").stdout
    assert status == 0, journal
    after = lab.ids("imagerie")
    assert before <= after and len(after) == len(before) + 1


def test_encryption_like_rewrite_triggers_anomaly_and_prune_hold(lab):
    # a normal day first: a couple of documents edited
    lab.files.check_output("echo 'mise à jour' >> /srv/partages/services/urgences/doc-1.txt")
    assert lab.job("partages") == 0
    assert lab.metric("rempart_backup_anomaly", "partages") == 0
    # ransomware: most files rewritten with random bytes
    lab.files.check_output(
        "find /srv/partages -type f -name 'doc-*' | awk 'NR % 10 != 0' | "
        'while read f; do head -c 20000 /dev/urandom > "$f"; done'
    )
    count = len(lab.snapshots("partages"))
    assert lab.job("partages") == 2  # the snapshot is stored, the unit fails loudly
    assert len(lab.snapshots("partages")) == count + 1
    hold = lab.server.file("/var/lib/rempart/holds/partages.json")
    assert hold.exists and "mass-change" in hold.content_string and "high-entropy" in hold.content_string
    assert lab.metric("rempart_backup_anomaly", "partages") == 1
    assert lab.metric("rempart_prune_hold", "partages") == 1
    assert "PRUNE HOLD" in lab.server.run("journalctl -u rempart-backup@partages -n 30 --no-pager").stdout
    # retention does nothing while the hold stands
    assert lab.server.run("systemctl start rempart-retention@partages.service").rc == 0
    assert lab.metric("rempart_retention_skipped_hold", "partages") == 1
    assert len(lab.snapshots("partages")) == count + 1
    # explicit admin action clears it
    lab.server.check_output(
        "rempart-backup-admin clear-hold partages --by test --reason 'drill: files restored'"
    )
    assert not lab.server.file("/var/lib/rempart/holds/partages.json").exists
    assert lab.metric("rempart_prune_hold", "partages") == 0


def test_forged_time_snapshots_never_make_retention_drop_a_real_one(lab):
    real = {e["id"] for e in lab.ledger("partages") if e.get("event") == "snapshot" and e["trusted"]}
    assert real
    lab.files.check_output("cp -a /usr/bin/restic /usr/bin/restic.real")
    lab.files.check_output(f"cat > /usr/bin/restic <<'EOF'\n{FORGER}EOF\nchmod 0755 /usr/bin/restic")
    try:
        before = lab.ids("partages")
        started = time.time()
        assert lab.job("partages") == 2  # 51 snapshots in one job: untrusted, anomaly, prune hold
    finally:
        lab.files.check_output("mv /usr/bin/restic.real /usr/bin/restic")
    planted = lab.ids("partages") - before
    assert len(planted) == 51, (
        f"expected 51 new snapshots, got {len(planted)} in {time.time() - started:.0f} s"
    )
    claimed = sorted(s["time"][:4] for s in lab.snapshots("partages") if s["id"] in planted)
    assert claimed[0] < "2000" and claimed[-1] > "2050"
    hold = lab.server.file("/var/lib/rempart/holds/partages.json").content_string
    assert "unexpected-snapshots" in hold and "forged-time" in hold
    # even once an admin lifts the hold, retention judges by arrival and counts trusted snapshots only
    lab.server.check_output("rempart-backup-admin clear-hold partages --by test --reason 'forensics done'")
    assert lab.server.run("systemctl start rempart-retention@partages.service").rc == 0
    left = lab.ids("partages")
    assert real <= left, "retention dropped a real snapshot"
    assert planted <= left  # untrusted snapshots are never forgotten automatically (kept for forensics)
    assert lab.metric("rempart_snapshots_untrusted", "partages") >= 51
    # and the next honest job is trusted again
    assert lab.job("partages") == 0
    assert lab.ledger("partages")[-1]["trusted"]
