"""Fixtures: moto S3 servers on 127.0.0.1 (strict = AWS Object Lock semantics, see tests/moto_strict.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto_servers import CREDENTIALS, MotoClock, free_port, s3_client, served

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for moto_strict
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab"))  # offsite_replay (lab code)

from moto_strict import strict_object_lock
from offsite_replay import deploy
from program_stand_in import an_establishment, reset_stand_in


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def strict_endpoint() -> Iterator[str]:
    """An in-process moto server on 127.0.0.1 that enforces AWS's Object Lock rules."""
    with strict_object_lock():
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="session")
def stock_endpoint() -> Iterator[str]:
    """Stock moto 5.2 (its own process, so the strict patches do not reach it)."""
    with served([sys.executable, "-m", "moto.server"], {**os.environ, **CREDENTIALS}) as endpoint:
        yield endpoint


@pytest.fixture
def s3(strict_endpoint: str):
    return s3_client(strict_endpoint)


@pytest.fixture
def bucket_name(request: pytest.FixtureRequest) -> str:
    """A bucket name unique to the test (the moto server lives for the whole session)."""
    slug = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    return f"t-{slug}-{os.urandom(3).hex()}"


@pytest.fixture
def moto_clock(monkeypatch: pytest.MonkeyPatch, strict_endpoint: str) -> MotoClock:
    return MotoClock(monkeypatch)


@pytest.fixture
def program_bucket(strict_endpoint: str) -> Callable[..., str]:
    """``make(retention_days=30, adjust=None) -> bucket``: the Pulumi program's bucket, made on the strict
    stand-in (lab/offsite_replay.py) after a reset; ``adjust`` declares a deliberately wrong variant."""

    def make(retention_days: int = 30, adjust: Any = None) -> str:
        reset_stand_in(strict_endpoint)
        establishment = an_establishment(retention_days=retention_days)
        return str(deploy(establishment, strict_endpoint, adjust=adjust).outputs["bucket"])

    return make
