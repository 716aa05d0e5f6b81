"""Issue 15, attack 4: a dump that carries commands. As root on the DPI host, pg_dump (then restic) is wrapped so
that the dataset's own job stores a hostile dump; the next drill must execute nothing of it: no file written on the
backup server, no secret in the result, the journal or the metrics, and the dataset FAILED or refused, never
PASSED. A clean dump passes again afterwards."""

from __future__ import annotations

import json
import time

import pytest
from conftest import secrets_of_the_lab

DATASET = "dpi-postgresql"
MARK = "rempart-canary"
PAYLOAD = "/usr/local/share/rempart-canary.sql"
REAL_PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"
SECRET_DUMP_LINK = "/etc/rempart/secrets/partages.json"  # another dataset's secrets, on the backup server
# where a payload that ran would leave its mark: the drill's folders, the metrics folder, root's, /tmp
WRITES = [f"/var/lib/rempart-drill/{MARK}", f"/var/lib/prometheus/node-exporter/{MARK}.prom", f"/root/{MARK}",
          f"/tmp/{MARK}", f"/var/tmp/{MARK}", f"/etc/rempart/{MARK}"]  # fmt: skip
PAYLOADS = {
    # psql meta-commands: a shell, a pipe, a client-side COPY through a program, reading a secret into the dump
    "meta": "".join(
        [
            f"\\! touch {WRITES[0]}-shell; cat /etc/rempart/secrets/*.json > {WRITES[1]}\n",
            f"\\o |touch {WRITES[2]}-pipe\n",
            f"\\copy (SELECT 1) TO PROGRAM 'touch {WRITES[3]}-copy'\n",
            f"\\i {SECRET_DUMP_LINK}\n",
        ]
    ),
    # server-side: a shell through COPY, then files written by a trigger's function (COPY TO file, lo_export)
    "copy-program": f"COPY (SELECT 1) TO PROGRAM 'touch {WRITES[0]}-program; cp /etc/rempart/secrets/* /tmp/';\n",
    "trigger": f"""CREATE FUNCTION public.canary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'COPY (SELECT pg_read_file(''{SECRET_DUMP_LINK}'')) TO ''{WRITES[1]}''';
  PERFORM pg_catalog.lo_export(pg_catalog.lo_from_bytea(0, 'x'), '{WRITES[0]}-lo');
  RETURN NEW;
END $$;
CREATE TABLE public.canary (x int);
CREATE TRIGGER canary AFTER INSERT ON public.canary FOR EACH ROW EXECUTE FUNCTION public.canary();
INSERT INTO public.canary VALUES (1);
""",
}
# restic wrapped: the dump still runs (the job reports its manifest and rows as usual) but the snapshot holds, under
# the dump's name, a symlink to a secret of the backup server (and the real dump beside it, so nothing shrinks)
RESTIC_WRAPPER = """#!/usr/bin/python3
import os, subprocess, sys
args, real = sys.argv[1:], "/usr/bin/restic.canary-real"
if "--stdin-from-command" in args:
    start = args.index("--stdin-from-command")
    with open("/var/tmp/padding.sql", "wb") as padding:
        subprocess.run(args[args.index("--", start) + 1:], stdout=padding, check=True)
    os.execv(real, [real, *args[:start], "/dpi.sql", "/var/tmp/padding.sql"])
os.execv(real, [real, *args])
"""


def drill_now(proof, name: str) -> dict:
    """The drill unit on DATASET alone, as playbooks/drill.yml starts it; its result document."""
    proof.server.check_output(
        f"printf '%s\\n' '{{\"datasets\": [\"{DATASET}\"]}}' > /var/lib/rempart-drill/requests/{name}.json"
    )
    proof.server.run(f"systemctl start rempart-drill@{name}.service")
    result = proof.server.check_output(f"cat /var/lib/rempart-drill/requests/{name}.result").strip()
    return json.loads(proof.server.check_output(f"cat /var/lib/rempart-drill/results/{result}"))


def newest_snapshot(proof) -> str:
    lines = proof.server.check_output(f"cat /var/lib/rempart/ledger/{DATASET}.jsonl").splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == "snapshot"][-1]["id"]


def assert_nothing_ran_nor_leaked(proof, since: str, document: dict) -> None:
    written = proof.server.run(
        f"find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name '{MARK}*' -print 2>/dev/null"
    ).stdout.split()
    assert written == [], written
    journal = proof.server.run(f"journalctl --since '{since}' -o cat --no-pager").stdout
    metrics = proof.server.run("cat /var/lib/prometheus/node-exporter/*.prom").stdout
    leaked = [s for s in secrets_of_the_lab() if s in json.dumps(document) + journal + metrics]
    assert leaked == [], "a secret reached the result, the journal or the metrics"
    assert proof.server.run("ls -A /var/lib/rempart-drill/work").stdout.strip() == ""


@pytest.fixture
def hostile_pg_dump(proof):
    proof.db.check_output(f"mv /usr/bin/pg_dump /usr/bin/pg_dump.canary-saved && printf '%s\\n' '#!/bin/sh' "
                          f"'{REAL_PG_DUMP} \"$@\" || exit $?' 'cat {PAYLOAD}' > /usr/bin/pg_dump "
                          "&& chmod 0755 /usr/bin/pg_dump")  # fmt: skip
    yield
    proof.db.check_output(f"mv /usr/bin/pg_dump.canary-saved /usr/bin/pg_dump && rm -f {PAYLOAD}")


@pytest.mark.parametrize("variant", sorted(PAYLOADS))
def test_a_dump_carrying_commands_runs_nothing_and_fails(proof, hostile_pg_dump, variant):
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 1)) + " UTC"
    proof.db.check_output(f"cat > {PAYLOAD} <<'CANARY'\n{PAYLOADS[variant]}CANARY\nchmod 0644 {PAYLOAD}")
    assert proof.job(DATASET) == 0
    document = drill_now(proof, f"canary-{variant}")
    (dataset,) = document["datasets"]
    assert dataset["snapshot"] == newest_snapshot(proof)  # the hostile dump itself was drilled
    assert dataset["status"] == "failed" and not document["passed"], dataset
    why = " ".join(dataset["errors"])
    assert ("refused: psql meta-command" in why) if variant == "meta" else ("load failed" in why), why
    assert_nothing_ran_nor_leaked(proof, since, document)


def trusted_snapshot(proof) -> str:
    return proof.server.check_output(f"rempart-backup-admin trusted {DATASET}").strip()


def test_a_snapshot_holding_a_symlink_to_a_secret_is_refused_at_admission_and_never_drilled(proof):
    """The wrapped restic stores the dump's name as a symlink to a secret of the backup server (and the real dump
    beside it). Admission refuses the snapshot (its paths are not the job's), holds the dataset and alerts; the
    drill keeps testing the last trusted snapshot and nothing of the refused one is read. (The drill's own
    refusal of a restored symlink is a unit test: tests/test_proof.py.)"""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 1)) + " UTC"
    before = trusted_snapshot(proof)
    proof.db.check_output(f"ln -sfn {SECRET_DUMP_LINK} /dpi.sql && mv /usr/bin/restic /usr/bin/restic.canary-real "
                          f"&& cat > /usr/bin/restic <<'WRAPPER'\n{RESTIC_WRAPPER}WRAPPER\nchmod 0755 /usr/bin/restic")  # fmt: skip
    try:
        assert proof.job(DATASET) != 0
    finally:
        proof.db.check_output("mv /usr/bin/restic.canary-real /usr/bin/restic && rm -f /dpi.sql")
    lines = proof.server.check_output(f"cat /var/lib/rempart/ledger/{DATASET}.jsonl").splitlines()
    quarantine = [e for e in map(json.loads, lines) if e.get("event") == "quarantine"][-1]
    assert quarantine["attack"] and any("snapshot-wrong-paths" in why for why in quarantine["why"]), (
        quarantine
    )
    refused = {f.split("/", 1)[1] for f in quarantine["files"] if f.startswith("snapshots/")}
    assert refused and before not in refused
    assert json.loads(proof.server.check_output("rempart-backup-admin status"))[DATASET]["hold"]
    assert trusted_snapshot(proof) == before
    document = drill_now(proof, "canary-symlink")
    (dataset,) = document["datasets"]
    assert dataset["snapshot"] == before and dataset["snapshot"] not in refused, dataset
    assert_nothing_ran_nor_leaked(proof, since, document)


def test_a_clean_dump_passes_again_once_the_admin_clears_the_hold(proof):
    proof.server.check_output(
        f"rempart-backup-admin clear-hold {DATASET} --by test --reason 'canary investigated'"
    )
    assert proof.job(DATASET) == 0
    document = drill_now(proof, "canary-clean")
    (dataset,) = document["datasets"]
    assert dataset["snapshot"] == newest_snapshot(proof) == trusted_snapshot(proof)
    assert document["passed"] and dataset["rows_checked"] == 25000, dataset
