"""The restic runner: one binary, one environment (repository, password, cache), errors that say what failed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any


class ResticError(RuntimeError):
    """restic exited non-zero where the caller needs it to succeed."""


class Restic:
    """``restic`` with a fixed environment (never argv: passwords stay out of ``ps``) and global options."""

    def __init__(
        self,
        binary: str = "/usr/bin/restic",
        env: Mapping[str, str] | None = None,
        *,
        options: Sequence[str] = (),
        timeout: float | None = None,
    ) -> None:
        self.binary, self.env, self.options, self.timeout = binary, dict(env or {}), list(options), timeout

    def command(self, *args: str) -> list[str]:
        return [self.binary, *self.options, *args]

    def run(
        self, *args: str, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``restic ARGS``; with ``check``, a non-zero exit raises ResticError with the end of its stderr."""
        result = subprocess.run(
            self.command(*args), env=self.env, capture_output=True, text=True, check=False,
            timeout=self.timeout if timeout is None else timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise ResticError(
                f"restic {args[0]} failed ({result.returncode}): {result.stderr.strip()[-800:]}"
            )
        return result

    def json(self, *args: str, timeout: float | None = None) -> Any:
        """The parsed stdout of a restic command that prints one JSON document (``--json`` is added)."""
        flags = [] if "--json" in args else ["--json"]
        return json.loads(self.run(*args, *flags, timeout=timeout).stdout or "null")

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        """A streaming restic process (``dump``): the caller reads and ends it."""
        return subprocess.Popen(self.command(*args), env=self.env, **kwargs)


def parse_time(value: str) -> float:
    """restic's RFC 3339 times carry nanoseconds; Python takes microseconds. Seconds since the epoch."""
    head, dot, rest = value.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        value = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
