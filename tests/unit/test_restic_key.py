"""rempart_host.restic_key against the real restic: a key it re-seals is one restic opens, and cheaply."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from rempart_host import restic_key

RESTIC = os.environ.get("REMPART_TEST_RESTIC") or shutil.which("restic") or "/usr/bin/restic"
PASSWORD = "Zr0-random-repository-password-of-43-chars-x"
pytestmark = pytest.mark.skipif(not Path(RESTIC).exists(), reason="restic is not installed")


def restic(repo: Path, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo.parent), "RESTIC_PASSWORD": password}
    return subprocess.run([RESTIC, "-r", str(repo), "--no-cache", *args], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "repo"
    assert restic(path, "init").returncode == 0
    return path


def test_a_resealed_key_opens_the_repository_with_restics_default_parameters(repo: Path):
    (calibrated,) = (repo / "keys").iterdir()
    master = restic_key.open_key(calibrated.read_bytes(), PASSWORD)
    assert set(json.loads(master)) == {"mac", "encrypt"}  # restic's master key document
    sealed = restic_key.seal_key(master, PASSWORD, username="rempart", hostname="test")
    assert restic_key.has_default_params(sealed) and not restic_key.has_default_params(
        calibrated.read_bytes()
    )
    name = restic_key.key_id(sealed)
    (repo / "keys" / name).write_bytes(sealed)
    opened = restic(repo, "--key-hint", name, "cat", "config")
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["id"]  # the repository's config, decrypted with the re-sealed key
    calibrated.unlink()  # the re-sealed key alone: restic without a hint finds it too
    assert restic(repo, "cat", "config").returncode == 0
    assert restic(repo, "cat", "config", password=PASSWORD + "x").returncode != 0
    assert restic_key.open_key(sealed, PASSWORD) == master


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda d: {**d, "data": d["data"][:-8] + "AAAAAAA="}, "MAC mismatch"),
        (lambda d: {**d, "kdf": "argon2"}, "unsupported key derivation"),
        (lambda d: {k: v for k, v in d.items() if k != "salt"}, "not a restic key file"),
    ],
)
def test_a_wrong_password_or_a_damaged_key_is_refused(repo: Path, damage, why):
    key = next((repo / "keys").iterdir()).read_bytes()
    with pytest.raises(restic_key.KeyFileError, match="MAC mismatch"):
        restic_key.open_key(key, "not the password")
    with pytest.raises(restic_key.KeyFileError, match=why):
        restic_key.open_key(json.dumps(damage(json.loads(key))).encode(), PASSWORD)
