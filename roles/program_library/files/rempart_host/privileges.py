"""Dropping root: what follows runs as the service user, so every state file keeps one owner."""

from __future__ import annotations

import os
import pwd


def drop_privileges(user: str) -> None:
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
