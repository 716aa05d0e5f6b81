"""Rempart as the Ansible collection rempart.rempart: the built tarball installs offline outside the repository with
every role (and its argument specs) and plugin, and ships the controller package its plugins import; the execution
environment's build context (ansible-builder create) holds that tarball and the runtime lock.

Every command runs in a temporary folder with no ANSIBLE_* variable, so the repository's ansible.cfg (and its
collections path, which finds the repository itself) plays no part."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
TARBALL = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
PLUGINS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "plugins").rglob("*.py"))


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**clean, "ANSIBLE_NOCOLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([str(BIN / "ansible-galaxy"), "collection", "build", str(ROOT), "--output-path", str(out)], cwd=out)
    return out / TARBALL


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    """The tarball installed offline into an empty folder; dependencies must come from the PyPI bundle."""
    where = tmp_path_factory.mktemp("collections")
    result = run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", str(built), "-p", str(where)],
        cwd=where,
        ANSIBLE_COLLECTIONS_PATH=str(where),
    )
    for dependency in GALAXY["dependencies"]:
        assert f"'{dependency}:" in result.stdout and "is already installed" in result.stdout, result.stdout
    return where / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]


def test_the_tarball_holds_the_collection_and_nothing_of_the_lab_or_the_inventories(built):
    with tarfile.open(built) as tar:
        names = tar.getnames()
    tops = {name.split("/")[0] for name in names}
    assert {"roles", "plugins", "playbooks", "meta", "MANIFEST.json", "FILES.json", "rempart"} <= tops
    leaked = {
        ".venv",
        ".lab",
        ".git",
        "tests",
        "molecule",
        "reports",
        "inventories",
        "collections",
        "lab",
        "pulumi",
    }
    assert tops.isdisjoint(leaked), tops & leaked
    assert not [n for n in names if "vault" in n.split("/")[-1] and n.endswith((".yml", ".yaml"))]
    assert "playbooks/lab-bootstrap.yml" not in names  # lab only (podman on the controller)
    assert not [n for n in names if "dpi_fictif" in n or "fictitious-records" in n]  # the lab's fake patients


def test_every_role_and_plugin_is_installed_with_its_argument_specs(installed):
    for role in ROLES:
        assert (installed / "roles" / role / "meta/argument_specs.yml").is_file(), role
        assert (installed / "roles" / role / "tasks/main.yml").is_file(), role
    for plugin in PLUGINS:
        assert (installed / plugin).is_file(), plugin
    assert not list(installed.glob("roles/*/library")) and not list(installed.glob("roles/*/filter_plugins"))


def test_ansible_finds_the_roles_and_plugins_by_their_full_names(installed):
    collections = str(installed.parents[2])
    roles = run([str(BIN / "ansible-doc"), "-t", "role", "-l", "rempart.rempart", "--json"], cwd=installed.parents[2],
                ANSIBLE_COLLECTIONS_PATH=collections)  # fmt: skip
    assert sorted(name.removeprefix("rempart.rempart.") for name in yaml.safe_load(roles.stdout)) == ROLES
    module = run([str(BIN / "ansible-doc"), "rempart.rempart.rempart_files"], cwd=installed.parents[2],
                 ANSIBLE_COLLECTIONS_PATH=collections)  # fmt: skip
    assert str(installed / "plugins/modules/rempart_files.py") in module.stdout
    filters = run([str(BIN / "ansible-doc"), "-t", "filter", "-l", "rempart.rempart"], cwd=installed.parents[2],
                  ANSIBLE_COLLECTIONS_PATH=collections)  # fmt: skip
    for name in (
        "rempart_restore_order",
        "rempart_timer_files",
        "rempart_degraded_mode",
        "rempart_establishments",
    ):
        assert f"rempart.rempart.{name} " in filters.stdout, filters.stdout


def test_the_collection_ships_the_controller_package_its_plugins_import(installed, tmp_path):
    """What the execution environment does: pip installs `rempart` from the installed collection (no network)."""
    source = shutil.copytree(installed, tmp_path / "src")
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--no-index"]
    run([*pip, "--target", str(target), str(source)], cwd=tmp_path)
    assert (target / "rempart/model/validation.py").is_file() and (
        target / "rempart/reports/templates/rapport-care.html.j2"
    ).is_file()
    assert not (target / "rempart_lab").exists()  # the lab driver is not shipped to hospitals


def test_the_execution_environment_context_holds_the_collection_and_the_runtime_lock(built, tmp_path):
    builder = BIN / "ansible-builder"
    assert builder.exists(), "ansible-builder is in the `test` extra: make lock && rm -rf .venv && make setup"
    project = tmp_path / "project"  # the definition's relative paths, with the freshly built tarball in dist/
    (project / "dist").mkdir(parents=True)
    shutil.copy(built, project / "dist")
    shutil.copytree(ROOT / "requirements", project / "requirements")
    shutil.copy(ROOT / "execution-environment.yml", project)
    context = tmp_path / "context"
    run([str(builder), "create", "-f", "execution-environment.yml", "-c", str(context)], cwd=project)

    containerfile = (context / "Containerfile").read_text()
    build = context / "_build"
    lock = (ROOT / "requirements/runtime.txt").read_text()
    assert (build / "requirements/runtime.txt").read_text() == lock
    assert "COPY _build/requirements/runtime.txt /tmp/rempart-runtime.txt" in containerfile
    assert (
        "pip install --no-cache-dir --require-hashes --no-deps -r /tmp/rempart-runtime.txt" in containerfile
    )
    assert "--no-build-isolation --no-deps /tmp/rempart-src" in containerfile
    locked_core = re.search(r"^ansible-core==(\S+) ", lock, re.M).group(1)
    assert f'ANSIBLE_INSTALL_REFS="ansible-core=={locked_core} ' in containerfile
    assert (build / "collections" / TARBALL).read_bytes() == built.read_bytes()

    # The galaxy stage (WORKDIR /build: ansible-galaxy collection install $OPTS -r requirements.yml), run here on
    # the context's own files: it must find the tarball and install the collection without Galaxy.
    opts = re.search(r'^ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="(.*)"$', containerfile, re.M).group(1).split()
    assert "COPY _build /build\nWORKDIR /build" in containerfile
    target = tmp_path / "usr-share-ansible-collections"
    run([str(BIN / "ansible-galaxy"), "collection", "install", *opts, "-r", "requirements.yml",
         "--collections-path", str(target)], cwd=build, ANSIBLE_COLLECTIONS_PATH=str(target))  # fmt: skip
    assert (target / "ansible_collections/rempart/rempart/roles/base/meta/argument_specs.yml").is_file()


def test_every_playbook_of_the_collection_passes_a_syntax_check(installed):
    """By full name (rempart.rempart.site); a name with a dash is no valid resource name, so by path."""
    playbooks = sorted((installed / "playbooks").glob("*.yml"))
    named = [f"rempart.rempart.{p.stem}" for p in playbooks if p.stem.isidentifier()]
    assert {"rempart.rempart.site", "rempart.rempart.validate"} <= set(named)
    by_path = [str(p) for p in playbooks if not p.stem.isidentifier()]  # red-button, drill-ransomware
    collections = installed.parents[2]
    result = run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", *named, *by_path],
                 cwd=collections, ANSIBLE_COLLECTIONS_PATH=str(collections))  # fmt: skip
    assert result.stdout.count(f"playbook: {installed}/playbooks/") == len(playbooks), result.stdout
