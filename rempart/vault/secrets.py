"""The secrets an establishment needs, and ``rempart init-vault`` which fills an ansible-vault file with
random values for the missing ones (values already there are kept)."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

from rempart.model.ght import EstablishmentSource, establishment_sources
from rempart.model.inventory import load_establishment_data
from rempart.model.validation import load_valid
from rempart.vault.file import PER_VALUE, WHOLE_FILE, VaultFileError, form_of, read, vault_lib, write
from rempart.vault.file import convert as convert_form
from rempart.vault.layout import (  # noqa: F401  (re-exported for callers of rempart.vault.secrets)
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
    return vault_lib(password_file)


def ensure_password_file(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
    path.chmod(0o600)


def init_vault(
    inventory_dir: Path, password_file: Path, form: str = WHOLE_FILE, convert: bool = False
) -> list[str]:
    """Add a random value for every missing secret of every establishment of the inventory (each of a GHT in
    its own group_vars/<group>/vault.yml); return the variable paths that were added.

    ``form`` is the form of the vault files created now (rempart/vault/file.py); an existing file keeps its
    form and its values (per-value ones byte-identical) unless ``convert`` rewrites it in ``form``."""
    sources = establishment_sources(inventory_dir)
    added: list[str] = []
    for source in sources:
        prefix = "" if source.group == "all" else f"{source.group}: "
        added += [prefix + a for a in _init_establishment_vault(source, password_file, form, convert)]
    return added


def _init_establishment_vault(
    source: EstablishmentSource, password_file: Path, form: str, convert: bool
) -> list[str]:
    establishment = load_valid(load_establishment_data(source.path), source.hosts)
    ensure_password_file(password_file)
    vault = vault_lib(password_file)
    current = read(source.vault, vault, form)
    converted = convert and current.form != form
    if converted:
        current = convert_form(current, vault, form)
    added: list[str] = []
    for variable, keys in required_secrets(establishment).items():
        for key, kind in keys.items():
            if not current.has(variable, key):
                current.put(vault, generate_secret(kind), variable, key)
                added.append(f"{variable}.{key}")
    if added or converted or not source.vault.exists():
        write(current, vault)
    return added


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "init-vault",
        help="create or complete an establishment's vault",
        description="Generate every missing secret of the inventory's establishment(s) into vault.yml, keeping "
        "the values already there. AWX / Ansible Automation Platform: use --per-value (docs/awx.md).",
    )
    parser.add_argument("inventory", type=Path, help="inventories/<name>")
    add_vault_arguments(parser, "created (0600) if missing", required=True)
    parser.add_argument(
        "--convert",
        action="store_true",
        help="rewrite existing vault files in the chosen form (per-value with --per-value, whole-file "
        "otherwise), every value kept; without it an existing file keeps its form",
    )
    parser.set_defaults(handler=_run)


def add_vault_arguments(parser: argparse.ArgumentParser, password_help: str, required: bool) -> None:
    """--vault-password-file and --per-value, as init-vault and new-establishment take them."""
    parser.add_argument("--vault-password-file", type=Path, required=required, help=password_help)
    parser.add_argument(
        "--per-value",
        action="store_true",
        help="encrypt each secret apart (!vault values, as ansible-vault encrypt_string): the form an AWX "
        "inventory sync imports without the vault password (docs/awx.md)",
    )


def _run(args: argparse.Namespace) -> int:
    form = PER_VALUE if args.per_value else WHOLE_FILE
    try:
        added = init_vault(args.inventory, args.vault_password_file, form, args.convert)
    except VaultFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    vaults = [source.vault for source in establishment_sources(args.inventory)]
    listed = ", ".join(f"{path} ({form_of(path)})" for path in vaults)
    print(f"{listed}: {len(added)} secret(s) added" + "".join(f"\n  + {a}" for a in added))
    kept = [path for path in vaults if form_of(path) != form]
    if kept:
        print(
            f"note: {', '.join(map(str, kept))} kept in its form; an AWX inventory sync imports per-value vaults "
            "only: rempart init-vault --per-value --convert (docs/awx.md)"
            if form == PER_VALUE
            else f"note: {', '.join(map(str, kept))} kept per-value (add --convert to encrypt it whole)"
        )
    return 0
