"""Deployed programs run with Debian's python3 and what the roles install beside them: the standard library,
python3-boto3/botocore (offsite), python3-psycopg2 (drill), python3-jinja2 (binder), the library rempart_host and the files their own role
copies. An import of anything else (the control node's pydantic model, say) fails only on the host, so it is
caught here. (A `from rempart.model.establishment import ...` in a symlinked offsite module broke the offsite copy.)"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST_PACKAGES = {
    "boto3",
    "botocore",
    "psycopg2",
    "jinja2",
    "markupsafe",
    "rempart_host",
}  # + degraded_export: python3-jinja2
# roles whose validate.yml refuses to run before backup_server on the same host: its package is there (the trust rule)
AFTER_BACKUP_SERVER = {"offsite_copy", "offline_copy", "restore_drill"}


def deployed_files() -> list[Path]:
    return sorted(p for p in ROOT.glob("roles/*/files/**/*.py") if "meta" not in p.parts)


def local_modules(path: Path) -> set[str]:
    """Module names installed beside a role's program: every .py and package of that role's files folder."""
    files = next(parent for parent in path.parents if parent.name == "files")
    names = {p.stem for p in files.glob("*.py")} | {p.name for p in files.iterdir() if p.is_dir()}
    # packages at any depth: rempart_backup_server.job, rempart.offsite.s3
    for module in files.glob("*/**/*.py"):
        parts = module.relative_to(files).with_suffix("").parts
        names |= {".".join(parts[:-1]), ".".join(parts)} if parts[-1] == "__init__" else {".".join(parts)}
        names |= {".".join(parts[:depth]) for depth in range(1, len(parts))}
    return names


@pytest.mark.parametrize("path", deployed_files(), ids=lambda p: str(p.relative_to(ROOT / "roles")))
def test_a_deployed_module_imports_only_what_the_host_has(path: Path) -> None:
    allowed = local_modules(path)
    library = ROOT / "roles/program_library/files"
    allowed |= {p.stem for p in library.glob("*.py")} | {"rempart_host"}
    if path.relative_to(ROOT / "roles").parts[0] in AFTER_BACKUP_SERVER:
        allowed |= {"rempart_backup_server"}
    problems = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if (
                top in sys.stdlib_module_names
                or top in HOST_PACKAGES
                or name in allowed
                or top in allowed - {"rempart"}
            ):
                continue
            problems.append(f"line {node.lineno}: import {name}")
    assert not problems, f"{path.relative_to(ROOT)} imports what the host lacks: {problems}"
