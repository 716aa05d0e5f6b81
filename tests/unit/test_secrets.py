import shutil

import yaml

from rempart.vault.secrets import init_vault


def test_init_vault_creates_an_encrypted_vault_and_keeps_existing_values(tmp_path, project):
    folder = tmp_path / "lab"
    shutil.copytree(project / "inventories/lab", folder, ignore=shutil.ignore_patterns("vault.yml"))
    password_file = tmp_path / "vault-password"
    added = init_vault(folder, password_file)
    assert {"vault_repository_passwords.dpi-postgresql", "vault_repository_passwords.partages"} <= set(added)
    vault_file = folder / "group_vars/all/vault.yml"
    content = vault_file.read_bytes()
    assert content.startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    assert oct(vault_file.stat().st_mode & 0o777) == "0o600"
    assert oct(password_file.stat().st_mode & 0o777) == "0o600"
    assert init_vault(folder, password_file) == []
    assert vault_file.read_bytes() == content

    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(password_file.read_bytes().strip()))])
    values = yaml.safe_load(vault.decrypt(content))["vault_repository_passwords"]
    assert len(values["partages"]) >= 32 and values["partages"] != values["dpi-postgresql"]
