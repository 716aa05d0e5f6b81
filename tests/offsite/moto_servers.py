"""moto S3 servers on 127.0.0.1 for the offsite tests, and a movable clock for moto."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import moto.s3.models as s3_models
import pytest

REGION = "eu-west-3"
ACCOUNT = "123456789012"  # moto's account
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def served(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """A moto server program (``command`` takes moto's -H/-p) in its own process on 127.0.0.1; its endpoint."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def lock_rule(mode: str = "COMPLIANCE", days: int = 30) -> dict[str, Any]:
    return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}}


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class MotoClock:
    """moto's notion of "now" (lock expiry, default retention, LastModified), movable by tests."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = dt.timedelta()
        real = s3_models.utcnow
        monkeypatch.setattr(s3_models, "utcnow", lambda: real() + self.offset)

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)

    def now(self) -> dt.datetime:
        """The same moment, timezone-aware (for our code)."""
        return s3_models.utcnow().replace(tzinfo=dt.UTC)
