"""HDS-03 measured: playbooks/files/rempart_sample_encryption.py samples a real restic repository, on disk and as
S3 objects, and finds ciphertext; a plaintext file slipped into it is named; the record reaches the report."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_evidence import generate, requirement

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("restic") is None, reason="Debian restic not installed")


def sampler():
    spec = importlib.util.spec_from_file_location(
        "rempart_sample_encryption", PROJECT / "playbooks/files/rempart_sample_encryption.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    """A restic repository holding readable patient-like text: its files on disk must all be ciphertext."""
    root = tmp_path_factory.mktemp("restic")
    data = root / "partages"
    data.mkdir()
    for index in range(30):
        (data / f"compte-rendu-{index}.txt").write_text(f"Patient {index}: compte rendu opératoire.\n" * 400)
    environment = os.environ | {"RESTIC_PASSWORD": "lab-only", "RESTIC_REPOSITORY": str(root / "repo")}
    subprocess.run(["restic", "init"], env=environment, check=True, capture_output=True)
    subprocess.run(["restic", "backup", str(data)], env=environment, check=True, capture_output=True)
    return root / "repo"


def run(capsys, *argv: str) -> dict:
    assert sampler().main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_a_restic_repository_on_disk_is_ciphertext(capsys, repository):
    record = run(capsys, "--where", "sur site : partages", "--directory", str(repository))
    assert record["objects_sampled"] >= 3  # data, index, snapshots
    assert record["plaintext_objects"] == [] and record["repository_encrypted"] is True


def test_a_plaintext_file_in_the_repository_is_named(capsys, repository, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(repository, copy)
    pack = next(p for p in (copy / "data").rglob("*") if p.is_file())
    pack.write_text("Patient 1: compte rendu opératoire.\n" * 200)
    record = run(capsys, "--where", "sur site : partages", "--directory", str(copy), "--samples", "1000")
    assert record["plaintext_objects"] == [pack.relative_to(copy).as_posix()]


def test_the_offsite_objects_are_sampled_and_reach_the_report(
    capsys, repository, inventory, results, now, monkeypatch
):
    moto = pytest.importorskip("moto")
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-3")
        s3.create_bucket(Bucket="offsite", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
        for path in repository.rglob("*"):
            if path.is_file():
                s3.put_object(Bucket="offsite", Key=f"partages/{path.relative_to(repository).as_posix()}",
                              Body=path.read_bytes())  # fmt: skip
        record = run(capsys, "--where", "hors site : partages", "--bucket", "offsite", "--prefix", "partages",
                     "--region", "eu-west-3")  # fmt: skip
    assert record["objects_sampled"] >= 3 and record["plaintext_objects"] == []
    (results / "encryption").mkdir()
    (results / "encryption" / "offsite-partages.json").write_text(json.dumps(record))
    _, document = generate(inventory, results, now.__class__.fromisoformat(record["checked_at"]))
    hds03 = requirement(document, "HDS-03")
    assert hds03["status"] == "conforme", hds03
    assert "hors site : partages" in hds03["evidence"] and "0 en clair" in hds03["evidence"]


def test_ciphertext_that_starts_like_json_is_not_plaintext_but_json_is():
    """restic's files begin with a random IV: about 1 in 128 starts with "{" or "["; the judgement must not rest on
    one byte (a demo report once named a small encrypted snapshot object "en clair")."""
    module = sampler()
    for first in (b"{", b"[", b"\x1f\x8b"):
        for size in (200, 600, 70000):
            assert not module.plaintext(first + os.urandom(size)), (first, size)
    assert module.plaintext(b'{"time":"2026-12-06T08:00:00Z","tree":"ab12","paths":["/srv"]}')
    assert module.plaintext(b"[" + b'{"id": 1, "nom": "Dupont"}, ' * 20 + b"]")
    assert module.plaintext(b"\x1f\x8b\x08\x00" + os.urandom(100))  # a gzip stream is not restic's format
