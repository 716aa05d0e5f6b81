"""The ransomware drill's attacker (roles/ransomware_drill/files/rempart_ransomware.py), one test per attack step,
with its hands (psql, restic, HTTP, TCP, SSH) replaced: what each step does and how it judges its own attempts.
The real attack runs in molecule/proof (tests/test_4_ransomware.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PROGRAM = Path(__file__).resolve().parents[2] / "roles/ransomware_drill/files/rempart_ransomware.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rempart_ransomware_under_test", PROGRAM)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def attacker() -> ModuleType:
    return load()


def done(stdout: str = "", rc: int = 0, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], rc, stdout, stderr)


def test_encrypt_overwrites_every_file_leaves_a_note_and_drops_each_database(
    attacker: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = tmp_path / "partages"
    (share / "service").mkdir(parents=True)
    for i in range(3):
        (share / "service" / f"doc-{i}.txt").write_text(f"patient {i}")
    sql: list[tuple[str, str]] = []
    monkeypatch.setattr(attacker, "psql", lambda database, text: sql.append((database, text)) or done())
    spec = {"files": [{"name": "partages", "paths": [str(share)]}], "databases": [{"database": "dpi"}]}
    before = attacker.baseline({"files": spec["files"]})
    result = attacker.encrypt(spec)
    assert result == {"files_encrypted": 3, "databases_dropped": ["dpi"]}
    assert (share / "LISEZ-MOI-RANCON.txt").read_text(encoding="utf-8") == attacker.NOTE
    after = attacker.baseline({"files": spec["files"]})
    assert all(after["files"][path] != digest for path, digest in before["files"].items())
    assert sql[0] == ("postgres", 'DROP DATABASE IF EXISTS "dpi" WITH (FORCE)')


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (b"RESTIC_PASSWORD=Zk3v9Qw1xY7", True),
        (b"export AWS_SECRET_ACCESS_KEY='abcdefgh12345678'", True),
        (b"aws_secret_access_key: abcdefgh12345678", True),
        (b"RESTIC_PASSWORD=", False),  # a name without a value (documentation, templates)
        (b"RESTIC_PASSWORD=short", False),
    ],
)
def test_hunt_recognises_a_credential_value_at_rest(attacker: ModuleType, line: bytes, found: bool) -> None:
    assert bool(attacker.CREDENTIAL_PATTERN.search(line + b"\n")) is found


def test_attack_outside_a_job_judges_each_attempt_by_the_answer(
    attacker: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        attacker, "hunt",
        lambda: {"secrets": [], "ssh_keys": ["/root/.ssh/id_ed25519"], "cloud_files": [], "process_env": []},
    )  # fmt: skip
    monkeypatch.setattr(attacker.os.path, "exists", lambda path: True)
    commands: list[tuple[str, ...]] = []

    def run(*args: str, **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(args)
        return done(rc=1, stderr="Fatal: unable to open config file: 401 Unauthorized")

    monkeypatch.setattr(attacker, "run", run)
    # the server's repository port answers a POST (a failure of the drill), everything else is refused
    monkeypatch.setattr(
        attacker,
        "http",
        lambda url, method, **_: "200" if url.endswith(":8443/") and method == "POST" else "401",
    )
    monkeypatch.setattr(attacker, "tcp_open", lambda host, port: port in (22, 8443))
    spec = {"server": "10.0.0.5", "rest_port": 8443, "ports": {"partages": 18100},
            "offsite_endpoint": "https://s3.example", "offsite_bucket": "b"}  # fmt: skip
    attempts = {a["action"]: a for a in attacker.attack(spec)}
    assert attempts["search the host for backup and cloud credentials at rest"]["outcome"] == "refused"
    assert (
        attempts["restic forget --prune on partages outside a job (no credential found)"]["outcome"]
        == "refused"
    )
    assert (
        attempts["HTTP DELETE partages/config on the tunnel port 18100 outside a job"]["outcome"] == "refused"
    )
    assert (
        attempts["HTTP POST on the backup server's repository port 10.0.0.5:8443"]["outcome"] == "succeeded"
    )
    scan = attempts["scan 10.0.0.5 for a file service (rsync, NFS, SMB, iSCSI, FTP, HTTP)"]
    assert scan["outcome"] == "succeeded" and scan["detail"] == "open: [22, 8443]"  # 8443 is more than SSH
    ssh = next(a for action, a in attempts.items() if action.startswith("SSH to 10.0.0.5"))
    assert ssh["outcome"] == "refused" and ssh["detail"] == "every login refused"
    assert sum(1 for c in commands if c[0] == "ssh") == 4  # one key, four users
    assert attempts["delete the offsite bucket https://s3.example with the credentials found (none)"][
        "outcome"
    ] == ("refused")


def test_inflight_attack_with_stolen_credentials_is_refused_when_the_snapshots_stay(
    attacker: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = json.dumps([{"id": "a"}, {"id": "b"}])
    monkeypatch.setattr(
        attacker, "run",
        lambda *args, **_: done(listed) if "snapshots" in args else done(rc=1, stderr="Fatal: append-only"),
    )  # fmt: skip
    urls: list[tuple[str, str]] = []
    monkeypatch.setattr(attacker, "http", lambda url, method, *a, **k: urls.append((method, url)) or "403")
    monkeypatch.setenv("RESTIC_REPOSITORY", "rest:https://127.0.0.1:18100/partages/")
    monkeypatch.setenv("RESTIC_REST_USERNAME", "partages")
    out = tmp_path / "inflight.json"
    attacker.inflight(str(out))
    attempts = json.loads(out.read_text(encoding="utf-8"))
    assert not [a for a in attempts if a["outcome"] != "refused"]
    forget = attempts[0]
    assert forget["action"] == "restic forget --prune of all 2 snapshot(s) with the stolen credentials"
    assert "2 snapshot(s) still listed" in forget["detail"]
    assert ("DELETE", "https://127.0.0.1:18100/partages/snapshots/a") in urls
    assert ("POST", "https://127.0.0.1:18100/partages/config") in urls
    assert ("GET", "https://127.0.0.1:18100/") in urls  # the other repositories


def test_unplant_collects_what_the_wrapper_did_inside_each_job(
    attacker: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attacker, "STOLEN", tmp_path)
    monkeypatch.setattr(attacker, "WRAPPER_DIR", tmp_path / "wrapper")
    (tmp_path / "wrapper").mkdir()
    for job in (1, 2):
        (tmp_path / f"inflight-{job}.json").write_text(
            json.dumps([{"action": f"job {job}"}]), encoding="utf-8"
        )
    if Path("/usr/bin/restic.real").exists():
        pytest.skip("a planted wrapper on this machine: unplant would put it back")
    assert attacker.unplant() == {"attempts": [{"action": "job 1"}, {"action": "job 2"}]}
    assert not list(tmp_path.glob("inflight-*")) and not (tmp_path / "wrapper").exists()
