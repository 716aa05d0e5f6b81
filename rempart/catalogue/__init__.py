"""Rempart's requirement catalogue: every requirement id the project cites, with its public source, a French
statement (the evidence report a hospital reads is French), how Rempart meets it and what measures it.

The data is ``requirements.yml`` next to this module; ``docs/requirements.md`` is rendered from it
(``python -m rempart.catalogue > docs/requirements.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import Field, model_validator

from rempart.model.establishment import Strict

CATALOGUE_FILE = Path(__file__).with_name("requirements.yml")
NOT_MEASURED = "non mesuré"

# What a requirement id looks like where the project cites one. A shorthand "BP100-DATA-03/04" cites
# BP100-DATA-03 and BP100-DATA-04; a range "DEG-01..08", "DEG-01…DEG-11" or "BP028-00 … BP028-05" cites every
# id in between.
_ID = r"(?:(?:BP100(?:-[A-Z]+)+|BP028|CARE-[A-Z0-9]+|HDS|DEG|REG-[A-Z0-9]+)-[0-9]{2}|TK-(?:[0-9]{2}|[A-Z]+))"
CITATION = re.compile(
    rf"\b(?P<id>{_ID})\b(?P<more>(?:/[0-9]+\b)*)(?:\s*(?:\.\.|…)\s*(?P<range>(?:{_ID}|[0-9]+))\b)?"
)
# ANSSI rule tags cited bare (R22, R31…): BP-028 rules in roles/hardening, BP-100 v1.1 numbers elsewhere.
RULE_TAG = re.compile(r"\bR[0-9]{1,2}\b")


class Basis(StrEnum):
    official = "official"  # stated by an official or normative text
    secondary = "secondary"  # stated by a secondary source (press, consultancy, vendor): to check
    inferred = "inferred"  # Rempart's reading or design choice, stated by no source


class Level(StrEnum):
    """ANSSI-BP-028 levels, cumulative."""

    minimal = "minimal"
    intermediary = "intermediary"
    enhanced = "enhanced"
    high = "high"


Text = Annotated[str, Field(min_length=3)]
UNMEASURED = "unmeasured"  # the measure function of a requirement nothing in Rempart measures yet


class Waiver(Strict):
    """A reviewed OpenSCAP rule left out of the hardening score: every rule whose id contains ``rule``."""

    rule: Annotated[str, Field(min_length=3, pattern=r"^[a-z0-9_]+$")]
    why_fr: Text


class Family(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Z0-9-]+$")]
    title: Text


class Requirement(Strict):
    id: Annotated[str, Field(pattern=rf"^(?:{_ID}|BP028-R[0-9]+)$")]
    family: str
    source: Text
    basis: Basis
    statement_fr: Text
    statement_en: Text
    how: Text
    evidence: Text
    # The ANSSI-BP-100 v1.1 recommendation number, where confirmed (BP100 family only).
    rule: Annotated[str, Field(pattern=r"^R[0-9]+$")] | None = None
    level: Level | None = None  # BP028-R<n> only
    note: Text | None = None
    # How the evidence report judges it (rempart/reports/evidence.py): a short French title, the measure function (a key of
    # rempart.reports.evidence.MEASURES), how old its result may be, its thresholds, the part only declared (not measured),
    # and what to do when it is not measured or its measure is too old.
    title_fr: Text | None = None
    measure: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")] = UNMEASURED
    max_age_days: int | None = Field(None, ge=1, le=3650)
    thresholds: dict[str, float] = Field(default_factory=dict)
    waivers: list[Waiver] = Field(default_factory=list)
    declared_fr: Text | None = None
    action_fr: Text | None = None

    @model_validator(mode="after")
    def _measured_ones_say_how(self) -> Requirement:
        if self.measure != UNMEASURED and not (self.title_fr and self.action_fr):
            raise ValueError(f"requirement {self.id}: a measured requirement needs title_fr and action_fr")
        return self

    @property
    def measured(self) -> bool:
        """False when nothing in the project measures the requirement yet."""
        return not self.evidence.startswith(NOT_MEASURED)


class Catalogue(Strict):
    families: list[Family]
    requirements: list[Requirement]

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        problems = []
        family_ids = [f.id for f in self.families]
        problems += [f"family {f} is declared twice" for f in _duplicates(family_ids)]
        problems += [
            f"requirement {r} is declared twice" for r in _duplicates(r.id for r in self.requirements)
        ]
        for r in self.requirements:
            if r.family not in family_ids:
                problems.append(f"requirement {r.id}: family {r.family!r} is not one of {family_ids}")
            if r.level is not None and r.family != "BP028-R":
                problems.append(f"requirement {r.id}: `level` is for the BP028-R family only")
            if r.rule is not None and r.family != "BP100":
                problems.append(f"requirement {r.id}: `rule` is for the BP100 family only")
        problems += [
            f"BP-100 rule {rule} is given to more than one requirement"
            for rule in _duplicates(r.rule for r in self.requirements if r.rule)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def get(self, requirement_id: str) -> Requirement:
        """The requirement with this id; KeyError naming the id and the catalogue otherwise."""
        for requirement in self.requirements:
            if requirement.id == requirement_id:
                return requirement
        raise KeyError(
            f"{requirement_id} is not in the requirement catalogue ({CATALOGUE_FILE.name}): add it there"
        )

    def __contains__(self, requirement_id: object) -> bool:
        return any(r.id == requirement_id for r in self.requirements)

    def family(self, family_id: str) -> list[Requirement]:
        return [r for r in self.requirements if r.family == family_id]

    def bp028_rule(self, tag: str) -> Requirement:
        """ANSSI-BP-028 rule ``R<n>`` as roles/hardening tags it."""
        return self.get(f"BP028-{tag}")

    def bp100_rule(self, tag: str) -> Requirement:
        """The requirement numbered ``R<n>`` in ANSSI-BP-100 v1.1."""
        for requirement in self.requirements:
            if requirement.rule == tag:
                return requirement
        raise KeyError(f"no requirement of the catalogue is ANSSI-BP-100 rule {tag}")


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated


def load(path: Path = CATALOGUE_FILE) -> Catalogue:
    return Catalogue.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@cache
def catalogue() -> Catalogue:
    """The packaged catalogue, loaded once."""
    return load()


def cited_ids(text: str) -> set[str]:
    """Every requirement id a text cites, shorthands and ranges expanded (see CITATION)."""
    found: set[str] = set()
    for match in CITATION.finditer(text):
        first = match["id"]
        prefix, number = first.rsplit("-", 1)
        found.add(first)
        found.update(f"{prefix}-{n}" for n in match["more"].split("/")[1:])
        if match["range"] and number.isdigit():
            last = match["range"].rsplit("-", 1)[-1]
            if last.isdigit() and (match["range"].isdigit() or match["range"].startswith(prefix + "-")):
                found.update(f"{prefix}-{n:0{len(number)}d}" for n in range(int(number), int(last) + 1))
    return found


def _cell(text: str) -> str:
    """One Markdown table cell: one line, pipes escaped, and outside `code` no HTML tag (<finess>) nor emphasis."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace("*", "\\*")
    return "`".join(parts)


def render_markdown(data: Catalogue) -> str:
    """docs/requirements.md: one table per family."""
    lines = [
        "# Requirements catalogue",
        "",
        "<!-- Generated from rempart/catalogue/requirements.yml by"
        " `python -m rempart.catalogue > docs/requirements.md`: edit the YAML, not this file. -->",
        "",
        "Every requirement id Rempart cites (role docs, task tags, reports, tests) is defined here, with its public",
        "source, the requirement in our own words in French (the evidence report a hospital reads is French), how",
        "Rempart meets it and what measures it. *Basis*: **official** (stated by an official or normative text),",
        "**secondary** (stated by a secondary source — press, consultancy, vendor — to check against the official",
        "text), **inferred** (our reading or design choice). *Evidence* names the test or result file that measures",
        f"the requirement; «&nbsp;{NOT_MEASURED}&nbsp;» means nothing in the project measures it yet.",
        "",
        f"{len(data.requirements)} requirements, {sum(r.measured for r in data.requirements)} with a measure.",
    ]
    for family in data.families:
        lines += ["", f"## {family.title} ({family.id})", ""]
        lines += ["| id | statement (French) | how | evidence |", "|---|---|---|---|"]
        for r in data.family(family.id):
            tags = [t for t in (r.rule, r.level.value if r.level else None) if t]
            label = f"**{r.id}**" + (f" ({', '.join(tags)})" if tags else "")
            statement = f"{_cell(r.statement_fr)}<br>*{_cell(r.source)}* — {r.basis.value}"
            how = _cell(r.how) + (f"<br>*Note:* {_cell(r.note)}" if r.note else "")
            judged = ""
            if r.measure != UNMEASURED:
                age = f", result at most {r.max_age_days} days old" if r.max_age_days else ""
                judged = f"<br>*Report:* `{r.measure}`{age}"
            lines.append(f"| {label} | {statement} | {how} | {_cell(r.evidence)}{judged} |")
    return "\n".join(lines) + "\n"
