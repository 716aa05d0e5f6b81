"""`rempart offsite-rotate-writer-key` drives Pulumi (a stand-in `pulumi` on PATH records the calls and answers
the stack outputs) and writes the new key into the inventory, the secret only into the encrypted vault; the
program turns a new rotation into a new writer key (tests/pulumi/test_vault.py)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import yaml

from rempart.commands.cli import main
from rempart.offsite.outputs import OUTPUTS_FILE
from rempart.vault.secrets import VAULT_FILE

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {
    "finess": "340999903", "region": "eu-west-3", "bucket": "rempart-340999903-offsite-x", "retention_days": 30,
    "writer_access_key_id": "AKIANEWWRITER", "writer_secret_access_key": "new-writer-secret",
    "restore_access_key_id": "AKIARESTORE", "restore_secret_access_key": "restore-secret",
}  # fmt: skip
FAKE_PULUMI = """#!{python}
import json, os, sys
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps([os.getcwd(), *sys.argv[1:]]) + "\\n")
if sys.argv[1:3] == ["stack", "output"]:
    print(open(os.environ["FAKE_PULUMI_OUTPUTS"]).read())
"""


def test_rotation_sets_the_generation_runs_up_and_writes_the_inventory(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(FAKE_PULUMI.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "outputs.json").write_text(json.dumps(OUTPUTS))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", str(tmp_path / "outputs.json"))
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventories" / "lab", inventory, ignore=shutil.ignore_patterns("offsite_outputs.yml", "vault*.yml"))  # fmt: skip
    password = tmp_path / "vault-pass"
    password.write_text("test-vault-password\n")

    code = main(["offsite-rotate-writer-key", "--stack", "lab", "--inventory", str(inventory),
                 "--vault-password-file", str(password), "--pulumi-dir", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    calls = [json.loads(line)[1:] for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert calls[0][:5] == ["config", "set", "--stack", "lab", "rempart:writerKeyRotation"]
    assert calls[1][:4] == ["up", "--stack", "lab", "--yes"] and "--policy-pack" in calls[1]
    assert calls[2][:2] == ["stack", "output"] and "--show-secrets" in calls[2]
    public = yaml.safe_load((inventory / OUTPUTS_FILE).read_text())
    assert public["offsite_writer_access_key_id"] == "AKIANEWWRITER"
    vault = (inventory / VAULT_FILE).read_bytes()
    assert vault.startswith(b"$ANSIBLE_VAULT") and b"new-writer-secret" not in vault
    assert "new-writer-secret" not in out
    assert "converge offsite_copy" in out
