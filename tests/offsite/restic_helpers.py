"""restic driven from tests: a generated dataset, a repository on moto, byte-for-byte comparison."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

PASSWORD = "offsite-test-password"


def require_restic() -> str:
    path = shutil.which("restic")
    if path is None:
        pytest.skip("restic not installed (apt-get install restic; listed in .ci/apt-packages.txt)")
    return path


def make_dataset(root: Path, files: int = 40, seed: int = 4) -> Path:
    """Small and larger files, compressible and random, in a few folders."""
    rng = random.Random(seed)
    for index in range(files):
        folder = root / f"service-{index % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.choice([0, 10, 4096, 70_000, 1_300_000])
        if index % 3:
            content = rng.randbytes(size)
        else:
            content = (f"patient {index};" * (size // 12 + 1)).encode()[:size]
        (folder / f"doc-{index}.bin").write_bytes(content)
    return root


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def restic(repository: str, *args: str, cache: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RESTIC_PASSWORD": PASSWORD,
        "RESTIC_CACHE_DIR": str(cache),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    result = subprocess.run(
        [require_restic(), "-r", repository, "--quiet", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"restic {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result
