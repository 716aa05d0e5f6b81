"""Root on a client, during a job, with the credentials stolen from the job's own process: it can append,
nothing else. Forged-time snapshots never make retention drop a real one; an encryption-like rewrite
triggers the anomaly and the prune hold (BP100-OPS-10 / R21)."""

from __future__ import annotations

import time

import pytest
from conftest import FILES, PORTS

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
    started = time.time()
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
    after = lab.ids("imagerie")
    assert before <= after and len(after) == len(before) + 1
    # what the stolen credentials wrote (prune's rewritten index) is quarantined, never admitted
    if status == 2:
        quarantine = last_quarantine(lab, "imagerie", started)
        assert all(": index-" in why for why in quarantine["why"]), quarantine["why"]
        lab.server.check_output(
            "rempart-backup-admin clear-hold imagerie --by test --reason 'attack contained'"
        )
    else:
        assert status == 0, journal


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


def test_forged_time_snapshots_are_quarantined_and_never_reach_retention(lab):
    real = {e["id"] for e in lab.ledger("partages") if e.get("event") == "snapshot" and e["trusted"]}
    assert real
    lab.files.check_output("cp -a /usr/bin/restic /usr/bin/restic.real")
    lab.files.check_output(f"cat > /usr/bin/restic <<'EOF'\n{FORGER}EOF\nchmod 0755 /usr/bin/restic")
    try:
        before = lab.ids("partages")
        started = time.time()
        assert lab.job("partages") == 2  # 51 snapshots in one job: 50 quarantined, hold, alert
    finally:
        lab.files.check_output("mv /usr/bin/restic.real /usr/bin/restic")
    arrived = lab.ids("partages") - before
    assert len(arrived) == 1, f"{len(arrived)} new snapshots left in the repository"
    quarantine = last_quarantine(lab, "partages", started)
    planted = [f for f in quarantine["files"] if f.startswith("snapshots/")]
    assert len(planted) == 50, f"{len(planted)} quarantined in {time.time() - started:.0f} s"
    assert all(": snapshot-" in why for why in quarantine["why"] if why.startswith("snapshots/"))
    hold = lab.server.file("/var/lib/rempart/holds/partages.json").content_string
    assert "quarantine: snapshot-" in hold
    # the job's own snapshot is admitted, not trusted (its job carried an attack); retention never counts it
    entry = [e for e in lab.ledger("partages") if e.get("event") == "snapshot"][-1]
    assert entry["id"] in arrived and entry["admitted"] and not entry["trusted"]
    lab.server.check_output("rempart-backup-admin clear-hold partages --by test --reason 'forensics done'")
    assert lab.server.run("systemctl start rempart-retention@partages.service").rc == 0
    assert real <= lab.ids("partages"), "retention dropped a real snapshot"
    # and the next honest job is trusted again
    assert lab.job("partages") == 0
    assert [e for e in lab.ledger("partages") if e.get("event") == "snapshot"][-1]["trusted"]


# --------------------------------------------------------------------------- issue 15: attacks through the job

ATTACK = r"""#!/usr/bin/python3
# Attacker's tool on a root-compromised client, run by its restic wrapper inside the job, with the job's own
# credentials (environment): it writes into its own append-only repository what restic never would.
import base64, hashlib, json, os, ssl, subprocess, sys, urllib.request

base = os.environ["RESTIC_REPOSITORY"].removeprefix("rest:").rstrip("/")
context = ssl.create_default_context(cafile=os.environ["RESTIC_CACERT"])
user = f"{os.environ['RESTIC_REST_USERNAME']}:{os.environ['RESTIC_REST_PASSWORD']}"
auth = {"Authorization": "Basic " + base64.b64encode(user.encode()).decode()}


def request(method, path, data=None, headers=None):
    sent = urllib.request.Request(f"{base}/{path}", data=data, method=method, headers={**auth, **(headers or {})})
    with urllib.request.urlopen(sent, context=context, timeout=30) as answer:
        return answer.status, answer.read()


def restic(*args, data=None):
    try:
        subprocess.run(["/usr/bin/restic.real", *args], input=data, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        pass


attack, host = sys.argv[1], sys.argv[2]
if attack == "garbage-index":
    data = os.urandom(300)
    print(request("POST", f"index/{hashlib.sha256(data).hexdigest()}", data)[0], file=sys.stderr)
elif attack == "malformed-key":  # a name that sorts before the real key's: restic's key search meets it first
    listing = request("GET", "keys/", headers={"Accept": "application/vnd.x.restic.rest.v2"})[1]
    first, n = min(k["name"] for k in json.loads(listing)), 0
    while hashlib.sha256(json.dumps({"not": "a key", "n": n}).encode()).hexdigest() >= first:
        n += 1
    data = json.dumps({"not": "a key", "n": n}).encode()
    print(request("POST", f"keys/{hashlib.sha256(data).hexdigest()}", data)[0], file=sys.stderr)
elif attack == "planted-2099":
    restic("backup", "--stdin", "--stdin-filename", "planted", "--host", host, "--tag", "rempart",
           "--time", "2099-01-01 00:00:00", data=b"planted\n")
elif attack == "sub-repository":
    print(request("POST", "x/?create=true", b"")[0], file=sys.stderr)
elif attack == "forged-index":  # a well-formed, encrypted index listing every pack and blob again
    restic("repair", "index")
"""
WRAPPER = """#!/bin/sh
/usr/bin/restic.real "$@"; rc=$?
[ "$1" = backup ] && python3 /usr/local/sbin/rempart-attack {attack} {host} >&2
exit $rc
"""
ATTACKS = {  # attack -> what admission names it
    "garbage-index": "index-unreadable",
    "malformed-key": "foreign-key",
    "planted-2099": "snapshot-forged-time",
    "sub-repository": "unexpected-entry",
    "forged-index": "index-",
}


def last_quarantine(lab, dataset: str, since: float) -> dict:
    entries = [e for e in lab.ledger(dataset) if e.get("event") == "quarantine" and e["at"] >= since]
    assert entries, f"no quarantine entry in the ledger of {dataset}"
    return entries[-1]


def trusted(lab, dataset: str) -> str:
    return lab.server.check_output(f"rempart-backup-admin trusted {dataset}").strip()


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_through_the_clients_own_job_is_quarantined_then_a_clean_job_succeeds(lab, attack):
    lab.files.check_output(
        f"cat > /usr/local/sbin/rempart-attack <<'EOF'\n{ATTACK}EOF\nchmod 0755 /usr/local/sbin/rempart-attack"
    )
    good = trusted(lab, "partages")
    lab.files.check_output(f"echo '{attack}' >> /srv/partages/services/urgences/doc-2.txt")
    lab.files.check_output("cp -a /usr/bin/restic /usr/bin/restic.real")
    wrapper = WRAPPER.format(attack=attack, host=FILES)
    lab.files.check_output(f"cat > /usr/bin/restic <<'EOF'\n{wrapper}EOF\nchmod 0755 /usr/bin/restic")
    started = time.time()
    try:
        status = lab.job("partages")
    finally:
        lab.files.check_output("mv /usr/bin/restic.real /usr/bin/restic")
    journal = lab.server.run(f"journalctl --no-pager --since @{int(started) - 1}").stdout
    assert status == 2, journal[-3000:]
    quarantine = last_quarantine(lab, "partages", started)
    assert any(f": {ATTACKS[attack]}" in why for why in quarantine["why"]), quarantine["why"]
    for moved in quarantine["files"]:  # moved out of the repository, kept for forensics
        assert lab.server.file(f"{quarantine['folder']}/{moved}").exists
        assert not lab.server.file(f"/srv/rempart/repos/partages/{moved}").exists
    assert "QUARANTINE on partages" in journal and "rempart-alert" in journal  # journal line + alert hook
    assert "quarantine: " in lab.server.file("/var/lib/rempart/holds/partages.json").content_string
    assert lab.metric("rempart_prune_hold", "partages") == 1
    assert trusted(lab, "partages") == good  # the attack job's snapshot is never the one restores use
    check = lab.server.run("rempart-backup-admin restic partages check --no-lock")
    assert check.rc == 0, check.stdout + check.stderr  # the repository is sound for every reader
    lab.server.check_output(
        f"rempart-backup-admin clear-hold partages --by test --reason '{attack} contained'"
    )
    assert lab.job("partages") == 0, lab.server.run("journalctl -u rempart-backup@partages -n 30").stdout
    assert trusted(lab, "partages") not in (good, "")


def test_summary_with_rows_as_a_list_is_refused_loudly_and_the_next_job_succeeds(lab):
    program = lab.db.check_output("grep -rl 'hash-pipe' /usr/local/lib/rempart | head -1").strip()
    assert lab.job("dpi-postgresql") in (0, 2)
    lab.server.run("rempart-backup-admin clear-hold dpi-postgresql --by test --reason baseline")
    good = trusted(lab, "dpi-postgresql")
    lab.db.check_output(
        f'cp -a {program} /root/client.bak && sed -i \'s/"rows": dumped.get("rows")/"rows": [1, 2]/\' {program}'
    )
    started = time.time()
    try:
        assert '"rows": [1, 2]' in lab.db.file(program).content_string
        status = lab.job("dpi-postgresql")
    finally:
        lab.db.check_output(f"cp -a /root/client.bak {program}")
    assert status == 2  # no traceback: the snapshot is stored, untrusted, the dataset held
    entry = [e for e in lab.ledger("dpi-postgresql") if e.get("event") == "snapshot"][-1]
    assert not entry["trusted"] and any("rows is a list" in p for p in entry["problems"])
    assert entry["server_rows"] and sum(entry["server_rows"].values()) > 0  # counted by the server itself
    assert lab.metric("rempart_backup_last_run_success", "dpi-postgresql") == 1
    assert "rempart-alert" in lab.server.run(f"journalctl --no-pager --since @{int(started) - 1}").stdout
    assert trusted(lab, "dpi-postgresql") == good
    lab.server.check_output(
        "rempart-backup-admin clear-hold dpi-postgresql --by test --reason 'client repaired'"
    )
    assert lab.job("dpi-postgresql") == 0
    assert trusted(lab, "dpi-postgresql") != good


def test_one_file_dataset_rewritten_whole_is_an_anomaly_and_restores_from_before(lab):
    original = lab.files.check_output("sha256sum /srv/classeur/classeur.enc").split()[0]
    assert lab.job("classeur-degrade") == 0
    good = trusted(lab, "classeur-degrade")
    lab.files.check_output("cp -a /srv/classeur/classeur.enc /root/classeur.orig")
    lab.files.check_output("head -c 200000 /dev/urandom > /srv/classeur/classeur.enc")  # changed_ratio 1.0
    assert lab.job("classeur-degrade") == 2
    entry = [e for e in lab.ledger("classeur-degrade") if e.get("event") == "snapshot"][-1]
    assert any(r.startswith("small-dataset-rewritten") for r in entry["anomaly"]), entry["anomaly"]
    assert trusted(lab, "classeur-degrade") == good
    lab.server.check_output(
        "rm -rf /tmp/ra-classeur && rempart-backup-admin restore-all /tmp/ra-classeur classeur-degrade"
    )
    assert (
        lab.server.check_output("sha256sum /tmp/ra-classeur/srv/classeur/classeur.enc").split()[0] == original
    )
    lab.files.check_output("cp -a /root/classeur.orig /srv/classeur/classeur.enc")  # put back from the backup
    lab.server.check_output(
        "rempart-backup-admin clear-hold classeur-degrade --by test --reason 'binder restored'"
    )
    assert lab.job("classeur-degrade") == 0


def test_restore_all_restores_the_last_trusted_state_with_nothing_lost(lab):
    lab.server.check_output(
        "rm -rf /tmp/ra && rempart-backup-admin restore-all /tmp/ra partages dpi-postgresql"
    )
    # files: every file of the trusted snapshot's manifest, byte for byte
    entry = next(
        e for e in lab.ledger("partages") if e.get("id") == trusted(lab, "partages") and e.get("manifest")
    )
    manifest = lab.server.file(entry["manifest"]).content_string
    expected = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in manifest.splitlines()}
    out = lab.server.check_output(
        "cd /tmp/ra && find srv -type f -exec sha256sum {} + | sed 's#  srv#  /srv#'"
    )
    restored = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in out.splitlines()}
    assert restored == expected and len(expected) >= 100
    assert "forged-" not in out and "planted" not in out
    # database: the rows the server counted in the trusted dump, table by table
    entry = next(e for e in lab.ledger("dpi-postgresql") if e.get("id") == trusted(lab, "dpi-postgresql"))
    counts = lab.db.check_output(
        "runuser -u postgres -- psql -qtA -d dpi -c \"SELECT (SELECT count(*) FROM patients) || ',' || "
        '(SELECT count(*) FROM sejours)"'
    )
    assert f"{entry['server_rows']['public.patients']},{entry['server_rows']['public.sejours']}" == counts
    assert lab.server.file("/tmp/ra/dpi.sql").size > 100_000
