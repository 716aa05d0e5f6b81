"""Admission against the attacks of issue 15 made the way a compromised client makes them: through rest-server
(--append-only --private-repos, on 127.0.0.1) with the job's own credentials, one attack per job, each followed
by a clean job. rest-server and restic come from the lab's Debian packages (.lab/repo, `make lab-image`) or from
REMPART_TEST_REST_SERVER / REMPART_TEST_RESTIC."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from rempart_backup_server.admission import Admission, Expected
from rempart_host.restic import Restic

ROOT = Path(__file__).resolve().parents[2]


def lab_binary(package: str, name: str, tmp: Path) -> str | None:
    debs = sorted((ROOT / ".lab" / "repo").glob(f"{package}_*.deb"))
    if not debs:
        return None
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], check=True)
    return str(tmp / "usr" / "bin" / name)


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("debs")
    server = os.environ.get("REMPART_TEST_REST_SERVER") or shutil.which("restic-rest-server") or lab_binary(
        "restic-rest-server", "restic-rest-server", folder)  # fmt: skip
    restic = (
        os.environ.get("REMPART_TEST_RESTIC")
        or lab_binary("restic", "restic", folder)
        or shutil.which("restic")
    )
    if not server or not restic:
        pytest.skip("no rest-server: run `make lab-image` (its .lab/repo holds the Debian package)")
    return server, restic


class Lab:
    """rest-server on a free 127.0.0.1 port, the client's restic through it, the server's admission on disk."""

    def __init__(self, tmp: Path, server: str, restic: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        token = base64.b64encode(hashlib.sha1(b"http-pw").digest()).decode()
        (tmp / "htpasswd").write_text(f"partages:{{SHA}}{token}\n")
        (tmp / "repos").mkdir()
        self.process = subprocess.Popen(
            [server, "--path", str(tmp / "repos"), "--listen", f"127.0.0.1:{port}", "--htpasswd-file",
             str(tmp / "htpasswd"), "--append-only", "--private-repos"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{port}/partages"
        self.restic, self.source = restic, tmp / "src"
        self.source.mkdir()
        (self.source / "compte-rendu.txt").write_text("CR\n")
        self.client_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "RESTIC_REPOSITORY": f"rest:{self.base}/",
                           "RESTIC_REST_USERNAME": "partages", "RESTIC_REST_PASSWORD": "http-pw",
                           "RESTIC_PASSWORD": "pw", "RESTIC_CACHE_DIR": str(tmp / "client-cache")}  # fmt: skip
        for _ in range(50):
            if self.client("init").returncode == 0:
                break
            time.sleep(0.1)
        server_env = {**self.client_env, "RESTIC_REPOSITORY": str(tmp / "repos/partages"),
                      "RESTIC_CACHE_DIR": str(tmp / "server-cache")}  # fmt: skip
        self.gate = Admission(
            tmp / "repos/partages", tmp / "state/a.sqlite", tmp / "state/q", Restic(restic, server_env)
        )
        self.gate.record_current("init")
        self.server_env = server_env

    def client(self, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self.restic, *args], input=data, env=self.client_env, capture_output=True, timeout=120
        )

    def http(self, method: str, path: str, data: bytes | None = None, accept: str = "") -> tuple[int, bytes]:
        auth = base64.b64encode(b"partages:http-pw").decode()
        headers = {"Authorization": f"Basic {auth}", **({"Accept": accept} if accept else {})}
        request = urllib.request.Request(f"{self.base}/{path}", data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()

    def job(self, attack: str = ""):
        started = time.time()
        with (self.source / "compte-rendu.txt").open("a") as handle:
            handle.write(f"{attack}\n")
        assert self.client("backup", "-q", "--host", "files-01", str(self.source)).returncode == 0
        if attack:
            ATTACKS[attack](self)
        return self.gate.judge(Expected("files-01", [str(self.source)], started, time.time()), job_ok=True)


def garbage_index(lab: Lab) -> None:
    data = os.urandom(300)
    assert lab.http("POST", f"index/{hashlib.sha256(data).hexdigest()}", data)[0] == 200


def malformed_key(lab: Lab) -> None:
    listing = lab.http("GET", "keys/", accept="application/vnd.x.restic.rest.v2")[1]
    first, n = min(k["name"] for k in json.loads(listing)), 0
    while hashlib.sha256(json.dumps({"not": "a key", "n": n}).encode()).hexdigest() >= first:
        n += 1
    data = json.dumps({"not": "a key", "n": n}).encode()
    assert lab.http("POST", f"keys/{hashlib.sha256(data).hexdigest()}", data)[0] == 200
    assert lab.client("snapshots").returncode != 0  # what it does: restic's key search stops on it


def planted_snapshot(lab: Lab) -> None:
    planted = lab.client(
        "backup", "-q", "--host", "files-01", "--time", "2099-01-01 00:00:00", str(lab.source)
    )
    assert planted.returncode == 0


def sub_repository(lab: Lab) -> None:
    assert lab.http("POST", "x/?create=true", b"")[0] == 200


def forged_index(lab: Lab) -> None:
    lab.client("repair", "index")  # uploads an index of every pack, then fails to delete the old ones (403)


ATTACKS = {garbage_index.__name__: garbage_index, malformed_key.__name__: malformed_key,
           planted_snapshot.__name__: planted_snapshot, sub_repository.__name__: sub_repository,
           forged_index.__name__: forged_index}  # fmt: skip
EXPECTED = {"garbage_index": {"index-unreadable"}, "malformed_key": {"foreign-key"},
            "planted_snapshot": {"snapshot-forged-time"}, "sub_repository": {"unexpected-entry"},
            "forged_index": {"index-duplicate-pack", "index-foreign-pack", "index-supersedes"}}  # fmt: skip


def test_each_attack_through_rest_server_is_quarantined_and_the_next_job_is_clean(binaries, tmp_path: Path):
    lab = Lab(tmp_path, *binaries)
    try:
        assert lab.job().rejected == []
        for attack, expected in EXPECTED.items():
            verdict = lab.job(attack)
            whys = {r.why.split(":")[0] for r in verdict.rejected}
            assert verdict.snapshot and whys and whys <= expected and verdict.attack, (
                attack,
                verdict.rejected,
            )
            clean = lab.job()
            assert clean.snapshot and clean.rejected == [], (attack, clean.rejected)
        checked = subprocess.run([lab.restic, "check"], env=lab.server_env, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
    finally:
        lab.process.terminate()
        lab.process.wait()
