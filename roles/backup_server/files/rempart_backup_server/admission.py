"""Admission of what a client wrote into its repository during its job (issue 15, item 1).

The client holds the repository key: it can forge well-formed, encrypted files. Decrypting proves nothing, so
the server judges every new entry against what it already trusts, recorded in its own state (one SQLite file
per dataset, never reachable by a client):

- ``entries``: every repository file the server admitted (or wrote itself: init, prune, admin key rotation);
- ``blobs``: every blob id the admitted index files list;
- ``keys``: the key ids the server created (the only key files a repository may hold).

After a job, an entry is admitted only if it is one of: a new index file that decrypts, parses, supersedes
nothing, lists only packs that arrived in this job and no blob already indexed; a new pack (data/xx/<sha256>,
its name the sha256 of its bytes) that such an index lists; exactly one new snapshot whose host, paths and time
match the job and whose tree resolves fully. Anything else (other key files, sub-repositories such as ``x/``,
stray files anywhere, stale locks) is MOVED to ``<quarantine>/<stamp>/<relative path>``, never deleted.

Standard library only; restic runs as a subprocess through an injected ``rempart_host.restic.Restic`` that
always selects the server's key (``--key-hint``: one unparsable key file otherwise stops restic's key search).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rempart_host.restic import Restic, parse_time

HEX64 = re.compile(r"[0-9a-f]{64}")
FOLDERS = ("keys", "index", "snapshots", "locks", "data")
CHUNK = 1 << 20


def select_key(restic: Restic, key: str | None) -> None:
    """Every server-side restic run opens the repository with the server's own key (``--key-hint``)."""
    options = list(restic.options)
    while "--key-hint" in options:
        at = options.index("--key-hint")
        del options[at : at + 2]
    restic.options = [*options, "--key-hint", key] if key else options


@dataclass
class Rejected:
    path: str
    why: str
    attack: bool = True  # False: debris of a failed job (stale lock, orphan pack), moved but not alarming


@dataclass
class Verdict:
    snapshot: str | None = None  # the one admitted snapshot of the job
    record: dict[str, Any] = field(default_factory=dict)  # its restic JSON (time, host, paths, summary)
    admitted: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    quarantine: Path | None = None
    seconds: float = 0.0

    @property
    def attack(self) -> bool:
        return any(r.attack for r in self.rejected)

    def reasons(self) -> list[str]:
        kinds = sorted({r.why.split(":", 1)[0] for r in self.rejected if r.attack})
        return [f"quarantine: {kind}" for kind in kinds]

    def ledger_entry(self, started: float) -> dict[str, Any]:
        return {"event": "quarantine", "at": time.time(), "job_started": started,
                "files": [r.path for r in self.rejected], "why": [f"{r.path}: {r.why}" for r in self.rejected],
                "attack": self.attack, "folder": str(self.quarantine)}  # fmt: skip


@dataclass
class Expected:
    """What the job's snapshot must say about itself (the server's view of the job)."""

    host: str
    paths: Sequence[str]
    started: float
    arrived: float
    skew: float = 900.0


def repository_entries(repo: Path) -> dict[str, bool]:
    """Relative path -> is a directory the repository must not hold. Files of the known layout are listed
    one by one; any other directory (a sub-repository ``x/``) is one entry, moved whole."""
    found: dict[str, bool] = {}
    for entry in os.scandir(repo):
        if entry.name == "config" and entry.is_file(follow_symlinks=False):
            found["config"] = False
        elif entry.name in FOLDERS and entry.is_dir(follow_symlinks=False):
            found.update(_folder_entries(repo, entry.name))
        else:
            found[entry.name] = entry.is_dir(follow_symlinks=False)
    return found


def _folder_entries(repo: Path, folder: str) -> Iterator[tuple[str, bool]]:
    for entry in os.scandir(repo / folder):
        relative = f"{folder}/{entry.name}"
        is_dir = entry.is_dir(follow_symlinks=False)
        if folder == "data" and is_dir and re.fullmatch(r"[0-9a-f]{2}", entry.name):
            for pack in os.scandir(entry.path):
                yield f"{relative}/{pack.name}", pack.is_dir(follow_symlinks=False)
        else:
            yield relative, is_dir


def admission_db(state_dir: str | Path, name: str) -> Path:
    """Where the server keeps its record of a dataset's repository (allowlisted keys, admitted files)."""
    return Path(state_dir) / "admission" / f"{name}.sqlite"


def server_key(state_dir: str | Path, name: str, repo: str | Path) -> str | None:
    """The server's key of a dataset's repository, for every program that opens it on the server (job, admin,
    offsite and offline copies, drills): ``--key-hint`` / ``RESTIC_KEY_HINT`` / ``RESTIC_FROM_KEY_HINT``, so
    that a key file a client planted during its job never stops restic's key search."""
    return known_key(admission_db(state_dir, name), Path(repo))


def known_key(db: Path, repo: Path) -> str | None:
    """The server's key of a repository, for ``--key-hint`` (None before the first record: restic searches)."""
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        try:
            allowed = sorted(row[0] for row in connection.execute("SELECT id FROM keys"))
        except sqlite3.OperationalError:
            return None
    return next((key for key in allowed if (repo / "keys" / key).is_file()), None)


def pack_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


class Admission:
    """The server's record of one repository, and the judgement of what a job added to it."""

    def __init__(
        self, repo: Path, db: Path, quarantine: Path, restic: Restic, verify_packs: bool = True
    ) -> None:
        self.repo, self.db_path, self.quarantine_root, self.restic = repo, db, quarantine, restic
        self.verify_packs = verify_packs
        db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(db)
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS entries (path TEXT PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS blobs (id BLOB PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, added REAL, why TEXT) WITHOUT ROWID;"
        )
        select_key(restic, self.key_hint())

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the record

    def known(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT path FROM entries")}

    def allowed_keys(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT id FROM keys")}

    def key_hint(self) -> str | None:
        present = {p.name for p in (self.repo / "keys").iterdir()} if (self.repo / "keys").is_dir() else set()
        allowed = sorted(self.allowed_keys() & present)
        return allowed[0] if allowed else None

    @property
    def initialised(self) -> bool:
        return self.db.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is not None

    def record_current(self, why: str) -> None:
        """Trust the repository as it is now: after the server's own writes (init, prune, admin key rotation),
        or once when a repository from before admission is first seen. Its keys join the allowlist."""
        entries = repository_entries(self.repo)
        keys = [p.split("/", 1)[1] for p in entries if p.startswith("keys/")]
        now = time.time()
        with self.db:
            self.db.execute("DELETE FROM entries")
            self.db.executemany(
                "INSERT INTO entries VALUES (?)", [(p,) for p in entries if not p.startswith("locks/")]
            )
            self.db.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?, ?)", [(k, now, why) for k in keys])
        select_key(self.restic, self.key_hint())
        listing = self.restic.run("list", "blobs", "--no-cache", "--no-lock").stdout.split()
        with self.db:
            self.db.execute("DELETE FROM blobs")
            self.db.executemany("INSERT OR IGNORE INTO blobs VALUES (?)",
                                [(bytes.fromhex(w),) for w in listing if HEX64.fullmatch(w)])  # fmt: skip

    def replace_key(self, old: str, new: str, why: str) -> None:
        """The server re-sealed its key (restic_key): the new file joins the record and the allowlist, the old
        one leaves both (posted again by a client, it would be a foreign key)."""
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO entries VALUES (?)", (f"keys/{new}",))
            self.db.execute("INSERT OR IGNORE INTO keys VALUES (?, ?, ?)", (new, time.time(), why))
            self.db.execute("DELETE FROM entries WHERE path = ?", (f"keys/{old}",))
            self.db.execute("DELETE FROM keys WHERE id = ?", (old,))
        select_key(self.restic, self.key_hint())

    def indexed(self, blob_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        ids = list(blob_ids)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT id FROM blobs WHERE id IN ({marks})", [bytes.fromhex(i) for i in part]
            )
            found |= {row[0].hex() for row in rows}
        return found

    # ------------------------------------------------------------------ judgement

    def sweep(self) -> Verdict:
        """Before a job: whatever appeared since the server's last record (no job of this dataset ran, so no
        legitimate writer did) is moved out. Stale locks of an aborted job are moved too, without alarm."""
        started = time.monotonic()
        verdict = Verdict()
        if not (self.repo / "config").is_file():
            return verdict  # no repository yet: `init` records it
        if not self.initialised:
            self.record_current("first seen by admission (trust on first use)")
            return verdict
        known, present = self.known(), repository_entries(self.repo)
        for path in sorted(present):
            if path not in known:
                stale = path.startswith("locks/")
                verdict.rejected.append(Rejected(path, "stale-lock" if stale else "outside-job: appeared "
                                                 "while no job of this dataset ran", attack=not stale))  # fmt: skip
        self._move(verdict)
        if any(p.startswith("index/") and p not in present for p in known):
            # index files the record admitted are gone (an admin put a copy of the repository back): the blob
            # record follows what is left, or a blob re-uploaded later would look re-indexed
            self.record_current("admitted index files are gone: record rebuilt")
        verdict.seconds = time.monotonic() - started
        return verdict

    def judge(self, expected: Expected, job_ok: bool) -> Verdict:
        """After a job: admit its index files, packs and one snapshot; move everything else out."""
        started = time.monotonic()
        verdict = Verdict()
        known, allowed = self.known(), self.allowed_keys()
        indexes, packs, snapshots = [], {}, []
        for path, is_dir in sorted(repository_entries(self.repo).items()):
            if path in known:
                continue
            parts = path.split("/")
            name = parts[-1]
            if is_dir:
                verdict.rejected.append(Rejected(path, "unexpected-entry: a directory (sub-repository?)"))
            elif parts[0] == "keys" and len(parts) == 2:
                if name in allowed:
                    verdict.admitted.append(path)
                else:
                    verdict.rejected.append(
                        Rejected(path, "foreign-key: a key file the server did not create")
                    )
            elif parts[0] == "locks":
                verdict.rejected.append(Rejected(path, "stale-lock", attack=job_ok))
            elif parts[0] == "index" and len(parts) == 2 and HEX64.fullmatch(name):
                indexes.append(name)
            elif parts[0] == "data" and len(parts) == 3 and HEX64.fullmatch(name) and parts[1] == name[:2]:
                packs[name] = path
            elif parts[0] == "snapshots" and len(parts) == 2 and HEX64.fullmatch(name):
                snapshots.append(name)
            else:
                verdict.rejected.append(Rejected(path, "unexpected-entry: not part of a restic repository"))
        with ThreadPoolExecutor(max_workers=4) as pool:  # pack hashing beside restic's index decryption
            hashed = pool.submit(self._genuine_packs, packs, verdict, job_ok)
            loaded = list(pool.map(self._load_index, indexes))
            packs = hashed.result()
        listed, blobs = self._judge_indexes(loaded, set(packs), verdict)
        for pack, path in sorted(packs.items()):
            if pack in listed:
                verdict.admitted.append(path)
            else:  # a failed job leaves packs no index lists: debris, not an attack
                verdict.rejected.append(
                    Rejected(path, "orphan-pack: listed by no admitted index", attack=job_ok)
                )
        self._move(verdict)  # before restic reads snapshots: the rejected index files are gone by then
        self._record(verdict.admitted, blobs)
        self._judge_snapshots(snapshots, expected, verdict)
        self._move(verdict)
        verdict.seconds = time.monotonic() - started
        return verdict

    def _genuine_packs(self, packs: dict[str, str], verdict: Verdict, job_ok: bool) -> dict[str, str]:
        """A pack's name is the sha256 of its bytes (what restic check --read-data verifies). After a failed job
        (disk full, cut) a damaged pack is debris: moved out, not alarming; the job's failure alerts."""
        if not self.verify_packs:
            return packs
        genuine = {}
        for pack, path in packs.items():
            if pack_digest(self.repo / path) == pack:
                genuine[pack] = path
            else:
                verdict.rejected.append(
                    Rejected(path, "pack-mismatch: its bytes do not hash to its name", attack=job_ok)
                )
        return genuine

    def _load_index(self, name: str) -> tuple[str, Any]:
        """An index file decrypted by restic and parsed, or why it could not be."""
        result = self.restic.run("cat", "index", name, "--no-cache", "--no-lock", check=False)
        if result.returncode != 0:
            return name, f"index-unreadable: {result.stderr.strip()[-200:]}"
        try:
            return name, json.loads(result.stdout)
        except ValueError:
            return name, "index-unreadable: not JSON"

    def _judge_indexes(
        self, loaded: Sequence[tuple[str, Any]], arrived: set[str], verdict: Verdict
    ) -> tuple[set[str], dict[str, None]]:
        """Admitted new index files: the packs they list and their blob ids (insertion-ordered)."""
        listed: set[str] = set()
        blobs: dict[str, None] = {}
        for name, index in loaded:
            why = index if isinstance(index, str) else self._index_problem(index, arrived, listed, blobs)
            if why:
                verdict.rejected.append(Rejected(f"index/{name}", why))
                continue
            verdict.admitted.append(f"index/{name}")
            for pack in index["packs"]:
                listed.add(pack["id"])
                blobs.update((blob["id"], None) for blob in pack["blobs"])
        return listed, blobs

    def _index_problem(self, index: Any, arrived: set[str], listed: set[str], blobs: dict[str, None]) -> str:
        if not isinstance(index, dict) or not isinstance(index.get("packs"), list):
            return "index-malformed: no list of packs"
        if index.get("supersedes"):
            return "index-supersedes: a client index may not replace the server's"
        ids: list[str] = []
        for pack in index["packs"]:
            if not isinstance(pack, dict) or not isinstance(pack.get("blobs"), list):
                return "index-malformed: a pack without blobs"
            if pack.get("id") not in arrived:
                return f"index-foreign-pack: lists pack {str(pack.get('id'))[:12]} that did not arrive in this job"
            if pack["id"] in listed:
                return f"index-duplicate-pack: pack {pack['id'][:12]} already listed by another new index"
            for blob in pack["blobs"]:
                if not isinstance(blob, dict) or not HEX64.fullmatch(str(blob.get("id"))) or blob.get("type") not in (
                    "data", "tree"):  # fmt: skip
                    return "index-malformed: a blob entry"
                ids.append(blob["id"])
        again = self.indexed(ids) | {i for i in ids if i in blobs}
        if again or len(set(ids)) != len(ids):
            first = sorted(again)[0] if again else "within the file"
            return f"index-reindexes: {len(again) or 1} blob(s) already indexed ({first[:12]})"
        return ""

    def _judge_snapshots(self, names: Sequence[str], expected: Expected, verdict: Verdict) -> None:
        if not names:
            return
        walk_args = ("stats", "--mode", "raw-data", "--json", "--no-cache", "--no-lock")
        with ThreadPoolExecutor(max_workers=2) as pool:  # the usual single snapshot: both restic runs at once
            walks = {
                n: pool.submit(self.restic.run, *walk_args, n, check=False)
                for n in names[:1]
                if len(names) == 1
            }
            result = self.restic.run("snapshots", "--json", "--no-cache", "--no-lock", *names, check=False)
            try:
                loaded = {s["id"]: s for s in json.loads(result.stdout or "[]")}
            except ValueError:
                loaded = {}
            matching, problems = [], {}
            for name in names:
                snapshot = loaded.get(name)
                problem = (
                    "snapshot-unreadable" if snapshot is None else self._snapshot_problem(snapshot, expected)
                )
                if problem:
                    problems[name] = problem
                else:
                    matching.append(name)
            if len(matching) > 1:
                problems.update(
                    {n: f"several-snapshots: {len(matching)} match this one job" for n in matching}
                )
                matching = []
            for name in matching:
                walk = (
                    walks.get(name) or pool.submit(self.restic.run, *walk_args, name, check=False)
                ).result()
                if walk.returncode != 0:
                    problems[name] = (
                        f"snapshot-incomplete: its tree does not resolve ({walk.stderr.strip()[-200:]})"
                    )
                else:
                    verdict.snapshot, verdict.record = name, loaded[name]
                    verdict.admitted.append(f"snapshots/{name}")
                    self._record([f"snapshots/{name}"], {})
        for name, why in sorted(problems.items()):
            verdict.rejected.append(Rejected(f"snapshots/{name}", why))

    @staticmethod
    def _snapshot_problem(snapshot: dict[str, Any], expected: Expected) -> str:
        try:
            claimed = parse_time(str(snapshot.get("time")))
        except ValueError:
            return "snapshot-malformed: unreadable time"
        if not expected.started - expected.skew <= claimed <= expected.arrived + expected.skew:
            return f"snapshot-forged-time: claims {snapshot.get('time')}, outside the job"
        if snapshot.get("hostname") != expected.host:
            return f"snapshot-wrong-host: claims host {snapshot.get('hostname')!r}"
        if sorted(snapshot.get("paths") or []) != sorted(expected.paths):
            return f"snapshot-wrong-paths: claims {snapshot.get('paths')}"
        return ""

    # ------------------------------------------------------------------ effects

    def _record(self, paths: Iterable[str], blobs: dict[str, None]) -> None:
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO entries VALUES (?)", [(p,) for p in paths])
            self.db.executemany(
                "INSERT OR IGNORE INTO blobs VALUES (?)", [(bytes.fromhex(b),) for b in blobs]
            )

    def _move(self, verdict: Verdict) -> None:
        """Move what was rejected (and not moved yet) out of the repository, keeping its relative path."""
        for rejected in verdict.rejected:
            source = self.repo / rejected.path
            if not os.path.lexists(source):
                continue
            if verdict.quarantine is None:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
                verdict.quarantine = self.quarantine_root / stamp
            target = verdict.quarantine / rejected.path
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.move(source, target)
        with contextlib.suppress(FileNotFoundError):
            self.quarantine_root.chmod(0o700)
