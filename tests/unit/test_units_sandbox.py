"""Issue 20 item 4, one sandbox block for every unit: each Rempart unit template renders the common block through the
collection filter rempart.rempart.rempart_systemd_sandbox, never writes one of its directives itself, and names its
exceptions to it; a directive removed from a unit's sandbox is listed here, so that weakening one is a reviewed
change of this file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import jinja2
import pytest
from ansible.errors import AnsibleFilterError

from plugins.filter.rempart_systemd import SANDBOX, FilterModule, rempart_systemd_sandbox

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted(ROOT.glob("roles/*/templates/*.service.j2"))
FILTER = "rempart.rempart.rempart_systemd_sandbox"
DIRECTIVE = re.compile(r"^([A-Za-z]+)=(.*)$", re.MULTILINE)

# Directives of the common block a unit leaves at systemd's default, and why (the README of role program_library).
REMOVED = {
    # AIDE must see the tree its database was built from, and read every file it seals.
    "hardening/rempart-aide-check.service.j2": {
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "CapabilityBoundingSet",
    },
    # LUKS, mount and power-off of the medium, as root.
    "offline_copy/rempart-offline-attach@.service.j2": {
        "ProtectSystem",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "RestrictNamespaces",
        "SystemCallFilter",
        "SystemCallErrorNumber",
        "CapabilityBoundingSet",
    },
    # The hospital's own alert command.
    "program_library/rempart-failure@.service.j2": {
        "PrivateDevices",
        "ProtectClock",
        "RestrictNamespaces",
        "SystemCallArchitectures",
        "SystemCallFilter",
        "SystemCallErrorNumber",
        "RestrictAddressFamilies",
        "CapabilityBoundingSet",
    },
    # Root: nullmailer's set-user-ID queue (no NoNewPrivileges), the backup user's repositories, systemctl stop.
    "supervision/rempart-alerts.service.j2": {"CapabilityBoundingSet"},
    "supervision/rempart-quota-watch@.service.j2": {"CapabilityBoundingSet"},
}


def unit_id(path: Path) -> str:
    return f"{path.parts[-3]}/{path.name}"


class Named(jinja2.Undefined):
    """A role variable renders as its own name: enough to read the directives a template writes."""

    def __str__(self) -> str:
        return f"<{self._undefined_name}>"

    def __int__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Named:
        if name.startswith("__"):
            raise AttributeError(name)
        return Named(name=f"{self._undefined_name}.{name}")

    def __getitem__(self, key: object) -> Named:
        return Named(name=f"{self._undefined_name}[{key}]")


def render(path: Path) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)), undefined=Named, trim_blocks=True
    )
    env.filters[FILTER] = rempart_systemd_sandbox
    env.filters["dirname"] = lambda value: os.path.dirname(str(value))
    return env.get_template(path.name).render()


def service_section(text: str) -> str:
    section = re.search(r"^\[Service\]\n(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    assert section, "no [Service] section"
    return section.group(1)


def test_the_units_are_found():
    assert len(UNITS) >= 18
    assert not list(ROOT.glob("roles/*/templates/_sandbox*")), "the common block has one source: the filter"


@pytest.mark.parametrize("unit", UNITS, ids=unit_id)
def test_unit_renders_the_common_block_once_through_the_filter(unit):
    text = unit.read_text()
    assert text.count(FILTER) == 1, (
        f"{unit_id(unit)}: end its [Service] section with {{{{ {{}} | {FILTER} }}}}"
    )
    assert FILTER in service_section(text)


@pytest.mark.parametrize("unit", UNITS, ids=unit_id)
def test_unit_never_writes_a_directive_of_the_common_block_itself(unit):
    inline = sorted({name for name, _ in DIRECTIVE.findall(unit.read_text()) if name in SANDBOX})
    assert not inline, f"{unit_id(unit)} writes {inline} itself: pass them to {FILTER} as exceptions"


@pytest.mark.parametrize("unit", UNITS, ids=unit_id)
def test_rendered_unit_holds_each_directive_once_and_removes_only_the_listed_ones(unit):
    directives = DIRECTIVE.findall(service_section(render(unit)))
    names = [name for name, _ in directives if name in SANDBOX]
    assert len(names) == len(set(names)), f"{unit_id(unit)}: a directive of the common block twice: {names}"
    assert set(SANDBOX) - set(names) == REMOVED.get(unit_id(unit), set())


def test_the_common_block_is_the_reference_sandbox_in_its_order():
    assert rempart_systemd_sandbox({}).splitlines() == [f"{name}={value}" for name, value in SANDBOX.items()]
    assert rempart_systemd_sandbox(None) == rempart_systemd_sandbox({})
    assert SANDBOX["CapabilityBoundingSet"] == "" and SANDBOX["ProtectSystem"] == "strict"
    assert SANDBOX["RestrictAddressFamilies"] == "AF_UNIX AF_INET AF_INET6"
    assert FilterModule().filters() == {"rempart_systemd_sandbox": rempart_systemd_sandbox}


def test_an_exception_replaces_the_value_in_place_or_removes_the_directive():
    lines = rempart_systemd_sandbox(
        {"RestrictAddressFamilies": "AF_UNIX", "PrivateTmp": False, "ProtectSystem": None, "UMask": "0022"}
    ).splitlines()
    assert "RestrictAddressFamilies=AF_UNIX" in lines and "PrivateTmp=no" in lines and "UMask=0022" in lines
    assert not any(line.startswith("ProtectSystem=") for line in lines)
    assert [line.split("=")[0] for line in lines] == [name for name in SANDBOX if name != "ProtectSystem"]


def test_a_directive_outside_the_common_block_is_refused_with_the_fix():
    with pytest.raises(
        AnsibleFilterError, match=r"PrivateNetwork is not a directive of the common block.*own line"
    ):
        rempart_systemd_sandbox({"PrivateNetwork": "yes"})


@pytest.mark.parametrize("value", ["AF_UNIX\nExecStartPre=/bin/sh", 7, ["AF_UNIX"]])
def test_a_value_that_is_not_one_line_is_refused(value):
    with pytest.raises(AnsibleFilterError, match=r"RestrictAddressFamilies=.*not a one-line string"):
        rempart_systemd_sandbox({"RestrictAddressFamilies": value})
