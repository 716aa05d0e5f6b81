"""`rempart offsite-outputs`: stack outputs -> inventory variables, secrets only in the vault."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from pulumi_harness import ROOT, STACKS

import pulumi
from rempart.commands.cli import main
from rempart.offsite.outputs import PUBLIC, SECRET
from rempart.vault.secrets import _vault

LAB_FINESS = "340999903"


def stack_json(tmp_path, **changes):
    outputs = {
        "finess": LAB_FINESS,
        "region": "eu-west-3",
        "endpoint": "https://s3.eu-west-3.amazonaws.com",
        "bucket": "rempart-340999903-offsite-0123abcd",
        "retention_days": 30,
        "retention_cap_days": 60,
        "restic_repositories": {
            "partages": "s3:s3.eu-west-3.amazonaws.com/rempart-340999903-offsite-0123abcd/partages"
        },
        "writer_access_key_id": "AKIAWRITER",
        "writer_secret_access_key": "writer-secret-value",
        "restore_access_key_id": "AKIARESTORE",
        "restore_secret_access_key": "restore-secret-value",
        "kms_key_arn": None,
    } | changes
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(outputs))
    return path


@pytest.fixture
def inventory(tmp_path):
    target = tmp_path / "inventories" / "lab"
    shutil.copytree(  # without what a running lab generated (vault, outputs)
        ROOT / "inventories" / "lab",
        target,
        ignore=shutil.ignore_patterns("vault*.yml", "offsite_outputs.yml"),
    )
    (target / "group_vars/all/vault.yml").unlink(missing_ok=True)
    return target


def test_public_values_to_group_vars_and_secrets_to_vault(tmp_path, inventory, capsys):
    password = tmp_path / "vault-pass"
    code = main(
        [
            "offsite-outputs",
            "--stack-json",
            str(stack_json(tmp_path)),
            "--inventory",
            str(inventory),
            "--vault-password-file",
            str(password),
        ]
    )
    assert code == 0, capsys.readouterr().err
    public_text = (inventory / "group_vars/all/offsite_outputs.yml").read_text()
    public = yaml.safe_load(public_text)
    assert public["offsite_bucket"] == "rempart-340999903-offsite-0123abcd"
    assert public["offsite_retention_days"] == 30
    assert public["offsite_writer_access_key_id"] == "AKIAWRITER"
    assert "secret-value" not in public_text
    vault_bytes = (inventory / "group_vars/all/vault.yml").read_bytes()
    assert b"secret-value" not in vault_bytes and vault_bytes.startswith(b"$ANSIBLE_VAULT")
    secrets = yaml.safe_load(_vault(password).decrypt(vault_bytes))
    assert secrets["vault_offsite_writer_secret_access_key"] == "writer-secret-value"
    assert secrets["vault_offsite_restore_secret_access_key"] == "restore-secret-value"
    assert oct((inventory / "group_vars/all/vault.yml").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"finess": "560999807"}, "wrong stack selected"),
        ({"writer_secret_access_key": "[secret]"}, "--show-secrets"),
        ({"bucket": None}, "lack bucket"),
    ],
)
def test_refusals(tmp_path, inventory, capsys, changes, message):
    code = main(
        [
            "offsite-outputs",
            "--stack-json",
            str(stack_json(tmp_path, **changes)),
            "--inventory",
            str(inventory),
            "--vault-password-file",
            str(tmp_path / "pass"),
        ]
    )
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (inventory / "group_vars/all/offsite_outputs.yml").exists()


def test_secrets_need_a_vault(tmp_path, inventory, capsys):
    assert (
        main(["offsite-outputs", "--stack-json", str(stack_json(tmp_path)), "--inventory", str(inventory)])
        == 1
    )
    assert "--vault-password-file" in capsys.readouterr().err
    code = main(
        [
            "offsite-outputs",
            "--stack-json",
            str(stack_json(tmp_path)),
            "--inventory",
            str(inventory),
            "--skip-secrets",
        ]
    )
    assert code == 0
    assert not (inventory / "group_vars/all/vault.yml").exists()


@pulumi.runtime.test
def test_program_exports_exactly_what_the_glue_reads(mocks):
    import program

    establishment = program.load_establishment(STACKS["lab"])
    vault = program.build(establishment)
    assert set(program.stack_outputs(establishment, vault)) == set(PUBLIC) | set(SECRET)
    return pulumi.Output.all(*[r.urn for r in vault.resources])
