"""The product holds no lab code (issue 20 item 3): nothing under rempart/ imports the lab driver or the S3
stand-ins, the lab driver lives in rempart_lab (console script rempart-lab), and so does the generator of the lab's
fictitious patients: no role ships it nor loads a demo database (lab/fictitious-records.yml does, in the lab)."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

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


def test_the_fictitious_patient_generator_is_lab_code_outside_every_shipped_folder():
    assert (ROOT / "rempart_lab" / "dpi_fictif.py").is_file()
    # neither the generator nor the playbook that loads it is in the collection
    ignored = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))["build_ignore"]
    assert {"lab", "rempart_lab"} <= set(ignored)
    shipped = [ROOT / name for name in ("roles", "plugins", "playbooks", "rempart", "meta")]
    assert [str(p.relative_to(ROOT)) for top in shipped for p in top.rglob("dpi_fictif*")] == []


def test_no_role_loads_a_demo_database():
    """The role degraded_export only exports: no switch, task or default of a demo (fictitious) database."""
    words = ("demo_database", "_demo_seed", "dpi_fictif")
    role_files = [p for p in (ROOT / "roles").rglob("*") if p.suffix in {".yml", ".j2", ".py"}]
    offenders = [
        str(p.relative_to(ROOT)) for p in role_files if any(w in p.read_text(encoding="utf-8") for w in words)
    ]
    assert offenders == []
