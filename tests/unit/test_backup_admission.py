"""Admission of a job's output (issue 15, item 1) against REAL restic repositories: each attack a root client
can make through its own job is moved to quarantine, and the job's real snapshot is still admitted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rempart_host.restic import Restic

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2] / "roles/backup_server/files/rempart_backup_server")
)

from rempart_backup_server.admission import Admission, Expected

RESTIC = os.environ.get("REMPART_TEST_RESTIC") or shutil.which("restic") or "/usr/bin/restic"
HOST = "files-01"
pytestmark = pytest.mark.skipif(not Path(RESTIC).exists(), reason="restic is not installed")


class Repo:
    """A local repository, the client's view (restic with the password) and the server's (Admission)."""

    def __init__(self, tmp: Path, template: Path | None = None) -> None:
        self.tmp, self.path, self.source = tmp, tmp / "repo", tmp / "src"
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "RESTIC_PASSWORD": "pw",
                    "RESTIC_REPOSITORY": str(self.path), "RESTIC_CACHE_DIR": str(tmp / "cache")}  # fmt: skip
        if template:  # a copy of the first job's state: each restic start costs a key derivation
            for part in ("repo", "src", "state"):
                shutil.copytree(template / part, tmp / part, symlinks=True)
        else:
            self.client("init")
            self.source.mkdir()
            for i in range(20):
                (self.source / f"doc-{i}.txt").write_text(f"document {i}\n" * (i + 1) * 100)
        self.admission = self.server()
        self.started = time.time()

    def client(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run([RESTIC, *args], env=env or self.env, capture_output=True, text=True,
                              check=True).stdout  # fmt: skip

    def server(self) -> Admission:
        runner = Restic(RESTIC, self.env)
        return Admission(
            self.path, self.tmp / "state/admission.sqlite", self.tmp / "state/quarantine", runner
        )

    def backup(self, *extra: str) -> None:
        self.client("backup", "--host", HOST, "-q", *extra, str(self.source))

    def judge(self, job_ok: bool = True):
        expected = Expected(
            host=HOST, paths=[str(self.source)], started=self.started - 1, arrived=time.time()
        )
        verdict = self.admission.judge(expected, job_ok)
        self.started = time.time()
        return verdict

    def snapshots(self) -> set[str]:
        return {s["id"] for s in json.loads(self.client("snapshots", "--json"))}

    def check(self) -> None:
        self.client("check")


@pytest.fixture(scope="module")
def first_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("first-job")
    repo = Repo(folder)
    assert (
        repo.admission.sweep().rejected == []
    )  # first sight: trust on first use, the key joins the allowlist
    repo.backup()
    verdict = repo.judge()
    assert verdict.snapshot and not verdict.rejected, verdict
    repo.admission.close()
    return folder


@pytest.fixture
def repo(tmp_path: Path, first_job: Path) -> Repo:
    return Repo(tmp_path, first_job)


def test_a_clean_job_is_admitted_and_recorded(repo: Repo):
    (repo.source / "doc-3.txt").write_text("edited\n")
    repo.backup()
    verdict = repo.judge()
    assert verdict.snapshot in repo.snapshots() and verdict.rejected == [] and not verdict.attack
    assert {p.split("/")[0] for p in verdict.admitted} == {"index", "data", "snapshots"}
    assert repo.admission.sweep().rejected == []  # nothing new since: the record matches the repository


def test_garbage_index_is_quarantined_and_the_repository_stays_usable(repo: Repo):
    garbage = os.urandom(300)
    name = __import__("hashlib").sha256(garbage).hexdigest()
    repo.backup()
    (repo.path / "index" / name).write_bytes(garbage)
    verdict = repo.judge()
    assert verdict.snapshot  # the job's own snapshot is still admitted
    assert [(r.path, r.why.split(":")[0]) for r in verdict.rejected] == [
        (f"index/{name}", "index-unreadable")
    ]
    assert (verdict.quarantine / "index" / name).read_bytes() == garbage  # moved, never deleted
    repo.check()


def test_malformed_key_sorting_first_is_quarantined(repo: Repo):
    repo.backup()
    bad = repo.path / "keys" / ("0" * 64)
    bad.write_text('{"not": "a key"}')
    verdict = repo.judge()
    assert [r.why.split(":")[0] for r in verdict.rejected] == ["foreign-key"] and not bad.exists()
    assert verdict.reasons() == ["quarantine: foreign-key"]


def test_a_well_formed_key_added_by_the_client_is_quarantined(repo: Repo):
    (repo.tmp / "pw2").write_text("other\n")
    repo.client("key", "add", "--new-password-file", str(repo.tmp / "pw2"))
    verdict = repo.judge(job_ok=False)
    assert [r.why.split(":")[0] for r in verdict.rejected] == ["foreign-key"]
    assert len(list((repo.path / "keys").iterdir())) == 1


def test_planted_future_snapshot_is_quarantined_the_real_one_admitted(repo: Repo):
    repo.backup()
    (repo.source / "planted").write_text("x\n")
    repo.backup("--time", "2099-01-01 00:00:00")
    verdict = repo.judge()
    rejected = {r.path: r.why for r in verdict.rejected}
    assert len(rejected) == 1 and next(iter(rejected.values())).startswith("snapshot-forged-time")
    assert verdict.snapshot in repo.snapshots() and len(repo.snapshots()) == 2
    assert not any(s["time"].startswith("2099") for s in json.loads(repo.client("snapshots", "--json")))
    repo.check()  # the planted snapshot's packs and index are sound data: kept, unreferenced


def test_snapshots_of_another_host_or_paths_are_refused(repo: Repo):
    repo.client("backup", "-q", "--host", "intruder", str(repo.source))
    verdict = repo.judge()
    assert verdict.snapshot is None
    assert [r.why.split(":")[0] for r in verdict.rejected] == ["snapshot-wrong-host"]


def test_two_matching_snapshots_in_one_job_are_both_refused(repo: Repo):
    repo.backup()
    (repo.source / "doc-1.txt").write_text("again\n")
    repo.backup()
    verdict = repo.judge()
    assert verdict.snapshot is None
    assert sorted(r.why.split(":")[0] for r in verdict.rejected) == ["several-snapshots"] * 2


def test_sub_repository_and_stray_files_are_moved_whole(repo: Repo):
    repo.backup()
    (repo.path / "x" / "keys").mkdir(parents=True)
    (repo.path / "x" / "config").write_text("sub-repository")
    (repo.path / "README").write_text("stray")
    (repo.path / "data" / "zz").mkdir()
    (repo.path / "index" / "not-hex").write_text("stray")
    verdict = repo.judge()
    assert verdict.snapshot
    moved = sorted(r.path for r in verdict.rejected)
    assert moved == ["README", "data/zz", "index/not-hex", "x"]
    assert (verdict.quarantine / "x" / "config").read_text() == "sub-repository"
    assert not (repo.path / "x").exists()
    repo.check()


def test_forged_index_reindexing_existing_blobs_is_quarantined(repo: Repo):
    """The client copies its repository, drops the index there, backs up the same data again (new packs holding
    blobs the real index already lists) and uploads the new packs and index: well-formed, encrypted, refused."""
    copy = repo.tmp / "copy"
    shutil.copytree(repo.path, copy)
    for stale in [*(copy / "index").iterdir(), *(copy / "snapshots").iterdir()]:
        stale.unlink()
    before = set((copy / "data").rglob("*"))
    repo.client("backup", "--host", HOST, "-q", str(repo.source), env={**repo.env, "RESTIC_REPOSITORY": str(copy),
                                                                        "RESTIC_CACHE_DIR": str(repo.tmp / "c2")})  # fmt: skip
    for pack in set((copy / "data").rglob("*")) - before:
        if pack.is_file():
            shutil.copy(pack, repo.path / pack.relative_to(copy))
    for index in (copy / "index").iterdir():
        shutil.copy(index, repo.path / "index" / index.name)
    verdict = repo.judge()
    whys = sorted({r.why.split(":")[0] for r in verdict.rejected})
    assert whys == ["index-reindexes", "orphan-pack"] and verdict.attack, verdict.rejected
    repo.check()


def test_index_listing_a_pack_of_an_earlier_job_is_quarantined(repo: Repo):
    copy = repo.tmp / "copy"
    shutil.copytree(repo.path, copy)
    env = {**repo.env, "RESTIC_REPOSITORY": str(copy)}
    if subprocess.run([RESTIC, "repair", "index"], env=env, capture_output=True, check=False).returncode:
        subprocess.run([RESTIC, "rebuild-index"], env=env, capture_output=True, check=True)  # restic < 0.16
    new = [i for i in (copy / "index").iterdir() if not (repo.path / "index" / i.name).exists()]
    for index in new:
        shutil.copy(index, repo.path / "index" / index.name)
    verdict = repo.judge()
    whys = {r.why.split(":")[0] for r in verdict.rejected}
    assert new and whys and whys <= {"index-foreign-pack", "index-supersedes"}, (
        whys
    )  # supersedes: restic < 0.16


def test_pack_whose_bytes_do_not_match_its_name_is_quarantined(repo: Repo):
    (repo.source / "doc-2.txt").write_text("changed\n" * 1000)
    before = set((repo.path / "data").rglob("*"))
    repo.backup()
    new = sorted(set((repo.path / "data").rglob("*")) - before)
    data = bytearray(new[0].read_bytes())
    data[0] ^= 0xFF
    new[0].write_bytes(bytes(data))
    verdict = repo.judge()
    assert "pack-mismatch" in {r.why.split(":")[0] for r in verdict.rejected}


def test_what_appears_between_jobs_is_swept_before_the_next_job(repo: Repo):
    (repo.path / "snapshots" / ("a" * 64)).write_text("planted while no job ran")
    (repo.path / "locks" / ("b" * 64)).write_text("stale")
    verdict = repo.admission.sweep()
    assert sorted((r.path.split("/")[0], r.attack) for r in verdict.rejected) == [("locks", False),
                                                                                  ("snapshots", True)]  # fmt: skip
    assert not (repo.path / "snapshots" / ("a" * 64)).exists()


def test_failed_job_debris_is_moved_without_alarm(repo: Repo):
    (repo.path / "locks" / ("c" * 64)).write_text("stale lock of a killed job")
    verdict = repo.judge(job_ok=False)
    assert verdict.rejected and not verdict.attack and verdict.reasons() == []


def test_server_restic_selects_its_own_key(repo: Repo):
    key = next((repo.path / "keys").iterdir()).name
    assert repo.admission.restic.command("snapshots")[-3:] == ["--key-hint", key, "snapshots"]


def test_record_current_after_prune_keeps_the_blob_record_exact(repo: Repo):
    repo.client("forget", "--keep-last", "1", "--prune")
    repo.admission.record_current("prune")
    listed = {w for w in repo.client("list", "blobs").split() if len(w) == 64}
    assert repo.admission.indexed(listed) == listed
    (repo.source / "doc-9.txt").write_text("after prune\n")
    repo.backup()
    assert repo.judge().rejected == []


def test_the_clients_word_is_type_checked_never_trusted_to_have_a_shape():
    from rempart_backup_server.client_word import client_word

    summary = {"rc": 0, "restic": {"snapshot_id": "x"}, "rows": [1, 2], "cpu_seconds": "lots", "error": ""}
    manifest = [
        {"path": "/a", "sha256": "0" * 64, "size": 3},
        {"path": "/b; rm -rf /", "sha256": "zz", "size": 1},
    ]
    clean, entries, problems = client_word(summary, manifest)
    assert clean == {"rc": 0, "restic": {"snapshot_id": "x"}, "error": ""}
    assert entries == [manifest[0]]
    assert [p.split(":")[1].split()[0] for p in problems] == ["cpu_seconds", "rows", "1"]
    assert client_word({"rows": {"public.t": 3}}, [])[0] == {"rows": {"public.t": 3}}
    assert client_word(["not", "a", "dict"], [])[2] == ["client-summary-malformed: not an object"]


def test_record_follows_a_repository_an_admin_put_back(repo: Repo):
    """A repository restored from an older copy lacks index files the record admitted: the sweep rebuilds the
    blob record, so that the blobs the next job uploads again are not taken for a re-indexing attack."""
    copy = repo.tmp / "older"
    shutil.copytree(repo.path, copy)
    (repo.source / "doc-5.txt").write_text("only in the lost index\n" * 50)
    repo.backup()
    assert repo.judge().rejected == []
    shutil.rmtree(repo.path)
    shutil.copytree(copy, repo.path)
    assert repo.admission.sweep().rejected == []
    repo.backup()
    assert repo.judge().rejected == []


# --------------------------------------------------------------------------- variants beyond the seven attacks


def test_a_snapshot_uploaded_without_its_trees_is_refused_as_incomplete(repo: Repo):
    """Variant: the client backs up into a copy of its repository and uploads only the new snapshot file (right
    host, paths and time, well-formed and encrypted), so the newest snapshot would point to trees the repository
    lacks and every restore of it would fail."""
    copy = repo.tmp / "copy"
    shutil.copytree(repo.path, copy)
    (repo.source / "doc-4.txt").write_text("only in the copy\n" * 500)
    env = {**repo.env, "RESTIC_REPOSITORY": str(copy), "RESTIC_CACHE_DIR": str(repo.tmp / "c2")}
    repo.client("backup", "--host", HOST, "-q", str(repo.source), env=env)
    forged = [s for s in (copy / "snapshots").iterdir() if not (repo.path / "snapshots" / s.name).exists()]
    assert len(forged) == 1
    shutil.copy(forged[0], repo.path / "snapshots" / forged[0].name)
    verdict = repo.judge()
    assert verdict.snapshot is None and verdict.attack
    assert [(r.path, r.why.split(":")[0]) for r in verdict.rejected] == [
        (f"snapshots/{forged[0].name}", "snapshot-incomplete")
    ]
    assert not (repo.path / "snapshots" / forged[0].name).exists()
    repo.check()


def test_a_lock_left_by_a_successful_job_is_an_attack(repo: Repo):
    """Variant: a lock file that outlives a job that succeeded (an exclusive lock dated in the future would stop
    retention and every later job) is moved out and alarms; after a failed job the same file is only debris."""
    repo.backup()
    lock = repo.path / "locks" / ("d" * 64)
    lock.write_text('{"time": "2099-01-01T00:00:00Z", "exclusive": true}')
    verdict = repo.judge(job_ok=True)
    assert verdict.snapshot and verdict.attack and not lock.exists()
    assert [r.why for r in verdict.rejected] == ["stale-lock"]
