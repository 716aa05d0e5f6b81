"""The tested set of Debian packages (rempart/model/tested_set.py): a real flat mirror made by dpkg-deb and
dpkg-scanpackages, as lab/build-image.sh makes the lab's, compared with the recorded set."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rempart.commands.cli import main
from rempart.model.tested_set import TESTED_SET, compare_installed, compare_mirror, read_mirror, read_tested

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-scanpackages") is None, reason="dpkg-dev (lab/host-setup.sh)"
)


def deb(folder: Path, name: str, version: str, payload: str = "") -> None:
    root = folder / f"build-{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr" / "share" / name).mkdir(parents=True)
    (root / "usr" / "share" / name / "payload").write_text(payload or version)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        f"Description: test package\n"
    )
    subprocess.run(["dpkg-deb", "-Zgzip", "--build", str(root), str(folder / f"{name}_{version}_all.deb")],
                   check=True, capture_output=True)  # fmt: skip
    shutil.rmtree(root)


def scan(folder: Path) -> None:
    index = subprocess.run(
        ["dpkg-scanpackages", "-m", "."], cwd=folder, capture_output=True, text=True, check=True
    )
    (folder / "Packages").write_text(index.stdout)


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    deb(folder, "restic", "0.18.0-1")
    deb(folder, "restic-rest-server", "0.13.0-1")
    scan(folder)
    return folder


def test_a_mirror_recorded_as_tested_has_no_difference(mirror, tmp_path, capsys):
    tested = tmp_path / "tested.txt"
    assert main(["tested-set", "record", "--mirror", str(mirror), "--tested", str(tested)]) == 0
    assert read_tested(tested) == read_mirror(mirror)
    assert main(["tested-set", "compare", "--mirror", str(mirror), "--tested", str(tested), "--strict"]) == 0
    assert "no difference" in capsys.readouterr().out


def test_every_drift_is_reported_and_none_refuses_the_build(mirror, tmp_path, capsys):
    tested = tmp_path / "tested.txt"
    main(["tested-set", "record", "--mirror", str(mirror), "--tested", str(tested)])
    for old in mirror.glob("restic_*.deb"):
        old.unlink()
    deb(mirror, "restic", "0.18.1-1")  # a point release replaced the tested one
    (mirror / "restic-rest-server_0.13.0-1_all.deb").unlink()
    deb(mirror, "restic-rest-server", "0.13.0-1", payload="rebuilt")  # same version, other bytes
    deb(mirror, "jq", "1.6-2.1")  # a new dependency
    scan(mirror)
    differences = compare_mirror(read_tested(tested), read_mirror(mirror))
    assert [(d.name, d.kind, d.tested, d.found) for d in differences] == [
        ("jq", "untested", "", "1.6-2.1"),
        ("restic", "version", "0.18.0-1", "0.18.1-1"),
        ("restic-rest-server", "checksum", "0.13.0-1", "0.13.0-1"),
    ]
    capsys.readouterr()
    assert main(["tested-set", "compare", "--mirror", str(mirror), "--tested", str(tested)]) == 0
    out = capsys.readouterr().out
    assert "3 difference(s)" in out and "restic: 0.18.1-1 (testé : 0.18.0-1)" in out
    assert main(["tested-set", "compare", "--mirror", str(mirror), "--tested", str(tested), "--strict"]) == 1


def test_a_host_is_judged_on_the_tested_packages_only(tmp_path, capsys):
    tested = read_tested()
    restic = tested["restic"].version
    host = {"restic": restic, "nftables": "0.0-vendor", "vendor-dpi": "9.9"}
    differences = compare_installed(tested, host)
    assert [(d.name, d.tested, d.found) for d in differences] == [
        ("nftables", tested["nftables"].version, "0.0-vendor")
    ]
    path = tmp_path / "host.json"
    path.write_text(json.dumps(host))
    assert main(["tested-set", "compare", "--installed", str(path)]) == 0
    assert "1 difference(s)" in capsys.readouterr().out


def test_the_committed_tested_set_holds_the_backup_software_with_checksums():
    tested = read_tested(TESTED_SET)
    for name in ("restic", "restic-rest-server", "postgresql-client-15", "nftables", "cryptsetup-bin"):
        assert name in tested
        assert len(tested[name].sha256) == 64
    assert tested["restic"].version.startswith("0.18.")
