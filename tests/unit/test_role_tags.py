"""Every task of every role carries, as tags, the requirement ids of the catalogue (rempart/catalogue/requirements.yml)
it implements, as roles/hardening has done from the start (ComplianceAsCode style): an auditor goes from an id to
its tasks with one search (`ansible-playbook … --list-tags` lists them).

The convention, roles/hardening's: a task's own tags (or its block's) name at least one requirement; roles/hardening
cites ANSSI-BP-028 rules bare (`R31` is BP028-R31), every other role cites full ids (`BP100-OPS-10`: a bare R<n>
elsewhere could also be an ANSSI-BP-100 number). Not tagged with a requirement: the imports and includes (their
tasks are), `meta` tasks (flush_handlers), the handlers, and the gates that run whatever the tags, tagged `always`
or `validate` (settings, platform facts, the validation that refuses bad input before any change). Lower-case tags
name concerns (`ssh`, `install`); a tag that starts with an upper-case letter is a requirement id and must be in the
catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from rempart.catalogue import catalogue

PROJECT = Path(__file__).resolve().parents[2]
ROLES = sorted(path for path in (PROJECT / "roles").iterdir() if (path / "tasks/main.yml").is_file())
INCLUDES = {f"{prefix}{verb}" for prefix in ("", "ansible.builtin.") for verb in (
    "import_tasks", "include_tasks", "import_role", "include_role")}  # fmt: skip
META = {"meta", "ansible.builtin.meta"}
GATES = {"always", "validate"}
BARE_RULES_ROLE = "hardening"  # cites ANSSI-BP-028 rules as R<n>


@dataclass(frozen=True)
class Task:
    file: str  # roles/<role>/tasks/<file>
    name: str
    own: frozenset[str]  # its tags and its blocks'
    inherited: frozenset[str]  # from the imports that bring its file in
    entry: dict = field(compare=False, repr=False)  # its YAML mapping

    @property
    def label(self) -> str:
        return f"{self.file}: {self.name}"


def _tags(entry: dict) -> set[str]:
    tags = entry.get("tags") or []
    return {tags} if isinstance(tags, str) else set(tags)


def _imported_file(entry: dict) -> str | None:
    for key in (
        "import_tasks",
        "include_tasks",
        "ansible.builtin.import_tasks",
        "ansible.builtin.include_tasks",
    ):
        if key in entry:
            target = entry[key]
            return target["file"] if isinstance(target, dict) else target
    return None


def role_tasks(role: Path) -> list[Task]:
    """Every task of the role's tasks/*.yml, with its own tags and those its file's importers give it."""
    files = {
        path.name: yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for path in (role / "tasks").glob("*.yml")
    }
    inherited: dict[str, set[str]] = {}
    found: list[Task] = []
    seen: set[str] = set()

    def walk(name: str, entries: list, outer: set[str], given: set[str]) -> None:
        for entry in entries:
            tags = outer | _tags(entry)
            if "block" in entry:
                for part in ("block", "rescue", "always"):
                    walk(name, entry.get(part) or [], tags, given)
                continue
            target = _imported_file(entry)
            if target is not None:
                inherited.setdefault(target, set()).update(given | tags)
                visit(target)
            found.append(Task(f"roles/{role.name}/tasks/{name}", entry.get("name", "?"), frozenset(tags),
                              frozenset(given), entry))  # fmt: skip

    def visit(name: str) -> None:
        if name in seen or name not in files:
            return
        seen.add(name)
        walk(name, files[name], set(), inherited.get(name, set()))

    visit("main.yml")
    for name in sorted(files):  # entry points of their own (tasks_from: admins.yml, run.yml)
        visit(name)
    return found


def needs_a_requirement(task: Task) -> bool:
    if INCLUDES & task.entry.keys() or META & task.entry.keys():
        return False
    return not GATES & (task.own | task.inherited)


def requirement_tags(task: Task) -> set[str]:
    return {tag for tag in task.own if tag[:1].isupper()}


def unknown_ids(role: Path, tags: set[str]) -> set[str]:
    known = catalogue()
    bare = role.name == BARE_RULES_ROLE
    return {tag for tag in tags if tag not in known and not (bare and f"BP028-{tag}" in known)}


def test_every_role_is_checked():
    assert {role.name for role in ROLES} >= {
        "hardening",
        "backup_server",
        "degraded_export",
        "degraded_station",
    }
    assert len(ROLES) >= 12
    assert sum(len(role_tasks(role)) for role in ROLES) > 300


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_task_names_the_requirements_it_implements(role):
    untagged = [
        task.label for task in role_tasks(role) if needs_a_requirement(task) and not requirement_tags(task)
    ]
    assert untagged == [], (
        "tag each with the requirement id(s) of rempart/catalogue/requirements.yml it implements"
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_requirement_tag_is_in_the_catalogue(role):
    unknown = {
        f"{task.label}: {tag}"
        for task in role_tasks(role)
        for tag in unknown_ids(role, requirement_tags(task))
    }
    assert sorted(unknown) == []


def test_the_checks_catch_a_missing_tag_and_an_unknown_id(tmp_path):
    # Spelt apart: tests/unit/test_catalogue.py resolves every id a tracked file cites.
    wrong_id, wrong_rule = "BP100-OPS-" + "99", "R" + "99"
    role = tmp_path / "backup_client"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks/main.yml").write_text(
        """---
- name: Refuse bad input
  ansible.builtin.import_tasks: validate.yml
  tags: [backup_client, validate]
- name: Work
  ansible.builtin.import_tasks: work.yml
  tags: [backup_client, BP100-ARCH-06]
""",
        encoding="utf-8",
    )
    (role / "tasks/validate.yml").write_text("---\n- name: Assert\n  ansible.builtin.assert: {that: true}\n")
    (role / "tasks/work.yml").write_text(
        """---
- name: Untagged, the import's id is not its own
  ansible.builtin.debug: {msg: x}
- name: Tagged with a block
  tags: [BP100-DATA-01]
  block:
    - name: Inside
      ansible.builtin.debug: {msg: x}
- name: Unknown id
  ansible.builtin.debug: {msg: x}
  tags: [install, WRONG_ID]
- name: A bare rule outside roles/hardening
  ansible.builtin.debug: {msg: x}
  tags: [R31]
- name: Flush
  ansible.builtin.meta: flush_handlers
""".replace("WRONG_ID", wrong_id),
        encoding="utf-8",
    )
    tasks = role_tasks(role)
    untagged = [t.name for t in tasks if needs_a_requirement(t) and not requirement_tags(t)]
    assert untagged == ["Untagged, the import's id is not its own"]
    assert {tag for t in tasks for tag in unknown_ids(role, requirement_tags(t))} == {wrong_id, "R31"}
    assert unknown_ids(PROJECT / "roles/hardening", {"R31", wrong_rule}) == {wrong_rule}
