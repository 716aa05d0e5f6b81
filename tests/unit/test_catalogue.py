"""The requirement catalogue (rempart/catalogue/requirements.yml): every id the project cites resolves to it, ids
are unique, every evidence names a file that exists or says "non mesuré", docs/requirements.md is its current
rendering, and no tracked file points outside the repository."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
import yaml

from rempart.catalogue import (
    CATALOGUE_FILE,
    NOT_MEASURED,
    RULE_TAG,
    Catalogue,
    catalogue,
    cited_ids,
    render_markdown,
)

PROJECT = Path(__file__).resolve().parents[2]
DOC = PROJECT / "docs/requirements.md"
# This file holds wrong ids and outside paths on purpose, to prove the checks catch them.
SELF = Path(__file__).resolve().relative_to(PROJECT).as_posix()
# The catalogue and its rendering name rules Rempart leaves out (e.g. BP-028 R15 to R27): not citations.
DEFINITIONS = {CATALOGUE_FILE.relative_to(PROJECT).as_posix(), "docs/requirements.md", SELF}
# Where a bare R<n> is an ANSSI-BP-028 rule; elsewhere it may also be an ANSSI-BP-100 v1.1 number (R21-R23).
BP028_CONTEXT = re.compile(r"(^|/)[^/]*hardening")
# A path into the repository, as `how` and `evidence` name them.
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:roles|playbooks|rempart|tests|molecule|pulumi|docs|inventories|lab)/[\w./*-]*[\w*])"
)


@cache
def tracked_texts() -> dict[str, str]:
    """Every tracked text file (git ls-files), by path relative to the repository."""
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT, capture_output=True, check=True
    ).stdout.decode()
    texts = {}
    for name in filter(None, listing.split("\0")):
        path = PROJECT / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        texts[name] = data.decode("utf-8", errors="replace")
    return texts


def test_the_repository_is_scanned():
    texts = tracked_texts()
    assert "roles/hardening/README.md" in texts
    assert DOC.relative_to(PROJECT).as_posix() in texts, "commit docs/requirements.md"
    assert len(texts) > 200


def test_ids_are_unique():
    raw = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    counts = Counter(r["id"] for r in raw["requirements"])
    assert [i for i, n in counts.items() if n > 1] == []


def test_a_duplicate_or_an_unknown_family_is_refused_naming_it():
    raw = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    raw["requirements"].append(dict(raw["requirements"][0]))
    raw["requirements"].append({**raw["requirements"][1], "id": "DEG-99", "family": "NOPE"})
    with pytest.raises(ValueError) as refused:
        Catalogue.model_validate(raw)
    message = str(refused.value)
    assert f"requirement {raw['requirements'][0]['id']} is declared twice" in message
    assert "DEG-99: family 'NOPE'" in message


def test_every_cited_requirement_id_resolves():
    known = catalogue()
    missing = {
        f"{name}: {requirement_id}"
        for name, text in tracked_texts().items()
        if name != SELF
        for requirement_id in cited_ids(text)
        if requirement_id not in known
    }
    assert sorted(missing) == []


def test_every_cited_anssi_rule_resolves():
    known = catalogue()
    bp100_rules = {r.rule for r in known.requirements if r.rule}
    missing = set()
    for name, text in tracked_texts().items():
        if name in DEFINITIONS:
            continue
        for tag in set(RULE_TAG.findall(text)):
            bp028 = f"BP028-{tag}" in known
            if not (bp028 if BP028_CONTEXT.search(name) else bp028 or tag in bp100_rules):
                missing.add(f"{name}: {tag}")
    assert sorted(missing) == []


def test_lookup_by_id_and_by_rule():
    known = catalogue()
    assert known.get("BP100-OPS-11").rule == "R22"
    assert known.bp100_rule("R23").id == "BP100-OPS-12"
    assert known.bp028_rule("R31").level == "minimal"
    assert "HDS-02" in known
    assert {r.id for r in known.family("DEG")} == {f"DEG-{n:02d}" for n in range(1, 12)}
    with pytest.raises(KeyError, match="BP100-NOPE-01 is not in the requirement catalogue"):
        known.get("BP100-NOPE-01")


def test_citations_expand_shorthands_and_ranges():
    assert cited_ids("BP100-DATA-03/04, HDS-02/03") == {"BP100-DATA-03", "BP100-DATA-04", "HDS-02", "HDS-03"}
    assert cited_ids("BP028-00 … BP028-02") == {"BP028-00", "BP028-01", "BP028-02"}
    assert cited_ids("(DEG-01..03)") == {"DEG-01", "DEG-02", "DEG-03"}
    assert cited_ids("TK-RANSOM, BP100-OP-TRUST-01, REG-NIS2-01, not HDS-2024") == {
        "TK-RANSOM",
        "BP100-OP-TRUST-01",
        "REG-NIS2-01",
    }


def test_every_evidence_names_an_existing_file_or_says_not_measured():
    problems = []
    for r in catalogue().requirements:
        paths = REPO_PATH.findall(r.evidence)
        if r.measured and not paths:
            problems.append(f"{r.id}: evidence names no file and does not start with {NOT_MEASURED!r}")
        for path in paths + REPO_PATH.findall(r.how):
            if not any(PROJECT.glob(path.rstrip("."))):
                problems.append(f"{r.id}: {path} does not exist")
    assert problems == []


def test_docs_requirements_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == render_markdown(catalogue()), (
        "docs/requirements.md is stale: run `.venv/bin/python -m rempart.catalogue > docs/requirements.md`"
    )


def _outside_references(name: str, text: str) -> list[str]:
    """Paths in a tracked file that lead outside the repository: this machine's folders, or a relative
    path that climbs above the repository root from the file's folder (molecule's `../shared/create.yml`
    stays inside: molecule/shared)."""
    found = []
    machine = {"/" + "work/"}  # the workspace this repository was built in
    if PROJECT.parent != Path("/"):
        machine.add(f"{PROJECT.parent}/")
    home = Path.home()
    if home != Path("/root"):  # /root/ is also the managed hosts' root home, all over the playbooks
        machine.add(f"{home}/")
    for prefix in machine:
        for match in re.finditer(rf"(?<![\w./-]){re.escape(prefix)}\S*", text):
            found.append(match[0])
    folder = (PROJECT / name).parent
    for match in re.finditer(r"(?<![\w.])((?:\.\./)+)([\w.-]*)", text):
        target = (folder / match[1] / match[2]).resolve()
        if not target.is_relative_to(PROJECT):
            found.append(match[0])
    return found


# Files that name those paths only to refuse them.
REFUSERS = {"tests/unit/test_lock.py", SELF}


def test_no_tracked_file_points_outside_the_repository():
    offenders = {
        name: refs
        for name, text in tracked_texts().items()
        if name not in REFUSERS and (refs := _outside_references(name, text))
    }
    assert offenders == {}


def test_the_outside_check_sees_what_it_must():
    assert _outside_references("roles/x/README.md", "see `" + "/work/" + "shared/a.md` flows")
    assert _outside_references("roles/x/README.md", "(../../../outside/requirements.md)")
    assert _outside_references("molecule/backup/molecule.yml", "create: ../shared/create.yml") == []
    assert _outside_references("roles/restore_drill/README.md", "/var/lib/rempart-drill/work/<run>") == []


def test_every_requirement_maps_to_a_measure_function():
    from rempart.reports.measures import MEASURES

    known = catalogue()
    assert sorted({r.measure for r in known.requirements} - set(MEASURES)) == []
    assert sorted(set(MEASURES) - {r.measure for r in known.requirements}) == []  # none unused
    measured = [r for r in known.requirements if r.measure != "unmeasured"]
    assert len(measured) >= 15
    for r in measured:
        assert r.max_age_days is not None or r.measure == "offline_copy", (
            f"{r.id}: how old may its result be?"
        )


def test_a_measured_requirement_without_its_french_title_is_refused():
    raw = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    entry = next(r for r in raw["requirements"] if r["id"] == "HDS-02")
    entry.pop("title_fr")
    with pytest.raises(ValueError, match="HDS-02: a measured requirement needs title_fr and action_fr"):
        Catalogue.model_validate(raw)
