"""Fast tests of the proof tooling (issue 8): the drill program against a stand-in restic (its units run directly,
their systemd properties checked), the row counter shared with the backup client, the ransomware drill's comparison,
and the result files' shape (rempart.reports.results)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from rempart_host.dumps import CopyRows

from rempart.reports.results import Drill, RansomwareDrill, RedButton, load_results

PROJECT = Path(__file__).resolve().parent.parent
FIXTURES = PROJECT / "tests" / "fixtures" / "proof"


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DRILL_FILES = PROJECT / "roles/restore_drill/files"
drill_program = load("rempart_restore_drill", DRILL_FILES / "rempart_restore_drill.py")
load_program = load("rempart_drill_load", DRILL_FILES / "rempart_drill_load.py")
ransomware = load("rempart_ransomware", PROJECT / "roles/ransomware_drill/files/rempart_ransomware.py")

DUMP = (
    b"SET client_encoding = 'UTF8';\nCOPY public.patients (id, nom) FROM stdin;\n"
    + b"".join(b"%d\tnom \\\\. %d\n" % (i, i) for i in range(500))
    + b'\\.\n\nCOPY public."Table vide" (a) FROM stdin;\n\\.\n\nCOPY public.sejours (id) FROM stdin;\n'
    + b"".join(b"%d\n" % i for i in range(2000))
    + b"\\.\n\nALTER TABLE public.patients OWNER TO dpi_app;\n"
)
ROWS = {"public.patients": 500, 'public."Table vide"': 0, "public.sejours": 2000}


@pytest.mark.parametrize("size", [1, 3, 64, 4096, 1 << 20])
def test_row_counter_of_the_client_and_the_drill_agree_whatever_the_chunking(size: int) -> None:
    counter = CopyRows()  # the library's, which the backup client and the server use
    for start in range(0, len(DUMP), size):
        counter.feed(DUMP[start : start + size])
    assert counter.rows == ROWS


class FakeCursor:
    def __init__(self) -> None:
        self.sql: list[bytes] = []
        self.copied: dict[str, bytes] = {}

    def execute(self, sql: bytes) -> None:
        self.sql.append(sql)

    def copy_expert(self, sql: str, data: Any, size: int = 8192) -> None:
        chunks = []
        while chunk := data.read(size):
            chunks.append(chunk)
        self.copied[sql] = b"".join(chunks)


def test_the_drill_loader_counts_the_same_rows_and_sends_only_sql() -> None:
    cursor = FakeCursor()
    stream = load_program.PostgresStream(
        io.BytesIO(b"\\restrict abc123XYZ\n" + DUMP + b"\\unrestrict abc123XYZ\n")
    )
    stream.load(cursor)
    assert stream.dump_rows == ROWS
    assert stream.skipped == {"ownership_and_privileges": 1, "psql_restrict_lines": 2}
    assert all(b"OWNER TO" not in sql and not sql.startswith(b"\\") for sql in cursor.sql)
    assert cursor.copied["COPY public.patients (id, nom) FROM stdin;"].count(b"\n") == 500


@pytest.mark.parametrize(
    "payload",
    [b"\\! touch /tmp/x\n", b"\\o |touch /tmp/x\n", b"\\copy (select 1) to program 'touch /tmp/x'\n",
     b"\\i /etc/rempart/secrets/partages.json\n"],
)  # fmt: skip
def test_a_psql_meta_command_is_refused_before_it_reaches_anything(payload: bytes) -> None:
    cursor = FakeCursor()
    stream = load_program.PostgresStream(io.BytesIO(DUMP + payload + b"SELECT 1;\n"))
    with pytest.raises(load_program.Refused, match="psql meta-command at line"):
        stream.load(cursor)
    assert all(b"touch" not in sql and b"secrets" not in sql for sql in cursor.sql)


def test_mariadb_insert_rows_are_counted_outside_quoted_strings() -> None:
    one_line = b"INSERT INTO `t``x` VALUES (1,'a(b),(c'),(2,'it\\'s (x);'),(3,NULL,'('),(4,'');\n"
    per_line = [b"INSERT INTO `t``x` VALUES\n", b"(5,'a;b'),\n", b"(6,'(\\')'),\n", b"(7,'x');\n"]
    trigger = b"/*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a=1 */;;\n"
    counter = load_program.InsertRows()
    skipped = {"definer_clauses": 0}
    sink = io.BytesIO()
    dump = [trigger, one_line, *per_line, b"UNLOCK TABLES;\n", b"INSERT INTO `y` VALUES (1);\n"]
    load_program.filter_mariadb(iter(dump), sink, counter, skipped)
    assert counter.rows == {"t`x": 7, "y": 1} and skipped == {"definer_clauses": 1}
    assert b"DEFINER" not in sink.getvalue()


def test_the_loader_refuses_to_run_unconfined() -> None:
    facts = {
        "uid": 0,
        "user": "root",
        "interfaces": ["lo", "eth0"],
        "readable_forbidden_paths": ["/etc/rempart"],
    }
    assert len(load_program.confinement_problems(facts)) == 3
    assert load_program.confinement_problems({**facts, "uid": 61000, "interfaces": ["lo"],
                                              "readable_forbidden_paths": []}) == []  # fmt: skip


def test_server_messages_never_quote_the_dump() -> None:
    message = load_program.server_message(
        b"ERROR 1064 (42000) at line 7: You have an error in your SQL syntax; near 'secret patient' at line 1\n"
    )
    assert "secret" not in message and message.startswith("ERROR 1064")


# --------------------------------------------------------------------------- the drill program, stand-in restic

FAKE_RESTIC = textwrap.dedent(
    """\
    #!{python}
    # Stand-in for restic: snapshots --json and restore ID --target T [--include-file F] from a folder
    import json, os, shutil, sys
    store = os.environ["RESTIC_REPOSITORY"]
    args = [a for a in sys.argv[1:] if a not in ("--no-lock", "--no-cache")]
    if args[0] == "snapshots":
        print(json.dumps(json.load(open(os.path.join(store, "snapshots.json")))))
    elif args[0] == "restore":
        target = args[args.index("--target") + 1]
        source = os.path.join(store, args[1])
        wanted = None
        if "--include-file" in args:
            wanted = {{l.strip().replace("\\\\", "") for l in open(args[args.index("--include-file") + 1])}}
        for directory, _, files in os.walk(source):
            for name in files:
                path = os.path.join(directory, name)
                relative = "/" + os.path.relpath(path, source)
                if wanted is not None and relative not in wanted:
                    continue
                os.makedirs(os.path.dirname(target + relative), exist_ok=True)
                if os.path.islink(path):
                    os.symlink(os.readlink(path), target + relative)
                else:
                    shutil.copy(path, target + relative)
    """
)


def make_server(tmp_path: Path, files: dict[str, bytes], *, corrupt: str | None = None) -> Path:
    """A backup server's state for one files dataset 'partages': repository stand-in, ledger, manifest."""
    repos, state, secrets = tmp_path / "repos", tmp_path / "state", tmp_path / "secrets"
    snapshot = repos / "partages" / "snap1"
    for path, content in files.items():
        (snapshot / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / path.lstrip("/")).write_bytes(content if path != corrupt else b"flipped")
    (repos / "partages" / "snapshots.json").write_text(json.dumps([{"id": "snap1", "summary": {}}]))
    manifest = state / "manifests" / "partages" / "snap1.sha256"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("".join(f"{hashlib.sha256(c).hexdigest()}  {p}\n" for p, c in files.items()))
    (state / "ledger").mkdir()
    (state / "locks").mkdir()
    entry = {"event": "snapshot", "id": "snap1", "arrived": 1_800_000_000, "admitted": True, "trusted": True,
             "manifest": str(manifest),
             "stats": {"processed_bytes": sum(map(len, files.values()))}}  # fmt: skip
    (state / "ledger" / "partages.jsonl").write_text(json.dumps(entry) + "\n")
    secrets.mkdir()
    (secrets / "partages.json").write_text(json.dumps({"repository_password": "x", "http_password": "y"}))
    restic = tmp_path / "restic"
    restic.write_text(FAKE_RESTIC.format(python=sys.executable))
    restic.chmod(0o755)
    server = tmp_path / "backup-server.json"
    server.write_text(json.dumps({"repos_dir": str(repos), "state_dir": str(state), "secrets_dir": str(secrets),
                                  "restic": str(restic), "user": pwd.getpwuid(os.getuid()).pw_name}))  # fmt: skip
    config = tmp_path / "restore-drill.json"
    drill = tmp_path / "drill"
    config.write_text(json.dumps({
        "backup_config": str(server), "work_dir": str(drill / "work"), "results_dir": str(drill / "results"),
        "requests_dir": str(drill / "requests"), "metrics_dir": str(drill / "metrics"), "pg_bindir": "/nonexistent",
        "server_user": pwd.getpwuid(os.getuid()).pw_name, "program_dir": str(DRILL_FILES), "unit": "rempart-drill",
        "load_forbidden_paths": [str(secrets), str(repos), str(state), str(drill), str(drill / "metrics")],
        "full_max_bytes": 10, "sample_files": 10, "fail_over_rto": True,
        "datasets": [{"name": "partages", "kind": "files", "criticality": "important", "rto_hours": 24,
                      "host": "files-01", "database": None}],
    }))  # fmt: skip
    return config


UNITS: list[tuple[str, list[str]]] = []


def start_unit_directly(
    unit: str, properties: list[str], argv: list[str], stdin: int | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """The drill's transient units, run as plain processes; their properties are recorded for the tests."""
    UNITS.append((unit, properties))
    done = subprocess.run([sys.executable, *argv[1:]], stdin=stdin, capture_output=True, check=False)
    return json.loads(done.stdout.decode().splitlines()[-1])


def run_drill(monkeypatch: pytest.MonkeyPatch, config: Path) -> tuple[int, dict[str, Any], str]:
    monkeypatch.setattr(drill_program, "CONFIG", config)
    monkeypatch.setattr(drill_program, "start_unit", start_unit_directly)
    UNITS.clear()
    rc = drill_program.run("scheduled")
    settings = json.loads(config.read_text())
    result = next(Path(settings["results_dir"]).glob("*.json"))
    metrics = (Path(settings["metrics_dir"]) / "rempart_drill.prom").read_text()
    assert not any(Path(settings["work_dir"]).iterdir())  # the sandbox is emptied
    return rc, json.loads(result.read_text()), metrics


FILES = {f"/srv/partages/doc-{i}.txt": f"document {i}\n".encode() * (i + 1) for i in range(12)}


def test_drill_verifies_every_file_and_writes_a_valid_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_server(tmp_path, {"/srv/partages/weird [1]*?.txt": b"glob characters", **FILES})
    settings = json.loads(config.read_text())
    settings["full_max_bytes"] = 1 << 30
    config.write_text(json.dumps(settings))
    rc, result, metrics = run_drill(monkeypatch, config)
    assert rc == 0
    drill = Drill.model_validate(result)
    assert (
        drill.passed and drill.datasets[0].files_verified == 13 and result["datasets"][0]["scope"] == "full"
    )
    assert "rempart_drill_success 1" in metrics
    ((unit, properties),) = UNITS
    assert unit.startswith("rempart-drill-restore-partages-")
    assert f"TemporaryFileSystem={tmp_path / 'secrets'}:ro" in properties
    assert (
        f"BindReadOnlyPaths={tmp_path / 'secrets' / 'partages.json'}" in properties
    )  # its secrets file alone
    assert f"TemporaryFileSystem={tmp_path / 'repos'}:ro" in properties
    assert f"BindReadOnlyPaths={tmp_path / 'repos' / 'partages'}" in properties
    assert {"PrivateNetwork=yes", f"InaccessiblePaths=-{tmp_path / 'state'}"} <= set(properties)
    assert result["datasets"][0]["snapshot_chosen_by"] == "newest trusted (rempart_backup_server.trust)"


def test_restored_symlinks_are_refused_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_server(tmp_path, FILES)
    settings = json.loads(config.read_text())
    settings["full_max_bytes"] = 1 << 30
    config.write_text(json.dumps(settings))
    snapshot = tmp_path / "repos" / "partages" / "snap1" / "srv" / "partages"
    (snapshot / "doc-3.txt").unlink()
    (snapshot / "doc-3.txt").symlink_to(tmp_path / "secrets" / "partages.json")  # listed in the manifest
    (snapshot / "fifo").symlink_to("/etc/shadow")  # not in the manifest
    rc, result, _ = run_drill(monkeypatch, config)
    dataset = result["datasets"][0]
    assert rc == 1 and dataset["files_failed"] == 1 and dataset["refused_entries"] == 2
    assert "/srv/partages/doc-3.txt: refused (symlink, never opened)" in dataset["errors"]
    assert '"x"' not in json.dumps(result) and "repository_password" not in json.dumps(result)


def test_a_symlinked_dump_is_refused_before_any_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_server(tmp_path, {"/dpi.sql": DUMP})
    settings = json.loads(config.read_text())
    settings["datasets"][0].update(kind="postgresql", database="dpi")
    config.write_text(json.dumps(settings))
    dump = tmp_path / "repos" / "partages" / "snap1" / "dpi.sql"
    dump.unlink()
    dump.symlink_to(tmp_path / "secrets" / "partages.json")
    rc, result, _ = run_drill(monkeypatch, config)
    dataset = result["datasets"][0]
    assert rc == 1 and dataset["status"] == "failed"
    assert any(e.startswith("refused: 1 symlink(s)") for e in dataset["errors"])
    assert [unit for unit, _ in UNITS if "-load-" in unit] == []


def test_the_drill_loads_a_dump_in_a_secretless_dynamic_user_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_server(tmp_path, {"/dpi.sql": DUMP})
    settings = json.loads(config.read_text())
    settings["datasets"][0].update(kind="postgresql", database="dpi")
    config.write_text(json.dumps(settings))
    loads: list[int] = []

    def fake_load(
        unit: str, properties: list[str], argv: list[str], stdin: int | None = None, **_: Any
    ) -> dict:
        if "-load-" not in unit:
            return start_unit_directly(unit, properties, argv, stdin)
        UNITS.append((unit, properties))
        assert stdin is not None
        loads.append(len(os.read(stdin, 1 << 20)))
        return {"rows": {**ROWS, "public.sejours": 1999}, "dump_rows": ROWS, "skipped": {}, "sandbox": {}}

    monkeypatch.setattr(drill_program, "CONFIG", config)
    monkeypatch.setattr(drill_program, "start_unit", fake_load)
    UNITS.clear()
    assert drill_program.run("scheduled") == 1
    result = json.loads(next((tmp_path / "drill" / "results").glob("*.json")).read_text())["datasets"][0]
    assert loads == [len(DUMP)]
    properties = dict(UNITS)[next(u for u, _ in UNITS if "-load-" in u)]
    assert {"DynamicUser=yes", "PrivateNetwork=yes", "PrivateTmp=yes"} <= set(properties)
    assert not [p for p in properties if p.startswith(("BindReadOnlyPaths", "User=", "ReadWritePaths"))]
    assert f"InaccessiblePaths=-{tmp_path / 'secrets'}" in properties
    assert result["rows_source"].startswith("drill:")
    assert result["errors"] == ["public.sejours: 1999 rows loaded, 2000 expected (drill)"]


def test_the_drill_restores_the_newest_trusted_snapshot_by_the_backup_servers_rule(tmp_path: Path) -> None:
    """The one rule (rempart_backup_server.trust): flagged, unadmitted, forgotten, quarantined and held snapshots
    are skipped; the chosen one needs a checksum manifest."""

    def snap(sid: str, at: float, **extra: Any) -> dict[str, Any]:
        return {"event": "snapshot", "id": sid * 64, "arrived": at, "admitted": True, "trusted": True,
                "manifest": "m", **extra}  # fmt: skip

    ledger = [snap("a", 1), snap("b", 2), snap("c", 3, anomaly=["volume"]), snap("d", 4, admitted=False),
              snap("e", 5), {"event": "forgotten", "ids": ["e" * 64]}, snap("f", 6, manifest=None),
              snap("1", 7)]  # fmt: skip
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "dpi.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ledger))
    server = drill_program.Server.__new__(drill_program.Server)
    server.config = {"state_dir": str(tmp_path)}
    (tmp_path / "holds").mkdir()
    (tmp_path / "holds" / "dpi.json").write_text(json.dumps({"since": 5.5, "reasons": ["anomaly"]}))
    entry, chosen_by = drill_program.choose_snapshot(server, "dpi")
    assert entry["id"] == "b" * 64 and chosen_by == "newest trusted (rempart_backup_server.trust)"
    (tmp_path / "holds" / "dpi.json").unlink()
    assert drill_program.choose_snapshot(server, "dpi")[0]["id"] == "1" * 64
    with (tmp_path / "ledger" / "dpi.jsonl").open("a") as ledger_file:
        ledger_file.write(json.dumps({"event": "forgotten", "ids": ["1" * 64]}) + "\n")
    with pytest.raises(drill_program.DrillError, match="no checksum manifest"):
        drill_program.choose_snapshot(server, "dpi")  # f: trusted, but nothing to verify against
    (tmp_path / "holds" / "dpi.json").write_text(json.dumps({"since": 0.5, "reasons": ["anomaly"]}))
    with pytest.raises(drill_program.DrillError, match="no trusted snapshot of dpi"):
        drill_program.choose_snapshot(server, "dpi")


def test_rows_are_compared_with_the_servers_count_first_and_say_so() -> None:
    dump = {"public.t": 3}
    server, source = drill_program.expected_rows(
        {"server_rows": {"public.t": 2}, "client": {"rows": dump}}, dump
    )
    assert server == {"public.t": 2} and source.startswith("server:")
    client, source = drill_program.expected_rows(
        {"server_rows": None, "client": {"rows": {"public.t": 5}}}, dump
    )
    assert client == {"public.t": 5} and source.startswith("client-asserted:")
    listed, source = drill_program.expected_rows(
        {"client": {"rows": [1, 2]}}, dump
    )  # attack 5: rows as a list
    assert listed == dump and source.startswith("drill:")


def test_a_large_dataset_is_sampled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {**FILES, "/srv/partages/weird [1]*?.txt": b"glob characters"}
    rc, result, _ = run_drill(monkeypatch, make_server(tmp_path, files))
    assert rc == 0
    dataset = result["datasets"][0]
    assert (
        dataset["scope"] == "sample"
        and dataset["files_verified"] == 10
        and dataset["files_in_manifest"] == 13
    )


def test_a_corrupted_file_fails_the_drill_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_path = make_server(tmp_path, FILES, corrupt="/srv/partages/doc-3.txt")
    settings = json.loads(settings_path.read_text())
    settings["full_max_bytes"] = 1 << 30
    settings_path.write_text(json.dumps(settings))
    rc, result, metrics = run_drill(monkeypatch, settings_path)
    assert rc == 1
    drill = Drill.model_validate(result)
    assert not drill.passed
    assert drill.datasets[0].files_failed == 1 and "doc-3.txt" in drill.datasets[0].errors[0]
    assert "rempart_drill_success 0" in metrics


def test_no_trusted_snapshot_is_a_failed_drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_server(tmp_path, FILES)
    (tmp_path / "state" / "ledger" / "partages.jsonl").write_text("")
    rc, result, _ = run_drill(monkeypatch, config)
    assert rc == 1 and "no trusted snapshot" in result["datasets"][0]["errors"][0]


# --------------------------------------------------------------------------- ransomware drill comparison


def test_ransomware_compare_counts_lost_files_and_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "partages"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}").write_text(f"contenu {i}")
    (root / "brouillon.tmp").write_text("exclu")
    spec = {"files": [{"name": "partages", "paths": [str(root)], "excludes": ["*.tmp"]}], "databases": []}
    reference = ransomware.baseline(spec)
    assert len(reference["files"]) == 5
    reference["rows"] = {"dpi": {"public.t": ["a", "b", "b"]}}
    (root / "f1").write_text("chiffré")
    (root / "f2").unlink()
    monkeypatch.setattr(ransomware, "rows_of", lambda database: {"public.t": ["b", "a"]})
    spec["databases"] = [{"name": "dpi-postgresql", "database": "dpi"}]
    compared = ransomware.compare(spec, reference)
    assert compared["files_lost"] == 2 and compared["rows_lost"] == 1 and compared["rows_total"] == 3


# --------------------------------------------------------------------------- result files (from a molecule run)


@pytest.mark.parametrize(
    ("folder", "model"), [("drills", Drill), ("ransomware", RansomwareDrill), ("red-button", RedButton)]
)
def test_result_files_written_by_the_playbooks_load(folder: str, model: type, tmp_path: Path) -> None:
    files = sorted((FIXTURES / folder).glob("*.json"))
    assert files, f"no fixture under {FIXTURES / folder}"
    for path in files:
        model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    shutil.copytree(FIXTURES, tmp_path / "340999903")
    results = load_results(tmp_path / "340999903")
    assert not results.unreadable
