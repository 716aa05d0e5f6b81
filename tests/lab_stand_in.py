"""The lab's offsite stand-in (tests/moto_lab.py: strict Object Lock, IAM enforced) in its own process on
127.0.0.1, with the lab establishment's bucket and identities made as `rempart-lab offsite up` makes them.
Import the fixtures into a test module: ``from lab_stand_in import lab_bucket, stand_in``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rempart.model.inventory import inventory_hosts, load_establishment_data
from rempart.model.validation import load_valid
from rempart_lab.offsite import SERVER_SCRIPT, _answers, provision


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not _answers("127.0.0.1", port):
        assert process.poll() is None and time.monotonic() < deadline, "tests/moto_lab.py did not start"
        time.sleep(0.2)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def lab_bucket(stand_in: str, project: Path) -> dict[str, Any]:
    """{"bucket", "endpoint", "identities": {"admin"|"writer"|"restore": {"user", "id", "secret"}}}"""
    inventory = project / "inventories" / "lab"
    establishment = load_valid(load_establishment_data(inventory), inventory_hosts(inventory))
    return provision(stand_in, establishment) | {"endpoint": stand_in}


def identity_client(bucket: dict[str, Any], identity: str) -> Any:
    import boto3
    from botocore.config import Config

    keys = bucket["identities"][identity]
    return boto3.client(
        "s3",
        endpoint_url=bucket["endpoint"],
        region_name="eu-west-3",
        aws_access_key_id=keys["id"],
        aws_secret_access_key=keys["secret"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
