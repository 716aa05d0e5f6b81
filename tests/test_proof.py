"""Fast tests of the proof tooling (issue 8): the drill program against a stand-in restic, the row counter shared
with the backup client, the ransomware drill's comparison, and the result files' shape (rempart.results)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from rempart_host.dumps import CopyRows

from rempart.results import Drill, RansomwareDrill, RedButton, load_results

PROJECT = Path(__file__).resolve().parent.parent
FIXTURES = PROJECT / "tests" / "fixtures" / "proof"


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


drill_program = load("rempart_restore_drill", PROJECT / "roles/restore_drill/files/rempart_restore_drill.py")
ransomware = load("rempart_ransomware", PROJECT / "playbooks/files/rempart_ransomware.py")

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
    for counter_class in (CopyRows, drill_program.CopyRows):  # the library's (backup client) and the drill's
        counter = counter_class()
        for start in range(0, len(DUMP), size):
            counter.feed(DUMP[start : start + size])
        assert counter.rows == ROWS


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
    entry = {"event": "snapshot", "id": "snap1", "arrived": 1_800_000_000, "trusted": True, "manifest": str(manifest),
             "stats": {"processed_bytes": sum(map(len, files.values()))}}  # fmt: skip
    (state / "ledger" / "partages.jsonl").write_text(json.dumps(entry) + "\n")
    secrets.mkdir()
    (secrets / "partages.json").write_text(json.dumps({"repository_password": "x", "http_password": "y"}))
    restic = tmp_path / "restic"
    restic.write_text(FAKE_RESTIC.format(python=sys.executable))
    restic.chmod(0o755)
    server = tmp_path / "backup-server.json"
    server.write_text(json.dumps({"repos_dir": str(repos), "state_dir": str(state), "secrets_dir": str(secrets),
                                  "restic": str(restic)}))  # fmt: skip
    config = tmp_path / "restore-drill.json"
    drill = tmp_path / "drill"
    config.write_text(json.dumps({
        "backup_config": str(server), "work_dir": str(drill / "work"), "results_dir": str(drill / "results"),
        "requests_dir": str(drill / "requests"), "metrics_dir": str(drill / "metrics"), "pg_bindir": "/nonexistent",
        "full_max_bytes": 10, "sample_files": 10, "fail_over_rto": True,
        "datasets": [{"name": "partages", "kind": "files", "criticality": "important", "rto_hours": 24,
                      "host": "files-01", "database": None}],
    }))  # fmt: skip
    return config


def run_drill(monkeypatch: pytest.MonkeyPatch, config: Path) -> tuple[int, dict[str, Any], str]:
    monkeypatch.setattr(drill_program, "CONFIG", config)
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
