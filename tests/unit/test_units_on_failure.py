"""Issue 15 item 6, never silent: every Rempart service unit names the failure handler of role program_library."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "roles/program_library/templates/rempart-failure@.service.j2"
UNITS = sorted(p for p in ROOT.glob("roles/*/templates/*.service.j2") if p != HANDLER)


def test_the_units_are_found():
    assert len(UNITS) >= 12


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_unit_names_the_failure_handler_in_its_unit_section(unit):
    text = unit.read_text()
    section = re.search(r"^\[Unit\]\n(.*?)^\[", text, re.MULTILINE | re.DOTALL)
    assert section, f"{unit}: no [Unit] section"
    assert "OnFailure=rempart-failure@%n.service\n" in section.group(1)


def test_the_handler_runs_the_library_s_failure_module_and_never_names_itself():
    text = HANDLER.read_text()
    assert "rempart_run.py rempart_host.failure %i" in text and "SyslogIdentifier=rempart-alert" in text
    assert not re.search(r"^OnFailure=", text, re.MULTILINE)  # a failing handler must not start itself again
