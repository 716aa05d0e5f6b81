"""What the server measures itself in a snapshot it admitted (issue 15, items 4 and 7), so that drills and
anomaly rules do not rest on the client's word:

- database dumps: rows per table (``server_rows``, the library's one counter ``CopyRows``), the dump's sha256,
  and a deterministic sample of row hashes per table (:class:`RowSample`): comparing it with the previous
  dump's sample gives the share of each table's rows changed in place or deleted (ransomware that encrypts
  column values keeps the row count; only this sees it);
- files: the sha256 of a sample of the files the snapshot added or changed (``server_digests``), restored by
  one restic process into a private scratch folder, compared with the client's manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rempart_host.dumps import CopyRows
from rempart_host.restic import Restic

CHUNK = 1 << 20


class RowSample:
    """Per table of a plain pg_dump stream, the hashes of the rows whose crc32 has its low ``log2(rate)`` bits
    zero: the same rows (by content) are sampled in every dump, so two samples compare. The rate doubles while
    a table's sample exceeds ``limit`` (a few hundred KiB of state per big table, all rows of a small one)."""

    def __init__(self, limit: int = 8192) -> None:
        self.limit, self.table, self.carry = limit, None, b""
        self.samples: dict[str, dict[str, Any]] = {}

    def feed(self, chunk: bytes) -> None:
        lines = (self.carry + chunk).split(b"\n")
        self.carry = lines.pop()
        for line in lines:
            if self.table is None:
                if line.startswith(b"COPY ") and line.endswith(b" FROM stdin;"):
                    name = (
                        line[5:].split(b" (", 1)[0].removesuffix(b" FROM stdin;").decode("utf-8", "replace")
                    )
                    self.table = self.samples.setdefault(name, {"rate": 1, "hashes": {}})
            elif line == b"\\.":
                self.table = None
            else:
                crc = zlib.crc32(line)
                if crc & (self.table["rate"] - 1) == 0:
                    self.table["hashes"][f"{crc:08x}{hashlib.blake2b(line, digest_size=8).hexdigest()}"] = (
                        None
                    )
                    if len(self.table["hashes"]) > self.limit:
                        self._halve(self.table)

    @staticmethod
    def _halve(table: dict[str, Any]) -> None:
        table["rate"] *= 2
        mask = table["rate"] - 1
        table["hashes"] = {h: None for h in table["hashes"] if int(h[:8], 16) & mask == 0}

    def result(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"rate": t["rate"], "hashes": sorted(t["hashes"])}
            for name, t in sorted(self.samples.items())
        }


def changed_shares(
    previous: Mapping[str, Any], current: Mapping[str, Any], min_sample: int = 20
) -> dict[str, float]:
    """Share of each table's previous rows that are not in the current dump any more (changed or deleted),
    estimated on the rows both samples cover. Tables with fewer than ``min_sample`` sampled rows are skipped."""
    shares: dict[str, float] = {}
    for name, before in previous.items():
        after = current.get(name)
        if after is None:
            continue  # a lost table is the tables-lost rule's business
        mask = max(int(before["rate"]), int(after["rate"])) - 1
        old = {h for h in before["hashes"] if int(h[:8], 16) & mask == 0}
        if len(old) < min_sample:
            continue
        new = {h for h in after["hashes"] if int(h[:8], 16) & mask == 0}
        shares[name] = round(len(old - new) / len(old), 4)
    return shares


def dump_evidence(restic: Restic, snapshot: str, path: str) -> dict[str, Any]:
    """Stream the admitted dump once: rows per table, row sample, sha256, size. Raises if restic fails."""
    rows, sample, digest, size = CopyRows(), RowSample(), hashlib.sha256(), 0
    process = restic.popen(
        "dump", "--no-lock", snapshot, path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    while chunk := process.stdout.read(CHUNK):
        rows.feed(chunk)
        sample.feed(chunk)
        digest.update(chunk)
        size += len(chunk)
    error = process.stderr.read().decode("utf-8", "replace")
    if process.wait() != 0:
        raise RuntimeError(f"restic dump of {path} failed: {error.strip()[-300:]}")
    return {"rows": rows.rows, "sample": sample.result(), "sha256": digest.hexdigest(), "size": size}


def choose_files(touched: Sequence[str], sizes: Mapping[str, int], count: int, budget: int) -> list[str]:
    """Up to ``count`` of the added/changed files, spread over the sorted list, within ``budget`` bytes (sizes
    as the client's manifest claims them: only used to bound the work)."""
    ordered = sorted(p for p in touched if not p.endswith("/"))
    if len(ordered) > count:
        step = len(ordered) / count
        ordered = [ordered[int(i * step)] for i in range(count)]
    chosen, total = [], 0
    for path in ordered:
        size = int(sizes.get(path, 0))
        if total + size <= budget:
            chosen.append(path)
            total += size
    return chosen


def _pattern(path: str) -> str:
    """restic --include takes a pattern: escape its special characters so a file name is only itself."""
    return "".join(f"\\{c}" if c in "\\*?[" else c for c in path)


def file_digests(restic: Restic, snapshot: str, paths: Sequence[str], scratch: Path) -> dict[str, str | None]:
    """sha256 of each path as the snapshot holds it (None: not a regular file there), one restic restore."""
    if not paths:
        return {}
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, mode=0o700)
    try:
        includes = [arg for p in paths for arg in ("--include", _pattern(p))]
        restic.run("restore", "--no-lock", snapshot, "--target", str(scratch), *includes, check=False)
        return {path: _digest(scratch, path.lstrip("/")) for path in paths}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _digest(scratch: Path, relative: str) -> str | None:
    """sha256 of a restored regular file. The server restores as its service user: it owns what it restored,
    and makes it readable whatever mode the snapshot recorded (0000 files, 0000 folders)."""
    path, folder = scratch / relative, scratch
    if ".." in Path(relative).parts:
        return None
    try:
        for part in Path(relative).parts[:-1]:
            folder = folder / part
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                return None
            folder.chmod(0o700)
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        path.chmod(0o600)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with contextlib.closing(os.fdopen(fd, "rb")) as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        sha = hashlib.sha256()
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
        return sha.hexdigest()


def digest_mismatches(server: Mapping[str, str | None], claimed: Mapping[str, str]) -> list[str]:
    """Sampled files whose content differs from what the client's manifest says."""
    return sorted(path for path, digest in server.items() if claimed.get(path) != digest)
