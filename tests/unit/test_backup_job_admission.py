"""The job with admission wired in (issue 15, items 1, 2, 4, 7), on a real restic repository: a client that
attacks through its own job is quarantined, held and alerted; the next clean job is trusted; restore-all and
`trusted` use the newest trusted snapshot, never `latest`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
from rempart_backup_server import __main__ as cli
from rempart_backup_server import config as server_config
from rempart_backup_server import job as server_job

HOST = socket.gethostname()
RESTIC = os.environ.get("REMPART_TEST_RESTIC") or "/usr/bin/restic"
ANOMALY = {"samples": 4, "entropy_bits": 7.5, "history": 10, "changed_ratio": 0.5, "removed_ratio": 0.5,
           "min_files": 10, "entropy_share": 0.5, "volume_factor": 5, "volume_floor_bytes": 1 << 20,
           "time_skew_seconds": 300, "rows_changed_ratio": 0.5, "rows_changed_min_rows": 20}  # fmt: skip


@pytest.fixture
def server(tmp_path, monkeypatch):
    source = tmp_path / "src"
    source.mkdir()
    config = {
        "user": "root",
        "datasets": {
            "dpi": {"host": HOST, "kind": "postgresql", "database": "dpi"},
            "classeur": {"host": HOST, "kind": "files", "paths": [str(source)]},
        },
        "repos_dir": str(tmp_path / "repos"),
        "secrets_dir": str(tmp_path / "secrets"),
        "state_dir": str(tmp_path / "state"),
        "metrics_dir": str(tmp_path / "metrics"),
        "restic": RESTIC,
        "anomaly": ANOMALY,
        "alert_command": f"/bin/sh -c 'echo \"$0 $1\" >> {tmp_path}/alerts'",
        "ca_cert": str(tmp_path / "ca.pem"),
    }
    (tmp_path / "ca.pem").write_text("CA")
    (tmp_path / "secrets").mkdir()
    for name in config["datasets"]:
        (tmp_path / "secrets" / f"{name}.json").write_text('{"repository_password": "pw-0123456789"}')
    monkeypatch.setattr(cli, "load_config", lambda: config)
    monkeypatch.setattr(
        server_job, "secrets_of", lambda c, n: {"repository_password": "x", "http_password": "y"}
    )
    assert cli.main(["init", "dpi", "classeur"]) == 0  # the server's keys join the allowlist
    return config, tmp_path


def client(config: dict, name: str, *args: str, data: str | None = None) -> None:
    env = server_config.restic_env(config, name)
    subprocess.run([RESTIC, *args], input=data, text=True, env=env, check=True, capture_output=True)


def dump_of(rows: list[str]) -> str:
    return (
        "SET x = 0;\nCOPY public.patients (id, nom) FROM stdin;\n" + "".join(f"{r}\n" for r in rows) + "\\.\n"
    )


def job(config: dict, name: str, monkeypatch, action, summary: dict | None = None) -> int:
    def run_ssh(config, name, credentials):
        manifest = action() or []
        return 0, manifest, "", {"rc": 0, **(summary or {})}

    monkeypatch.setattr(server_job, "run_ssh", run_ssh)
    return cli.main(["job", name])


def ledger(tmp_path: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / f"state/ledger/{name}.jsonl").read_text().splitlines()]


def arrival(tmp_path: Path, name: str) -> dict:
    return [e for e in ledger(tmp_path, name) if e["event"] == "snapshot"][-1]


def trusted(capsys, name: str) -> str | None:
    capsys.readouterr()
    rc = cli.main(["trusted", name])
    out = capsys.readouterr().out.strip()
    return out if rc == 0 else None


def test_attack_through_the_job_is_quarantined_held_alerted_and_the_next_clean_job_trusted(
    server, monkeypatch, capsys
):
    config, tmp_path = server
    rows = [f"{i}\tpatient {i}" for i in range(200)]

    def clean():
        client(config, "dpi", "backup", "-q", "--host", HOST, "--stdin", "--stdin-filename", "dpi.sql",
               data=dump_of(rows))  # fmt: skip

    assert job(config, "dpi", monkeypatch, clean) == 0
    good = trusted(capsys, "dpi")
    assert good and arrival(tmp_path, "dpi")["server_rows"] == {"public.patients": 200}

    def attack():
        clean()
        client(config, "dpi", "backup", "-q", "--host", HOST, "--stdin", "--stdin-filename", "dpi.sql",
               "--time", "2099-01-01 00:00:00", data="planted")  # fmt: skip
        garbage = os.urandom(300)
        (tmp_path / "repos/dpi/index" / hashlib.sha256(garbage).hexdigest()).write_bytes(garbage)
        (tmp_path / "repos/dpi/keys" / ("0" * 64)).write_text('{"not": "a key"}')
        (tmp_path / "repos/dpi/x/keys").mkdir(parents=True)

    assert job(config, "dpi", monkeypatch, attack) == 2
    entries = ledger(tmp_path, "dpi")
    quarantine = next(e for e in entries if e["event"] == "quarantine")
    assert sorted({w.split(": ")[1].split(":")[0] for w in quarantine["why"]}) == [
        "foreign-key", "index-unreadable", "snapshot-forged-time", "unexpected-entry"]  # fmt: skip
    assert all((Path(quarantine["folder"]) / f).exists() for f in quarantine["files"])
    last = arrival(tmp_path, "dpi")
    assert last["admitted"] and not last["trusted"]
    assert (tmp_path / "state/holds/dpi.json").exists()
    metrics = (tmp_path / "metrics/rempart_backup_dpi.prom").read_text()
    assert (
        re.search(r"^rempart_backup_quarantined_entries\{[^}]*\} ([0-9.]+)$", metrics, re.M).group(1) == "4"
    )
    assert "quarantine: foreign-key" in (tmp_path / "alerts").read_text()
    assert trusted(capsys, "dpi") == good  # the attack job's snapshot is not trusted, the hold newer than it
    subprocess.run([RESTIC, "check", "-q"], env=server_config.restic_env(config, "dpi"), check=True)
    assert cli.main(["clear-hold", "dpi", "--reason", "investigated"]) == 0
    assert job(config, "dpi", monkeypatch, clean) == 0
    assert trusted(capsys, "dpi") == arrival(tmp_path, "dpi")["id"] != good
    # restore-all: the newest trusted snapshot by default, never `latest`
    target = tmp_path / "restored"
    capsys.readouterr()
    assert cli.main(["restore-all", str(target), "dpi"]) == 0
    assert json.loads(capsys.readouterr().out)["snapshot"] == trusted(capsys, "dpi")
    assert (target / "dpi.sql").read_text() == dump_of(rows)


def test_rows_changed_in_place_raise_an_anomaly_the_row_count_does_not(server, monkeypatch):
    config, tmp_path = server
    rows = [f"{i}\tpatient {i}" for i in range(200)]

    def backup(lines):
        return lambda: client(config, "dpi", "backup", "-q", "--host", HOST, "--stdin", "--stdin-filename",
                              "dpi.sql", data=dump_of(lines))  # fmt: skip

    assert job(config, "dpi", monkeypatch, backup(rows)) == 0
    day = rows[:190] + [f"{i}\tpatient {i} (modifié)" for i in range(190, 200)] + ["200\tnouveau"]
    assert job(config, "dpi", monkeypatch, backup(day)) == 0  # 5 % changed: a normal day
    encrypted = [f"{i}\t\\x{hashlib.sha256(r.encode()).hexdigest()[:24]}" for i, r in enumerate(day)]
    assert job(config, "dpi", monkeypatch, backup(encrypted)) == 2
    last = arrival(tmp_path, "dpi")
    assert last["server_rows"] == {"public.patients": 201}  # same count: only the row hashes see it
    assert any(re.match(r"rows-changed: .*public\.patients 100%", r) for r in last["anomaly"]), last[
        "anomaly"
    ]


def test_one_file_dataset_rewritten_whole_raises_an_anomaly(server, monkeypatch):
    config, tmp_path = server
    binder = tmp_path / "src" / "classeur.enc"
    binder.write_bytes(os.urandom(50_000))  # encrypted generations: high entropy from the start

    def backup():
        client(config, "classeur", "backup", "-q", "--host", HOST, str(tmp_path / "src"))
        return [{"type": "manifest", "path": str(binder), "sha256": hashlib.sha256(binder.read_bytes()).hexdigest(),
                 "size": binder.stat().st_size}]  # fmt: skip

    assert job(config, "classeur", monkeypatch, backup) == 0
    binder.write_bytes(os.urandom(50_000))  # ransomware rewrites the one file (changed_ratio 1.0)
    assert job(config, "classeur", monkeypatch, backup) == 2
    last = arrival(tmp_path, "classeur")
    assert any(r.startswith("small-dataset-rewritten: 1 of its 1 file") for r in last["anomaly"]), last[
        "anomaly"
    ]
    digest = hashlib.sha256(binder.read_bytes()).hexdigest()
    assert last["server_digests"] == {str(binder): digest}  # the server read it back itself


def test_one_file_dump_appended_to_is_modified_not_rewritten(server, monkeypatch):
    """A files dataset holding one dump file that grows a little every day (the benchmark's SQL dataset) changes
    its only file in place: the server measures the new data at a few % of the snapshot, no anomaly."""
    config, tmp_path = server
    dump = tmp_path / "src" / "dump.sql"
    dump.write_text("".join(f"INSERT INTO t VALUES ({i}, 'ligne {i}');\n" for i in range(600_000)))

    def backup():
        client(config, "classeur", "backup", "-q", "--host", HOST, str(tmp_path / "src"))
        return [{"type": "manifest", "path": str(dump), "sha256": hashlib.sha256(dump.read_bytes()).hexdigest(),
                 "size": dump.stat().st_size}]  # fmt: skip

    assert job(config, "classeur", monkeypatch, backup) == 0
    with dump.open("a") as handle:
        handle.write("".join(f"INSERT INTO t VALUES ({i}, 'nouvelle {i}');\n" for i in range(1_000)))
    assert job(config, "classeur", monkeypatch, backup) == 0
    last = arrival(tmp_path, "classeur")
    assert last["anomaly"] == [] and last["trusted"], last["anomaly"]
    assert last["stats"]["rewritten_ratio"] == 1.0  # the file count alone would have fired
    assert 0 < last["stats"]["added_bytes"] < 0.5 * last["stats"]["snapshot_bytes"]


def test_a_manifest_that_lies_is_caught_by_the_servers_digests(server, monkeypatch):
    config, tmp_path = server
    paper = tmp_path / "src" / "compte-rendu.txt"
    paper.write_text("CR\n")

    def backup():
        client(config, "classeur", "backup", "-q", "--host", HOST, str(tmp_path / "src"))
        return [{"type": "manifest", "path": str(paper), "sha256": "0" * 64, "size": 3}]

    assert job(config, "classeur", monkeypatch, backup) == 2
    assert any(p.startswith("manifest-mismatch: 1 of 1") for p in arrival(tmp_path, "classeur")["problems"])


def test_init_reseals_the_servers_key_once_and_jobs_still_pass(server, monkeypatch, capsys):
    """`init` gives a repository whose password is random (>= 32 characters) a key sealed with restic's default
    scrypt parameters (every server-side restic start opens it in milliseconds); the old key leaves the
    allowlist; a second `init` changes nothing; a short (human) password keeps restic's calibrated key."""
    config, tmp_path = server
    source = tmp_path / "gam"
    source.mkdir()
    (source / "a.txt").write_text("gam\n")
    config["datasets"]["gam"] = {"host": HOST, "kind": "files", "paths": [str(source)]}
    (tmp_path / "secrets" / "gam.json").write_text(json.dumps({"repository_password": "R" * 43}))
    capsys.readouterr()
    assert cli.main(["init", "gam"]) == 0
    assert capsys.readouterr().out.split() == ["gam"]
    (key,) = (tmp_path / "repos" / "gam" / "keys").iterdir()
    assert {k: json.loads(key.read_text())[k] for k in ("N", "r", "p")} == {"N": 16384, "r": 8, "p": 1}
    database = sqlite3.connect(tmp_path / "state" / "admission" / "gam.sqlite")
    assert [row[0] for row in database.execute("SELECT id FROM keys")] == [key.name]
    classeur_keys = sorted(p.name for p in (tmp_path / "repos" / "classeur" / "keys").iterdir())
    assert cli.main(["init", "gam", "classeur"]) == 0 and capsys.readouterr().out == ""  # idempotent
    # the short (human) password keeps the key restic calibrated (whatever parameters the load gave it)
    assert sorted(p.name for p in (tmp_path / "repos" / "classeur" / "keys").iterdir()) == classeur_keys

    def backup():
        client(config, "gam", "backup", "-q", "--host", HOST, str(source))
        digest = hashlib.sha256(b"gam\n").hexdigest()
        return [{"type": "manifest", "path": str(source / "a.txt"), "sha256": digest, "size": 4}]

    assert job(config, "gam", monkeypatch, backup) == 0
    assert arrival(tmp_path, "gam")["trusted"]
