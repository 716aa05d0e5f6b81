"""Every program that opens a dataset's repository on the backup server selects the server's own key (issue 15,
item 1): restic then tries that key first and reads no other key file, so a key file a client planted during
its job (malformed, or with absurd scrypt parameters) is never tried, whatever order the folder lists in.
Through rest-server a malformed key stopped every restic access; on the local backend restic 0.14 and 0.18
skip it, so these tests check that each program hands restic the server's key, with a planted file present:
the job and admin (rempart_backup_server.config.key_hint), the offsite copy (on-site side), the offline copy
(on-site side) and the restore drill's restore unit. Real restic, real repositories."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import rempart_offline_copy as offline
import rempart_offsite_copy as offsite
import rempart_restore_drill as drill
from rempart_backup_server import __main__ as cli
from rempart_backup_server import config as server_config
from rempart_backup_server.admission import server_key

RESTIC = os.environ.get("REMPART_TEST_RESTIC") or "/usr/bin/restic"
PASSWORD = "pw-0123456789"
PLANTED = "0" * 64  # sorts before every real key id


@pytest.fixture
def server(tmp_path, monkeypatch):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("données\n")
    config = {
        "user": "root",
        "datasets": {"classeur": {"host": socket.gethostname(), "kind": "files", "paths": [str(source)]}},
        "repos_dir": str(tmp_path / "repos"),
        "secrets_dir": str(tmp_path / "secrets"),
        "state_dir": str(tmp_path / "state"),
        "metrics_dir": str(tmp_path / "metrics"),
        "restic": RESTIC,
    }
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "classeur.json").write_text(json.dumps({"repository_password": PASSWORD}))
    monkeypatch.setattr(cli, "load_config", lambda: config)
    assert cli.main(["init", "classeur"]) == 0  # the server's key joins the allowlist
    env = server_config.restic_env(config, "classeur")
    subprocess.run([RESTIC, "backup", "-q", str(source)], env=env, check=True, capture_output=True)
    planted = tmp_path / "repos" / "classeur" / "keys" / PLANTED
    planted.write_text('{"not": "a key"}')  # what a compromised client posts to keys/ during its job
    return config, tmp_path


def restic_snapshots(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RESTIC, "snapshots", "--json", "--no-lock", "--no-cache"], env=env, capture_output=True, text=True
    )


def test_the_server_key_is_the_allowlisted_one_never_a_planted_file(server):
    config, _ = server
    key = server_key(config["state_dir"], "classeur", Path(config["repos_dir"]) / "classeur")
    assert key and key != PLANTED
    assert server_config.key_hint(config, "classeur") == ["--key-hint", key]
    hinted = restic_snapshots({**server_config.restic_env(config, "classeur"), "RESTIC_KEY_HINT": key})
    assert hinted.returncode == 0, hinted.stderr


def test_the_offsite_copy_opens_the_on_site_repository_with_the_server_key(server):
    config, tmp_path = server
    offsite_config = {
        "local_secrets_dir": config["secrets_dir"],
        "server_state_dir": config["state_dir"],
        "state_dir": str(tmp_path / "offsite"),
        "region": "eu-west-3",
        "datasets": {"classeur": {"local": str(tmp_path / "repos" / "classeur"), "offsite": "s3:unused"}},
    }
    writer = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
    env = offsite.restic_env(offsite_config, "classeur", writer)
    assert env["RESTIC_FROM_KEY_HINT"] != PLANTED
    snapshots = offsite._snapshots({**env, "RESTIC_CACHE_DIR": str(tmp_path / "cache")}, local=True)
    assert len(snapshots) == 1


def test_the_offline_copy_opens_the_on_site_repository_with_the_server_key(server):
    config, tmp_path = server
    offline_config = {
        "repos_dir": config["repos_dir"],
        "secrets_dir": config["secrets_dir"],
        "server_state_dir": config["state_dir"],
        "state_dir": str(tmp_path / "offline"),
        "datasets": {"classeur": {"criticality": "important"}},
    }
    on_site = Path(config["repos_dir"]) / "classeur"
    medium = tmp_path / "medium" / "repos" / "classeur"
    assert offline.raw_size(offline_config, "classeur", on_site) > 0  # read on site, through the hint
    medium_env = offline.restic_env(offline_config, "classeur", medium)
    assert medium_env["RESTIC_FROM_KEY_HINT"] == server_key(config["state_dir"], "classeur", on_site)
    assert "RESTIC_KEY_HINT" not in medium_env  # the medium's repository has its own key
    offline.restic(
        offline_config, "classeur", medium, "init", "--from-repo", str(on_site), "--copy-chunker-params"
    )
    offline.restic(offline_config, "classeur", medium, "copy", "--from-repo", str(on_site))
    assert len(json.loads(offline.restic(offline_config, "classeur", medium, "snapshots", "--json"))) == 1


def test_the_restore_drill_unit_gets_the_server_key(server, tmp_path, monkeypatch, capsys):
    config, _ = server
    server_view = {"repos_dir": config["repos_dir"], "secrets_dir": config["secrets_dir"],
                   "state_dir": config["state_dir"]}  # fmt: skip
    drill_config = {"server_user": "rempart", "metrics_dir": str(tmp_path / "metrics")}
    properties = drill.restore_properties(drill_config, server_view, "classeur", tmp_path / "target")
    key = server_key(config["state_dir"], "classeur", Path(config["repos_dir"]) / "classeur")
    assert f"Environment=RESTIC_KEY_HINT={key}" in properties
    # what the transient unit runs, with the environment that property gives it
    monkeypatch.setenv("RESTIC_KEY_HINT", key)
    target = tmp_path / "target"
    target.mkdir()
    secrets = Path(config["secrets_dir"]) / "classeur.json"
    rc = drill.restore_unit(
        RESTIC, str(Path(config["repos_dir"]) / "classeur"), str(secrets), "latest", str(target), None
    )
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0, answer["stderr"]
    assert any(path.endswith("/a.txt") for path in answer["files"])
