"""Per-value vaults (``rempart init-vault --per-value``): what an AWX inventory sync imports (docs/awx.md).

AWX syncs a project inventory source with ``ansible-inventory --list --export -i <source>`` and no vault
password, stores the JSON, and hands a job its inventory as an executable script printing that JSON
(awx/main/tasks/jobs.py, ``RunInventoryUpdate.build_args`` and ``BaseTask.build_inventory``). These tests run
the same ansible-core commands on vaults written by ``rempart init-vault``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rempart.commands.cli import main
from rempart.vault.file import PER_VALUE, WHOLE_FILE, VaultFile, _ciphertext, form_of, read, vault_lib, write
from rempart.vault.secrets import init_vault

BIN = Path(sys.executable).parent
VAULT = Path("group_vars/all/vault.yml")


def lab_copy(project: Path, tmp_path: Path, name: str = "lab") -> Path:
    folder = tmp_path / name
    shutil.copytree(project / f"inventories/{name}", folder, ignore=shutil.ignore_patterns("vault*.yml"))
    return folder


def plain_values(path: Path, password: Path) -> dict[str, Any]:
    return read(path, vault_lib(password), WHOLE_FILE).plain


def leaves(tree: Any) -> list[str]:
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in leaves(value)]
    return [tree] if isinstance(tree, str) else []


def ciphertexts(path: Path, password: Path) -> dict[str, str]:
    stored = read(path, vault_lib(password), PER_VALUE).stored
    return {f"{v}.{k}": _ciphertext(value) for v, keys in stored.items() for k, value in keys.items()}


def ansible(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """An ansible command with no vault password from the environment or a configuration file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env |= {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(cwd / ".ansible-tmp")}
    command = [str(BIN / tool), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.fixture
def password(tmp_path: Path) -> Path:
    return tmp_path / "vault-password"


@pytest.fixture
def per_value(project: Path, tmp_path: Path, password: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The lab inventory with a vault written by ``rempart init-vault --per-value``."""
    folder = lab_copy(project, tmp_path)
    assert main(["init-vault", str(folder), "--vault-password-file", str(password), "--per-value"]) == 0
    printed = capsys.readouterr()
    values = leaves(plain_values(folder / VAULT, password))
    assert len(values) >= 4 and all(value not in printed.out + printed.err for value in values)
    assert "vault_repository_passwords.dpi-postgresql" in printed.out and "(per-value)" in printed.out
    return folder


@pytest.mark.parametrize("export", [True, False], ids=["awx-export", "list"])
def test_a_per_value_vault_imports_without_the_vault_password(per_value, password, tmp_path, export):
    vault_file = per_value / VAULT
    assert form_of(vault_file) == PER_VALUE and oct(vault_file.stat().st_mode & 0o777) == "0o600"
    result = ansible(
        "ansible-inventory", "-i", str(per_value), "--list", *(["--export"] if export else []), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    for value in leaves(plain_values(vault_file, password)):
        assert value not in result.stdout + result.stderr
    listed = json.loads(result.stdout)
    variables = listed["all"]["vars"] if export else next(iter(listed["_meta"]["hostvars"].values()))
    secret = variables["vault_repository_passwords"]["dpi-postgresql"]
    assert set(secret) == {"__ansible_vault"} and secret["__ansible_vault"].startswith(
        "$ANSIBLE_VAULT;1.1;AES256"
    )


def awx_job_inventory(folder: Path, tmp_path: Path) -> Path:
    """Sync as AWX does, then write the job's inventory script as AWX does (``print(<json>)``)."""
    output = tmp_path / "output.json"
    synced = ansible(
        "ansible-inventory", "--list", "--export", "-i", str(folder), "--output", str(output), cwd=tmp_path
    )
    assert synced.returncode == 0, synced.stderr
    script = tmp_path / "hosts"
    script.write_text(f"#! /usr/bin/env python3\nprint({json.dumps(json.loads(output.read_text()))!r})\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IXUSR)
    return script


def test_a_job_with_the_vault_credential_decrypts_what_the_sync_imported(per_value, password, tmp_path):
    script = awx_job_inventory(per_value, tmp_path)
    values = plain_values(per_value / VAULT, password)
    expected = hashlib.sha256(values["vault_repository_passwords"]["dpi-postgresql"].encode()).hexdigest()
    debug = (
        "-m",
        "ansible.builtin.debug",
        "-a",
        "msg={{ vault_repository_passwords['dpi-postgresql'] | hash('sha256') }}",
    )
    job = ansible(
        "ansible",
        "-i",
        str(script),
        "backup-01",
        *debug,
        "--vault-password-file",
        str(password),
        cwd=tmp_path,
    )
    assert job.returncode == 0, job.stdout + job.stderr
    assert expected in job.stdout
    without = ansible("ansible", "-i", str(script), "backup-01", *debug, cwd=tmp_path)
    assert without.returncode != 0 and "no vault secrets found" in without.stdout + without.stderr
    assert values["vault_repository_passwords"]["dpi-postgresql"] not in without.stdout + without.stderr


def test_the_vault_password_decrypts_the_inventory_directly(per_value, password, tmp_path):
    values = plain_values(per_value / VAULT, password)
    debug = "{{ vault_rest_server_passwords.partages | length }}"
    job = ansible(
        "ansible", "-i", str(per_value), "backup-01", "-m", "ansible.builtin.debug", "-a", f"msg={debug}",
        "--vault-password-file", str(password), cwd=tmp_path,
    )  # fmt: skip
    assert job.returncode == 0, job.stdout + job.stderr
    assert f'"msg": {len(values["vault_rest_server_passwords"]["partages"])}' in job.stdout
    assert values["vault_rest_server_passwords"]["partages"] not in job.stdout + job.stderr


def test_a_whole_file_vault_makes_the_sync_fail(project, tmp_path, password):
    """Why AWX needs the per-value form: it cannot attach a vault credential to a project inventory source."""
    folder = lab_copy(project, tmp_path)
    init_vault(folder, password)
    assert form_of(folder / VAULT) == WHOLE_FILE
    result = ansible("ansible-inventory", "--list", "--export", "-i", str(folder), cwd=tmp_path)
    assert result.returncode != 0
    assert "Attempting to decrypt but no vault secrets found" in result.stderr
    decrypted = ansible(
        "ansible-inventory", "--list", "-i", str(folder), "--vault-password-file", str(password), cwd=tmp_path
    )
    assert decrypted.returncode == 0, decrypted.stderr
    secret = plain_values(folder / VAULT, password)["vault_repository_passwords"]["partages"]
    assert secret in decrypted.stdout  # a sync given the password would store the secrets in clear in AWX


def test_a_second_run_adds_only_the_missing_values_and_keeps_the_others_byte_identical(per_value, password):
    vault_file = per_value / VAULT
    first = vault_file.read_bytes()
    assert init_vault(per_value, password, PER_VALUE) == []
    assert vault_file.read_bytes() == first
    vault = vault_lib(password)
    current = read(vault_file, vault, PER_VALUE)
    del current.stored["vault_rest_server_passwords"]["partages"]
    write(current, vault)
    kept = ciphertexts(vault_file, password)
    assert init_vault(per_value, password, PER_VALUE) == ["vault_rest_server_passwords.partages"]
    after = ciphertexts(vault_file, password)
    assert {k: after[k] for k in kept} == kept and "vault_rest_server_passwords.partages" in after
    text = vault_file.read_text()
    assert all(block.strip().replace("\n", "\n    ") in text for block in kept.values())


def test_an_existing_whole_file_vault_keeps_its_form_until_converted(project, tmp_path, password, capsys):
    folder = lab_copy(project, tmp_path)
    init_vault(folder, password)
    vault_file = folder / VAULT
    before, values = vault_file.read_bytes(), plain_values(vault_file, password)
    assert main(["init-vault", str(folder), "--vault-password-file", str(password), "--per-value"]) == 0
    assert vault_file.read_bytes() == before  # never re-encrypted behind the user's back
    assert "--per-value --convert" in capsys.readouterr().out
    assert (
        main(["init-vault", str(folder), "--vault-password-file", str(password), "--per-value", "--convert"])
        == 0
    )
    printed = capsys.readouterr()
    assert form_of(vault_file) == PER_VALUE and plain_values(vault_file, password) == values
    assert all(value not in printed.out + printed.err for value in leaves(values))


def test_a_wrong_password_is_refused_before_any_value_is_added(per_value, tmp_path, capsys):
    other = tmp_path / "other-password"
    other.write_text("not the password\n")
    vault_file = per_value / VAULT
    before = vault_file.read_bytes()
    assert main(["init-vault", str(per_value), "--vault-password-file", str(other), "--per-value"]) == 1
    error = capsys.readouterr().err
    assert "does not decrypt with this vault password file" in error and "vault_" in error
    assert vault_file.read_bytes() == before


def test_each_establishment_of_a_ght_imports_without_the_password(project, tmp_path, password):
    folder = lab_copy(project, tmp_path, "ght-lab")
    added = init_vault(folder, password, PER_VALUE)
    assert any(a.startswith("ch_nord: ") for a in added) and any(a.startswith("ch_sud: ") for a in added)
    result = ansible("ansible-inventory", "--list", "--export", "-i", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    for group in ("ch_nord", "ch_sud", "ch_centre"):
        secrets = listed[group]["vars"]["vault_repository_passwords"]
        assert all(set(value) == {"__ansible_vault"} for value in secrets.values())
        for value in leaves(plain_values(folder / "group_vars" / group / "vault.yml", password)):
            assert value not in result.stdout


def test_offsite_keys_keep_the_per_value_form(per_value, password):
    from rempart.offsite.outputs import write_secrets

    vault_file = per_value / VAULT
    kept = ciphertexts(vault_file, password)
    write_secrets(per_value, password, {"vault_offsite_writer_secret_access_key": "offsite-secret-for-test"})
    assert form_of(vault_file) == PER_VALUE and "offsite-secret-for-test" not in vault_file.read_text()
    assert (
        plain_values(vault_file, password)["vault_offsite_writer_secret_access_key"]
        == "offsite-secret-for-test"
    )
    after = read(vault_file, vault_lib(password), PER_VALUE)
    assert {k: _ciphertext(after.stored[k.split(".")[0]][k.split(".")[1]]) for k in kept} == kept


def test_new_establishment_can_write_a_per_value_vault(tmp_path, password, capsys):
    arguments = [
        "new-establishment",
        "--finess",
        "340999903",
        "--name",
        "CH de Test",
        "--inventories",
        str(tmp_path),
    ]
    assert main([*arguments, "--vault-password-file", str(password), "--per-value"]) == 0
    vault_file = tmp_path / "ch-de-test" / VAULT
    printed = capsys.readouterr()
    assert form_of(vault_file) == PER_VALUE and "(per-value)" in printed.out
    values = leaves(plain_values(vault_file, password))
    assert values and all(value not in printed.out + printed.err for value in values)


def test_the_vault_file_round_trips_through_ansibles_dumper(tmp_path, password):
    password.write_text("round-trip\n")
    vault = vault_lib(password)
    vault_file = VaultFile(tmp_path / "vault.yml", PER_VALUE)
    vault_file.put(vault, "line one\nline two\n", "vault_multi", "pem")
    vault_file.put(vault, "x", "vault_top")
    write(vault_file, vault)
    assert "vault_top: !vault |" in vault_file.path.read_text()
    assert read(vault_file.path, vault, WHOLE_FILE).plain == {
        "vault_multi": {"pem": "line one\nline two\n"},
        "vault_top": "x",
    }


def validate(project: Path, folder: Path, password: Path) -> subprocess.CompletedProcess[str]:
    """playbooks/validate.yml (localhost only, no host contacted) as a job template runs it: vault password given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env |= {
        "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{BIN}:{env['PATH']}",
    }
    command = [str(BIN / "ansible-playbook"), "-i", str(folder), "playbooks/validate.yml"]
    command += ["--vault-password-file", str(password)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=project, timeout=300)


@pytest.mark.parametrize("name", ["lab", "ght-lab"])
def test_validation_reads_a_per_value_vault_and_names_a_missing_secret(project, tmp_path, password, name):
    folder = lab_copy(project, tmp_path, name)
    init_vault(folder, password, PER_VALUE)
    group = "all" if name == "lab" else "ch_sud"
    vault_file = folder / "group_vars" / group / "vault.yml"
    values = leaves(plain_values(vault_file, password))
    passed = validate(project, folder, password)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    vault = vault_lib(password)
    current = read(vault_file, vault, PER_VALUE)
    del current.stored["vault_rest_server_passwords"]["partages"]
    write(current, vault)
    refused = validate(project, folder, password)
    prefix = "" if name == "lab" else "ch_sud."
    assert refused.returncode != 0
    assert f"{prefix}vault_rest_server_passwords.partages: missing secret" in refused.stdout
    assert all(value not in passed.stdout + refused.stdout + refused.stderr for value in values)
