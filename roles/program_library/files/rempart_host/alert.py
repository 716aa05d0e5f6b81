"""The establishment's alert command (mail or SMS gateway), called with a subject and a reason."""

from __future__ import annotations

import shlex
import subprocess


def call(command: str | None, *words: str, timeout: float = 60) -> bool:
    """Run ``COMMAND WORDS...`` when a command is configured; True when it ran and exited 0.

    Its failure is reported by the caller's journal line, never raised: an alert must not hide the failure
    that caused it."""
    if not command:
        return False
    try:
        return subprocess.run([*shlex.split(command), *words], check=False, timeout=timeout).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
