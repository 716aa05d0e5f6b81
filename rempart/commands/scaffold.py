"""``rempart new-establishment``: a valid establishment folder from a few answers (Jinja2 templates).

The generated folder holds the usual datasets of a hospital (patient record database, file shares) on hosts named
after the establishment, and the hardening settings every host needs (an administrator to replace, what the
backup pull needs from sshd); it validates and converges as generated (molecule/lab/tests/test_examples.py), and
the integrator then edits hosts, datasets and administrators. Every ``*.j2`` under
``templates/new-establishment/`` becomes the file of the same path in the folder.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined

from rempart.model.validation import Violation, validate
from rempart.vault.file import PER_VALUE, WHOLE_FILE
from rempart.vault.secrets import add_vault_arguments, init_vault


class ScaffoldError(Exception):
    pass


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "etablissement"


def _yaml_scalar(value: str) -> str:
    return yaml.safe_dump(value, allow_unicode=True, default_style='"').strip().removesuffix("...").strip()


def scaffold(
    folder: Path, finess: str, name: str, region: str, ght: str | None, domain: str | None
) -> list[Violation]:
    """Write ``folder``/hosts.yml and group_vars/ (establishment, hardening) when the answers make a valid
    establishment; otherwise write nothing and return the violations."""
    if folder.exists() and any(folder.iterdir()):
        raise ScaffoldError(f"{folder} exists and is not empty: choose a new inventories/<name> folder")
    suffix = f".{domain}" if domain else ""
    datasets = [
        {"name": "dpi", "description": "Dossier patient informatisé", "host": f"dpi-db-01{suffix}",
         "kind": "postgresql", "database": "dpi", "criticality": "vital", "rto_hours": 8, "expected_size_gib": 100},
        {"name": "partages", "description": "Partages de fichiers des services", "host": f"fichiers-01{suffix}",
         "kind": "files", "path": "/srv/partages", "criticality": "important", "rto_hours": 48, "expected_size_gib": 500},
    ]  # fmt: skip
    environment = Environment(
        loader=PackageLoader("rempart.commands", "templates/new-establishment"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["yaml_scalar"] = _yaml_scalar
    answers = {
        "finess": finess.replace(" ", ""),
        "name": name,
        "ght": ght,
        "region": region,
        "datasets": datasets,
        "backup_server": f"sauvegarde-01{suffix}",
        "folder": folder,
        "mail_domain": domain or f"{_slug(name)}.fr",
    }
    files = {
        template.removesuffix(".j2"): environment.get_template(template).render(answers)
        for template in environment.list_templates(extensions=["j2"])
    }
    declared = {d["host"] for d in datasets} | {answers["backup_server"]}
    establishment = yaml.safe_load(files["group_vars/all/establishment.yml"])["establishment"]
    _, violations = validate(establishment, declared)
    if violations:
        return violations
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text, encoding="utf-8")
    return []


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("new-establishment", help="scaffold a valid inventories/<name> folder")
    parser.add_argument("--finess", required=True, help="FINESS number of the legal entity (EJ)")
    parser.add_argument("--name", required=True, help="name of the legal entity")
    parser.add_argument(
        "--region", default="eu-west-3", help="offsite region (EEA only; default eu-west-3, Paris)"
    )
    parser.add_argument("--ght", default=None, help="groupement hospitalier de territoire")
    parser.add_argument("--domain", default=None, help="DNS domain appended to host names")
    parser.add_argument(
        "--inventories", type=Path, default=Path("inventories"), help="where to create the folder"
    )
    parser.add_argument("--folder-name", default=None, help="folder name (default: derived from --name)")
    add_vault_arguments(
        parser,
        "also generate the establishment's secrets into vault.yml (rempart init-vault; created 0600 if missing)",
        required=False,
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    folder = args.inventories / (args.folder_name or _slug(args.name))
    try:
        violations = scaffold(folder, args.finess, args.name, args.region, args.ght, args.domain)
    except ScaffoldError as error:
        print(f"error: {error}")
        return 2
    for violation in violations:
        print(violation)
    if violations:
        print(f"{folder}: nothing written; fix the {len(violations)} answer(s) above")
        return 1
    if args.vault_password_file is None:
        print(
            f"{folder}: valid establishment written; next: rempart init-vault {folder} --vault-password-file ..."
            " [--per-value for AWX]"
        )
        return 0
    form = PER_VALUE if args.per_value else WHOLE_FILE
    added = init_vault(folder, args.vault_password_file, form)
    print(f"{folder}: valid establishment written, {len(added)} secret(s) generated into vault.yml ({form})")
    return 0
