"""What the backup server measures itself in an admitted snapshot (issue 15, items 4 and 7), on real restic
repositories: rows per table and row changes of a dump, digests of sampled files."""

from __future__ import annotations

import hashlib
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

from rempart_backup_server.evidence import (
    RowSample,
    changed_shares,
    choose_files,
    digest_mismatches,
    dump_evidence,
    file_digests,
)

RESTIC = os.environ.get("REMPART_TEST_RESTIC") or shutil.which("restic") or "/usr/bin/restic"


def plain_dump(tables: dict[str, list[str]]) -> bytes:
    parts = ["--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n"]
    for name in tables:
        parts.append(f"CREATE TABLE {name} (id integer, body text);\n")
    for name, rows in tables.items():
        parts.append(f"COPY {name} (id, body) FROM stdin;\n")
        parts += [f"{row}\n" for row in rows]
        parts.append("\\.\n\n")
    return "".join(parts).encode()


def patients(count: int, tag: str = "") -> list[str]:
    return [f"{i}\tpatient {i} {tag}" for i in range(count)]


def sample_of(data: bytes, chunk: int = 4096) -> dict:
    sample = RowSample()
    for start in range(0, len(data), chunk):
        sample.feed(data[start : start + chunk])
    return sample.result()


def test_row_changes_in_place_are_seen_where_the_row_count_is_not():
    before = sample_of(plain_dump({"public.patients": patients(1000), "public.notes": patients(300)}))
    damaged = patients(1000)
    damaged[:600] = [f"{i}\t\\x9f3a0c{i:04x}" for i in range(600)]  # encrypted in place: same count
    after = sample_of(
        plain_dump({"public.patients": damaged, "public.notes": patients(300) + patients(50, "new")})
    )
    shares = changed_shares(before, after)
    assert shares == {"public.patients": 0.6, "public.notes": 0.0}


def test_big_tables_keep_a_bounded_sample_that_still_estimates_changes():
    rows = patients(200_000)
    before = sample_of(plain_dump({"public.actes": rows}), chunk=1 << 20)
    assert before["public.actes"]["rate"] > 1 and len(before["public.actes"]["hashes"]) <= 8192
    rows[::2] = [f"{i}\tchiffré" for i in range(0, 200_000, 2)]
    after = sample_of(plain_dump({"public.actes": rows}), chunk=1 << 20)
    assert abs(changed_shares(before, after)["public.actes"] - 0.5) < 0.05


def test_row_sample_speed():
    data = plain_dump({"public.actes": patients(1_000_000)})
    started = time.process_time()
    sample_of(data, chunk=1 << 20)
    seconds = time.process_time() - started
    print(f"RowSample: {len(data) / 1e6:.0f} MB, 1,000,000 rows in {seconds:.2f} CPU s")
    assert seconds < 5


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Restic, dict[str, str]]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RESTIC_PASSWORD": "pw",
           "RESTIC_REPOSITORY": str(tmp_path / "repo"), "RESTIC_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    restic = Restic(RESTIC, env)
    restic.run("init")
    return restic, env


def test_dump_evidence_counts_rows_and_hashes_the_admitted_dump(repository):
    restic, env = repository
    dump = plain_dump({"public.patients": patients(1234), "public.empty": []})
    subprocess.run(
        [RESTIC, "backup", "-q", "--stdin", "--stdin-filename", "dpi.sql"], input=dump, env=env, check=True
    )
    snapshot = restic.json("snapshots")[0]["id"]
    evidence = dump_evidence(restic, snapshot, "/dpi.sql")
    assert evidence["rows"] == {"public.patients": 1234, "public.empty": 0}
    assert evidence["sha256"] == hashlib.sha256(dump).hexdigest() and evidence["size"] == len(dump)
    with pytest.raises(RuntimeError, match="restic dump"):
        dump_evidence(restic, snapshot, "/other.sql")


def test_file_digests_of_sampled_files_and_mismatch_with_the_manifest(repository, tmp_path: Path):
    restic, env = repository
    source = tmp_path / "src"
    (source / "a").mkdir(parents=True)
    files = {source / "a" / "compte-rendu.txt": b"CR\n", source / "a" / "odd [1]*?.txt": b"odd\n",
             source / "big.bin": os.urandom(4096)}  # fmt: skip
    for path, data in files.items():
        path.write_bytes(data)
    subprocess.run([RESTIC, "backup", "-q", str(source)], env=env, check=True)
    snapshot = restic.json("snapshots")[0]["id"]
    sizes = {str(p): len(d) for p, d in files.items()}
    chosen = choose_files(list(sizes), sizes, count=8, budget=1024)
    assert str(source / "big.bin") not in chosen and len(chosen) == 2  # the budget bounds the work
    digests = file_digests(restic, snapshot, chosen, tmp_path / "scratch")
    assert digests == {str(p): hashlib.sha256(files[p]).hexdigest() for p in files if str(p) in chosen}
    assert not (tmp_path / "scratch").exists()
    claimed = {**digests, chosen[0]: "0" * 64}
    assert digest_mismatches(digests, claimed) == [chosen[0]]
