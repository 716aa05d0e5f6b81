"""The product package holds no lab code (issue 20 item 3): nothing under rempart/ imports the lab driver or the
S3 stand-ins, and the lab driver lives in rempart_lab (console script rempart-lab)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB_MODULES = ("rempart_lab", "moto", "moto_lab", "moto_strict", "lab_stand_in")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_no_product_module_imports_the_lab():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imports(path) if n.split(".")[0] in LAB_MODULES)
        for path in sorted((ROOT / "rempart").rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_lab_driver_is_outside_the_product_package():
    assert not list((ROOT / "rempart").glob("lab*.py"))
    assert (ROOT / "rempart_lab" / "containers.py").exists() and (
        ROOT / "rempart_lab" / "offsite.py"
    ).exists()
    assert 'rempart-lab = "rempart_lab.cli:main"' in (ROOT / "pyproject.toml").read_text()
