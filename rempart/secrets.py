"""The secrets an establishment needs, and ``rempart init-vault`` which fills an ansible-vault file with
random values for the missing ones (values already there are kept)."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path
from typing import Any

import yaml

from rempart.ght import EstablishmentSource, establishment_sources
from rempart.inventory import load_establishment_data
from rempart.validation import load_valid
from rempart.vault_layout import (  # noqa: F401  (re-exported for callers of rempart.secrets)
    DEGRADED_SECRETS_VARIABLE,
    ED25519_PEM,
    REPOSITORY_PASSWORDS,
    REST_SERVER_PASSWORDS,
    required_secrets,
)

VAULT_FILE = Path("group_vars/all/vault.yml")


def generate_secret(kind: str | None) -> str:
    if kind == ED25519_PEM:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return secrets.token_urlsafe(32)


def _vault(password_file: Path) -> Any:
    from ansible.parsing.vault import VaultLib, VaultSecret

    secret = VaultSecret(password_file.read_bytes().strip())
    return VaultLib([("default", secret)])


def ensure_password_file(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
    path.chmod(0o600)


def init_vault(inventory_dir: Path, password_file: Path) -> list[str]:
    """Add a random value for every missing secret of every establishment of the inventory (each of a GHT in
    its own group_vars/<group>/vault.yml); return the variable paths that were added."""
    sources = establishment_sources(inventory_dir)
    added: list[str] = []
    for source in sources:
        prefix = "" if source.group == "all" else f"{source.group}: "
        added += [prefix + a for a in _init_establishment_vault(source, password_file)]
    return added


def _init_establishment_vault(source: EstablishmentSource, password_file: Path) -> list[str]:
    establishment = load_valid(load_establishment_data(source.path), source.hosts)
    ensure_password_file(password_file)
    vault = _vault(password_file)
    vault_path = source.vault
    current: dict[str, Any] = {}
    if vault_path.exists():
        current = yaml.safe_load(vault.decrypt(vault_path.read_bytes())) or {}
    added: list[str] = []
    for variable, keys in required_secrets(establishment).items():
        values = current.setdefault(variable, {})
        for key, kind in keys.items():
            if not values.get(key):
                values[key] = generate_secret(kind)
                added.append(f"{variable}.{key}")
    if added or not vault_path.exists():
        plaintext = (
            "---\n# Secrets of the establishment (ansible-vault). Edit: ansible-vault edit <this file>\n"
        )
        plaintext += yaml.safe_dump(current, sort_keys=True)
        vault_path.write_bytes(vault.encrypt(plaintext.encode()))
        vault_path.chmod(0o600)
    return added


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("init-vault", help="create or complete an establishment's vault")
    parser.add_argument("inventory", type=Path, help="inventories/<name>")
    parser.add_argument("--vault-password-file", type=Path, required=True, help="created (0600) if missing")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    added = init_vault(args.inventory, args.vault_password_file)
    vaults = ", ".join(str(s.vault) for s in establishment_sources(args.inventory))
    print(f"{vaults}: {len(added)} secret(s) added" + "".join(f"\n  + {a}" for a in added))
    return 0
