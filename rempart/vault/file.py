"""An establishment's vault file (``vault.yml``) in either form Ansible reads.

- whole-file: the YAML document encrypted as one block (``ansible-vault encrypt``);
- per-value: clear YAML whose secret values are ``!vault`` blocks (``ansible-vault encrypt_string``).

An AWX inventory sync runs ``ansible-inventory --list --export`` without a vault password: it imports a
per-value file, the values still encrypted (``{"__ansible_vault": ...}``), and fails on a whole-file one
(docs/awx.md). Encryption, decryption and the ``!vault`` YAML form are Ansible's own (``VaultLib``,
``EncryptedString`` — what ``AnsibleVaultEncryptedUnicode`` builds since ansible-core 2.19 —, ``AnsibleLoader``,
``AnsibleDumper``). A per-value file is rewritten from the ciphertexts as read: values already there stay
byte-identical when one is added.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

WHOLE_FILE = "whole-file"
PER_VALUE = "per-value"
VAULT_HEADER = b"$ANSIBLE_VAULT"
HEADERS = {
    WHOLE_FILE: "---\n# Secrets of the establishment (ansible-vault). Edit: ansible-vault edit <this file>\n",
    PER_VALUE: (
        "---\n# Secrets of the establishment, each value encrypted apart (ansible-vault encrypt_string): an AWX\n"
        "# inventory sync imports this file without the vault password, values still encrypted (docs/awx.md).\n"
        "# Add a value: rempart init-vault --per-value, or ansible-vault encrypt_string --stdin-name <key>.\n"
    ),
}


class VaultFileError(Exception):
    """A vault file that cannot be read with the vault password given (the message names no secret)."""


@dataclass
class VaultFile:
    """A vault file as stored (``stored``: per-value leaves keep their ciphertext) and decrypted (``plain``)."""

    path: Path
    form: str
    stored: dict[str, Any] = field(default_factory=dict)
    plain: dict[str, Any] = field(default_factory=dict)

    def has(self, variable: str, key: str) -> bool:
        return bool((self.plain.get(variable) or {}).get(key))

    def put(self, vault: Any, value: str, variable: str, key: str | None = None) -> None:
        """Set ``variable`` (or ``variable.key``), encrypted on its own in the per-value form."""
        stored = _encrypted(vault, value) if self.form == PER_VALUE else value
        for tree, leaf in ((self.stored, stored), (self.plain, value)):
            if key is None:
                tree[variable] = leaf
            else:
                if not isinstance(tree.get(variable), dict):
                    tree[variable] = {}
                tree[variable][key] = leaf


def vault_lib(password_file: Path) -> Any:
    from ansible.parsing.vault import VaultLib, VaultSecret

    return VaultLib([("default", VaultSecret(password_file.read_bytes().strip()))])


def form_of(path: Path) -> str | None:
    """The form of an existing vault file, None when there is none."""
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return WHOLE_FILE if handle.read(len(VAULT_HEADER)) == VAULT_HEADER else PER_VALUE


def read(path: Path, vault: Any, new_form: str) -> VaultFile:
    """The vault file at ``path`` (``new_form`` when it does not exist yet); every value must decrypt."""
    from ansible.errors import AnsibleError
    from ansible.parsing.yaml.loader import AnsibleLoader

    form = form_of(path)
    if form is None:
        return VaultFile(path, new_form)
    if form == WHOLE_FILE:
        try:
            plaintext = vault.decrypt(path.read_bytes())
        except AnsibleError:
            raise VaultFileError(f"{path}: does not decrypt with this vault password file") from None
        stored = yaml.safe_load(plaintext) or {}
    else:
        stored = yaml.load(path.read_text(encoding="utf-8"), Loader=AnsibleLoader) or {}
    if not isinstance(stored, Mapping):
        raise VaultFileError(f"{path}: must be a mapping of vault_* variables")
    stored = dict(stored)
    plain = stored if form == WHOLE_FILE else _reveal(stored, vault, path, ())
    return VaultFile(path, form, stored, plain)


def convert(vault_file: VaultFile, vault: Any, form: str) -> VaultFile:
    """The same values in ``form``: per-value encrypts each string value apart (other scalars stay clear)."""
    stored = vault_file.plain if form == WHOLE_FILE else _encrypt_leaves(vault_file.plain, vault)
    return VaultFile(vault_file.path, form, stored, vault_file.plain)


def write(vault_file: VaultFile, vault: Any) -> None:
    """Write the file (0600, replaced in one step): one vault block, or clear YAML with ``!vault`` values."""
    from ansible.parsing.yaml.dumper import AnsibleDumper

    header = HEADERS[vault_file.form]
    if vault_file.form == WHOLE_FILE:
        data = vault.encrypt((header + yaml.safe_dump(vault_file.plain, sort_keys=True)).encode())
    else:
        body = yaml.dump(
            vault_file.stored,
            Dumper=AnsibleDumper,
            sort_keys=True,
            default_flow_style=False,
            allow_unicode=True,
        )
        data = (header + body).encode()
    temporary = vault_file.path.with_name(f".{vault_file.path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    temporary.chmod(0o600)
    temporary.replace(vault_file.path)


def _ciphertext(value: Any) -> str | None:
    from ansible.parsing.vault import VaultHelper

    return VaultHelper.get_ciphertext(value, with_tags=False)


def _encrypted(vault: Any, value: str) -> Any:
    from ansible.parsing.vault import EncryptedString

    return EncryptedString(ciphertext=vault.encrypt(value).decode())


def _encrypt_leaves(value: Any, vault: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _encrypt_leaves(v, vault) for k, v in value.items()}
    if isinstance(value, list):
        return [_encrypt_leaves(v, vault) for v in value]
    return _encrypted(vault, value) if isinstance(value, str) else value


def _reveal(value: Any, vault: Any, path: Path, where: tuple[str, ...]) -> Any:
    """A plain copy with every ``!vault`` value decrypted; an error names the variable, never a value."""
    from ansible.errors import AnsibleError

    if isinstance(value, Mapping):
        return {str(k): _reveal(v, vault, path, (*where, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v, vault, path, (*where, str(i))) for i, v in enumerate(value)]
    ciphertext = _ciphertext(value)
    if ciphertext is None:
        return str(value) if isinstance(value, str) else value
    try:
        return vault.decrypt(ciphertext).decode()
    except AnsibleError:
        raise VaultFileError(
            f"{path}: {'.'.join(where)} does not decrypt with this vault password file "
            "(encrypted with another password?)"
        ) from None
