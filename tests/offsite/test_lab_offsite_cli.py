"""`rempart-lab offsite up|status|down` end to end on 127.0.0.1: a copy of the lab inventory whose network is
127.0.0.0/24 (so the stand-in binds the loopback's 127.0.0.1), the Pulumi program's bucket made on it, the
program's outputs written into the inventory, a second `up` changes nothing, `down` stops the server."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import boto3
import yaml
from botocore.config import Config
from moto_servers import free_port

from rempart.offsite.outputs import OUTPUTS_FILE
from rempart.offsite.verify import verify
from rempart_lab.cli import main
from rempart_lab.containers import load_lab
from rempart_lab.offsite import CLEAR_SECRETS_FILE, state_path

ROOT = Path(__file__).resolve().parents[2]


def loopback_inventory(tmp_path: Path) -> Path:
    inventory = tmp_path / "inventory"
    shutil.copytree(
        ROOT / "inventories" / "lab",
        inventory,
        ignore=shutil.ignore_patterns("offsite_outputs.yml", "vault.yml"),
    )  # the working copy's vault (make lab-vault) is encrypted with a password this test does not hold
    (inventory / "group_vars/all/vault_offsite.yml").unlink(missing_ok=True)
    lab_vars = inventory / "group_vars/all/lab.yml"
    data = yaml.safe_load(lab_vars.read_text())
    data["lab_network"] = {"name": f"rempart-test-{os.urandom(3).hex()}", "subnet": "127.0.0.0/24",
                           "mirror_address": "127.0.0.5"}  # fmt: skip
    lab_vars.write_text(yaml.safe_dump(data))
    hosts = inventory / "hosts.yml"
    text = hosts.read_text().replace("ansible_host: 10.89.60.", "ansible_host: 127.0.0.")
    hosts.write_text(text)
    return inventory


def test_up_writes_the_programs_outputs_then_down(tmp_path, capsys):
    inventory = loopback_inventory(tmp_path)
    port = str(free_port())
    lab = load_lab(inventory)
    try:
        assert main(["offsite", "up", "--inventory", str(inventory), "--port", port]) == 0
        first = capsys.readouterr().out
        assert f"moto (strict) started on http://127.0.0.1:{port}" in first
        public = yaml.safe_load((inventory / OUTPUTS_FILE).read_text())
        secrets = yaml.safe_load((inventory / CLEAR_SECRETS_FILE).read_text())
        bucket = public["offsite_bucket"]
        assert bucket.startswith("rempart-340999903-offsite-") and f"bucket {bucket} created" in first
        assert public["offsite_endpoint"] == f"http://127.0.0.1:{port}"
        assert public["offsite_log_bucket"].startswith("rempart-340999903-offsite-logs-")
        assert (
            public["offsite_restic_repositories"]["partages"]
            == f"s3:http://127.0.0.1:{port}/{bucket}/partages"
        )
        assert (inventory / CLEAR_SECRETS_FILE).stat().st_mode & 0o077 == 0
        restore = boto3.client(
            "s3", endpoint_url=public["offsite_endpoint"], region_name="eu-west-3",
            aws_access_key_id=public["offsite_restore_access_key_id"],
            aws_secret_access_key=secrets["vault_offsite_restore_secret_access_key"],
            config=Config(s3={"addressing_style": "path"}),
        )  # fmt: skip
        assert verify(restore, bucket, public["offsite_retention_days"], None, probe=False) == []

        assert main(["offsite", "up", "--inventory", str(inventory), "--port", port]) == 0
        assert "up to date, nothing changed" in capsys.readouterr().out
        assert main(["offsite", "status", "--inventory", str(inventory)]) == 0
        assert bucket in capsys.readouterr().out

        old = json.loads(state_path(lab).read_text())  # a stand-in left by an earlier version (no outputs)
        state_path(lab).write_text(json.dumps({k: v for k, v in old.items() if k != "outputs"}))
        assert main(["offsite", "up", "--inventory", str(inventory), "--port", port]) == 0
        again = capsys.readouterr().out
        assert "moto (strict) started" in again and "created" in again  # afresh: IAM names would clash
    finally:
        assert main(["offsite", "down", "--inventory", str(inventory)]) == 0
    assert not state_path(lab).exists()
    capsys.readouterr()
    assert main(["offsite", "status", "--inventory", str(inventory)]) == 0
    assert "not running" in capsys.readouterr().out
