"""A restored tree, read without trusting it: regular files hashed through a descriptor opened O_NOFOLLOW,
everything else (symlinks, fifos, sockets, devices) listed and refused, never opened nor followed. The restore
drill's restore unit (roles/restore_drill) runs it on what restic restored from a client's backup."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def entry_kind(mode: int) -> str:
    kinds = {stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device",
             stat.S_IFBLK: "block device"}  # fmt: skip
    return kinds.get(stat.S_IFMT(mode), "special file")


def sha256_nofollow(path: str) -> str:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path}: not a regular file")
        digest = hashlib.sha256()
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
        return digest.hexdigest()


def scan_restored(target: Path) -> tuple[dict[str, list[Any]], list[list[str]]]:
    """{"/path": [size, sha256]} of the regular files, [["/path", kind]] of everything else refused (never read,
    never followed: os.walk does not descend into a symlinked folder)."""
    files: dict[str, list[Any]] = {}
    refused: list[list[str]] = []
    for directory, folders, names in os.walk(target):
        for name in [*folders, *names]:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            relative = "/" + os.path.relpath(path, target)
            if stat.S_ISDIR(info.st_mode):
                continue
            if stat.S_ISREG(info.st_mode):
                files[relative] = [info.st_size, sha256_nofollow(path)]
            else:
                refused.append([relative, entry_kind(info.st_mode)])
    return files, refused
