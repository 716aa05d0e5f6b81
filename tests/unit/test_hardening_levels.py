"""Hardening level per host group (establishment.hardening, rempart/model/establishment.py): defaults an integrator can
defend, the highest level for a host in several groups, bad input refused naming the key and the fix, and a
hardening_level set in the inventory refused (the establishment is the one source)."""

from __future__ import annotations

import shutil
import sys

import pytest
from ansible.errors import AnsibleFilterError

from rempart.commands.cli import main
from rempart.model.establishment import Hardening
from rempart.model.validation import validate

LAB_HOSTS = {"backup-01", "dpi-db-01", "files-01", "station-01"}


@pytest.fixture
def level(project):
    sys.path.insert(0, str(project / "plugins" / "filter"))
    try:
        from rempart_hardening import rempart_hardening_level
    finally:
        sys.path.pop(0)
    return rempart_hardening_level


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["backup_servers"], "enhanced"),
        (["degraded_stations"], "intermediary"),
        (["backup_clients"], "none"),
        (["backup_clients", "degraded_export_hosts"], "none"),
        (["ch_nord"], "none"),  # a GHT establishment's group, no named group
        (["shared_backup_servers"], "enhanced"),  # a GHT's shared backup server (docs/ght.md)
        ([], "none"),
    ],
)
def test_defaults(groups, expected):
    assert Hardening().level_for(groups).value == expected


def test_highest_level_of_the_host_groups_and_other():
    hardening = Hardening(backup_clients="minimal", degraded_export_hosts="intermediary", other="minimal")
    assert hardening.level_for(["backup_clients"]).value == "minimal"
    assert hardening.level_for(["backup_clients", "degraded_export_hosts"]).value == "intermediary"
    assert hardening.level_for(["ungrouped"]).value == "minimal"


@pytest.mark.parametrize(
    ("section", "path", "fix"),
    [
        ({"backup_clients": "high"}, "establishment.hardening.backup_clients", "'minimal'"),
        (
            {"backup_client": "minimal"},
            "establishment.hardening.backup_client",
            "valid keys here: backup_servers",
        ),
        ({"backup_servers": "none"}, "establishment.hardening.backup_servers", "BP028-01"),
    ],
)
def test_bad_level_names_the_key_and_the_fix(establishment_data, section, path, fix):
    establishment_data["hardening"] = section
    _, violations = validate(establishment_data, LAB_HOSTS)
    assert [v.path for v in violations] == [path]
    assert fix in violations[0].message


def test_filter_reads_the_establishment_and_defaults_without_one(level, establishment_data):
    assert establishment_data["hardening"] == {"backup_clients": "intermediary"}  # the lab opts in
    assert level(establishment_data, ["backup_clients", "degraded_export_hosts"]) == "intermediary"
    assert level(establishment_data, ["backup_servers"]) == "enhanced"
    assert level(None, ["backup_servers"]) == "enhanced"  # a GHT's shared server
    assert level({"finess": "x"}, ["backup_clients"]) == "none"  # only the hardening section is read
    with pytest.raises(AnsibleFilterError, match=r"establishment\.hardening\.backup_clients"):
        level({"hardening": {"backup_clients": "max"}}, ["backup_clients"])


def test_hardening_level_in_the_inventory_is_refused(project, tmp_path, capsys):
    inventory = tmp_path / "lab"
    shutil.copytree(project / "inventories" / "lab", inventory, ignore=shutil.ignore_patterns("vault.yml"))
    assert main(["validate", str(inventory)]) == 0
    override = inventory / "group_vars" / "backup_clients" / "hardening.yml"
    override.write_text(
        override.read_text(encoding="utf-8") + "hardening_level: enhanced\n", encoding="utf-8"
    )
    assert main(["validate", str(inventory)]) == 1
    out = capsys.readouterr().out
    assert "hardening_level: set in the inventory (group_vars/backup_clients/hardening.yml)" in out
    assert "establishment.hardening.<group>" in out
