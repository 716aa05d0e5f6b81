"""Every role's README.md carries the variable table generated from its meta/argument_specs.yml by the one
generator, roles/hardening/meta/readme.py, and that table is up to date."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
GENERATOR = PROJECT / "roles/hardening/meta/readme.py"
ROLES = sorted(path.parent.parent for path in PROJECT.glob("roles/*/meta/argument_specs.yml"))


def _generator():
    spec = importlib.util.spec_from_file_location("role_readme", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


readme = _generator()


def test_every_role_has_argument_specs():
    roles = sorted(path for path in (PROJECT / "roles").iterdir() if path.is_dir())
    assert roles == ROLES
    assert len(ROLES) >= 12


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_readme_table_is_generated_from_argument_specs(role):
    assert readme.generated(role) == readme.table(role), (
        f"{role.name}/README.md is stale: run `python3 roles/hardening/meta/readme.py roles/{role.name}`"
    )


def test_one_generator():
    assert [p.relative_to(PROJECT).as_posix() for p in PROJECT.glob("roles/*/meta/*.py")] == [
        "roles/hardening/meta/readme.py"
    ]


def test_a_stale_or_unmarked_readme_is_caught_and_regenerated(tmp_path):
    role = tmp_path / "red_button"
    shutil.copytree(PROJECT / "roles/red_button", role)
    specs = role / "meta/argument_specs.yml"
    specs.write_text(
        specs.read_text(encoding="utf-8").replace("isolate or release", "cut off or release", 1),
        encoding="utf-8",
    )
    assert readme.generated(role) != readme.table(role)
    readme.main(role)
    assert readme.generated(role) == readme.table(role)
    assert "cut off or release" in readme.generated(role)
    text = (role / "README.md").read_text(encoding="utf-8")
    (role / "README.md").write_text(text.replace(readme.BEGIN, ""), encoding="utf-8")
    with pytest.raises(ValueError, match="add the two lines"):
        readme.generated(role)
