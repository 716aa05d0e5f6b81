"""The establishment's computed plan (rempart/model/establishment.py, Establishment.dataset_plan): one rule per derived
value, the values of every inventory of the project unchanged since issue 20 moved the rules into the model, and
the timers the backup server renders from it byte-identical."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from rempart.model.establishment import TUNNEL_PORT_BASE, Establishment, backup_schedule
from rempart.reports.documents import render_plan

PROJECT = Path(__file__).resolve().parents[2]
BEFORE = json.loads((PROJECT / "tests/fixtures/plan/before-issue-20.json").read_text())
ESTABLISHMENT_FILES = sorted(key for key in BEFORE if not key.startswith("_"))


def _filters(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, PROJECT / "plugins/filter" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


plan_filters = _filters("rempart_plan")
backup_filters = _filters("rempart_backup")


def _establishment(relative: str) -> Establishment:
    return Establishment.model_validate(yaml.safe_load((PROJECT / relative).read_text())["establishment"])


def test_every_establishment_file_of_the_project_is_covered() -> None:
    found = sorted(
        str(path.relative_to(PROJECT))
        for pattern in ("inventories/*/group_vars/*/establishment.yml", "molecule/*/inventory/group_vars/all/*.yml",
                        "tests/benchmarks/*/group_vars/all/establishment.yml")
        for path in PROJECT.glob(pattern)
        if path.name == "establishment.yml" and "hardening_inventory" not in path.parts  # no dataset: hardening only
    )  # fmt: skip
    assert found == ESTABLISHMENT_FILES


@pytest.mark.parametrize("relative", ESTABLISHMENT_FILES)
def test_plan_keeps_the_ports_and_timers_computed_before(relative: str) -> None:
    plan = _establishment(relative).roles_plan()
    assert plan["datasets"] == BEFORE[relative]
    assert list(plan["datasets"]) == list(BEFORE[relative])
    declared = yaml.safe_load((PROJECT / relative).read_text())["establishment"]["datasets"]
    assert list(plan["datasets"]) == [d["name"] for d in declared]  # declaration order


@pytest.mark.parametrize("relative", ESTABLISHMENT_FILES)
def test_rendered_backup_timers_are_byte_identical(relative: str) -> None:
    now = _establishment(relative).roles_plan()["datasets"]
    for suffix in ("", "-340999911"):  # one establishment, and a GHT view's units
        rendered = backup_filters.rempart_timer_files(now, suffix, "*-*-* 03:30:00", "Sun *-*-* 05:00:00")
        before = backup_filters.rempart_timer_files(
            BEFORE[relative], suffix, "*-*-* 03:30:00", "Sun *-*-* 05:00:00"
        )
        assert rendered == before


def test_lab_backup_timer_as_the_server_installs_it() -> None:
    plan = _establishment("inventories/lab/group_vars/all/establishment.yml").roles_plan()["datasets"]
    files = backup_filters.rempart_timer_files(plan, "", "*-*-* 03:30:00", "Sun *-*-* 05:00:00")
    timer = next(f for f in files if f["path"] == "/etc/systemd/system/rempart-backup-partages.timer")
    assert timer["content"] == (
        "# Managed by Rempart (backup_server).\n[Unit]\nDescription=Rempart backup of dataset partages\n\n"
        "[Timer]\nOnCalendar=*-*-* 01:47:00\nPersistent=true\nRandomizedDelaySec=120\n"
        "Unit=rempart-backup@partages.service\n\n[Install]\nWantedBy=timers.target\n"
    )


# --------------------------------------------------------------------------- tunnel port


def test_tunnel_port_is_the_base_plus_the_rank_of_the_dataset(establishment_data: dict[str, Any]) -> None:
    establishment = Establishment.model_validate(establishment_data)
    names = [d.name for d in establishment.datasets]
    assert {n: p.tunnel_port for n, p in establishment.dataset_plan().items()} == {
        name: TUNNEL_PORT_BASE + rank for rank, name in enumerate(names)
    }
    assert [p.tunnel_port for p in establishment.dataset_plan(20000).values()] == list(
        range(20000, 20000 + len(names))
    )


# --------------------------------------------------------------------------- backup timer


@pytest.mark.parametrize(
    ("rpo", "calendar", "wording"),
    [(1, "*-*-* 00/1:05:00", "toutes les heures, à la minute 05"),
     (5, "*-*-* 00/4:05:00", "toutes les 4 h, à la minute 05"),
     (12, "*-*-* 00/12:05:00", "toutes les 12 h, à la minute 05"),
     (24, "*-*-* 01:05:00", "chaque jour à 01:05"),
     (167, "*-*-* 01:05:00", "chaque jour à 01:05"),
     (168, "Sun *-*-* 01:05:00", "chaque dimanche à 01:05")],
)  # fmt: skip
def test_timer_is_never_less_frequent_than_the_rpo_and_worded_the_same(
    rpo: int, calendar: str, wording: str
) -> None:
    assert backup_schedule(rpo, 65) == (calendar, wording)


def test_timer_minute_is_the_tunnel_port_times_seven(establishment_data: dict[str, Any]) -> None:
    for item in Establishment.model_validate(establishment_data).dataset_plan(18100).values():
        assert item.schedule.split(":")[1] == f"{item.tunnel_port * 7 % 60:02d}"


def test_declared_timer_replaces_the_derived_one(establishment_data: dict[str, Any]) -> None:
    establishment_data["datasets"][1]["backup"] = {"schedule": "*-*-* 02,14:30:00"}
    plan = Establishment.model_validate(establishment_data).dataset_plan()
    declared = plan[establishment_data["datasets"][1]["name"]]
    assert declared.schedule == "*-*-* 02,14:30:00"
    assert declared.schedule_fr == "selon le calendrier déclaré « *-*-* 02,14:30:00 »"
    assert (
        plan[establishment_data["datasets"][0]["name"]].schedule == "*-*-* 00/12:40:00"
    )  # the others unchanged


def test_backup_plan_document_words_the_installed_timers(establishment_data: dict[str, Any]) -> None:
    establishment = Establishment.model_validate(establishment_data)
    html = render_plan(establishment, datetime(2026, 12, 6, tzinfo=UTC))
    for item in establishment.dataset_plan().values():
        assert f"<td>{item.schedule_fr}</td>" in html
    assert "toutes les 12 h, à la minute 40" in html and "chaque jour à 01:47" in html


# --------------------------------------------------------------------------- the plan in plays and roles


def test_role_filter_gives_the_model_plan(establishment_data: dict[str, Any]) -> None:
    expected = Establishment.model_validate(copy.deepcopy(establishment_data)).roles_plan(18200)
    assert plan_filters.rempart_plan(establishment_data, "18200") == expected
    assert set(expected) == {
        "finess",
        "datasets",
        "retention",
        "offsite",
        "quota_bytes",
        "thresholds",
        "limits",
        "server",
    }
    assert all(set(item) == {"tunnel_port", "schedule"} for item in expected["datasets"].values())


def test_role_filter_refuses_an_invalid_establishment(establishment_data: dict[str, Any]) -> None:
    establishment_data["datasets"][0]["rpo_hours"] = 0
    with pytest.raises(AnsibleFilterError, match=r"run playbooks/validate\.yml"):
        plan_filters.rempart_plan(establishment_data)


def test_published_plan_is_read_per_establishment_group() -> None:
    localhost = {"rempart_plan": {"ch_nord": {"finess": "340999911", "datasets": {}}}}
    assert plan_filters.rempart_plan_of(localhost, "ch_nord")["finess"] == "340999911"
    with pytest.raises(AnsibleFilterError, match="no establishment for group 'all'"):
        plan_filters.rempart_plan_of(localhost)
    with pytest.raises(AnsibleFilterError, match="--limit localhost,<hosts>"):
        plan_filters.rempart_plan_of({})


# --------------------------------------------------------------------------- names of the backup service's instance


def test_server_names_of_a_server_of_its_own_have_no_suffix() -> None:
    assert Establishment.server_names("") == {
        "suffix": "",
        "user": "rempart",
        "repos_dir": "/srv/rempart/repos",
        "state_dir": "/var/lib/rempart",
        "config_dir": "/etc/rempart",
        "config_file": "/etc/rempart/backup-server.json",
        "secrets_dir": "/etc/rempart/secrets",
        "ledger_dir": "/var/lib/rempart/ledger",
        "ssh_public_key": "/var/lib/rempart/ssh/id_ed25519.pub",
        "admin_command": "/usr/local/sbin/rempart-backup-admin",
        "units": {
            "rest": "rempart-rest-server.service",
            "backup": "rempart-backup@.service",
            "retention": "rempart-retention@.service",
            "check": "rempart-check@.service",
            "offsite_copy": "rempart-offsite-copy.service",
        },
    }


def test_server_names_of_a_ght_view_carry_its_finess() -> None:
    names = Establishment.server_names("340999911")
    assert names["suffix"] == "-340999911"
    assert names["user"] == "rempart-340999911"
    assert names["repos_dir"] == "/srv/rempart-340999911/repos"
    assert names["ssh_public_key"] == "/var/lib/rempart-340999911/ssh/id_ed25519.pub"
    assert names["units"]["backup"] == "rempart-backup-340999911@.service"
    assert names["units"]["offsite_copy"] == "rempart-offsite-copy-340999911.service"
    assert names["admin_command"] == "/usr/local/sbin/rempart-backup-admin-340999911"
    units = names.pop("units")
    assert all("-340999911" in value for value in [*names.values(), *units.values()])


def test_role_filter_names_the_instance(establishment_data: dict[str, Any]) -> None:
    assert (
        plan_filters.rempart_plan(establishment_data, backup_instance="340999911")["server"]["user"]
        == "rempart-340999911"
    )
    assert plan_filters.rempart_plan(establishment_data)["server"]["user"] == "rempart"


# --------------------------------------------------------------------------- retention on site and offsite

BEFORE_LOCKS = json.loads((PROJECT / "tests/fixtures/plan/before-issue-20-retention-alerts.json").read_text())


def test_the_retention_fixture_covers_every_establishment_file() -> None:
    assert sorted(key for key in BEFORE_LOCKS if not key.startswith("_")) == ESTABLISHMENT_FILES


@pytest.mark.parametrize("relative", ESTABLISHMENT_FILES)
def test_plan_keeps_the_retention_and_offsite_lock_computed_before(relative: str) -> None:
    plan = _establishment(relative).roles_plan()
    assert plan["retention"] == BEFORE_LOCKS[relative]["retention"]
    assert plan["offsite"] == BEFORE_LOCKS[relative]["offsite"]


def test_retention_keeps_the_declared_counts_and_defaults_the_others(
    establishment_data: dict[str, Any],
) -> None:
    establishment_data.pop("retention", None)
    assert Establishment.model_validate(establishment_data).retention_plan() == {
        "daily": 15,
        "monthly": 12,
        "yearly": 5,
    }
    establishment_data["retention"] = {"daily": 30}
    assert Establishment.model_validate(establishment_data).retention_plan() == {
        "daily": 30,
        "monthly": 12,
        "yearly": 5,
    }


def test_offsite_cap_is_declared_or_the_lock_plus_thirty_days_within_ten_years(
    establishment_data: dict[str, Any],
) -> None:
    def lock(**offsite: int) -> dict[str, int]:
        establishment_data["offsite"] = {"region": "eu-west-3", **offsite}
        return Establishment.model_validate(establishment_data).offsite_plan()

    assert lock(retention_days=30) == {"retention_days": 30, "retention_cap_days": 60}
    assert lock(retention_days=30, retention_cap_days=90) == {"retention_days": 30, "retention_cap_days": 90}
    assert lock(retention_days=3640) == {"retention_days": 3640, "retention_cap_days": 3650}


def test_backup_plan_document_words_the_retention_of_the_plan(establishment_data: dict[str, Any]) -> None:
    establishment_data["retention"] = {"daily": 21, "monthly": 9}
    establishment_data["offsite"]["retention_days"] = 40
    html = render_plan(Establishment.model_validate(establishment_data), datetime(2026, 12, 6, tzinfo=UTC))
    assert "conservation de 21 sauvegardes\nquotidiennes, 9 mensuelles et 5 annuelles" in html
    assert "mode COMPLIANCE, 40 jours)" in html


# --------------------------------------------------------------------------- quota and alert thresholds


@pytest.mark.parametrize("relative", ESTABLISHMENT_FILES)
def test_plan_keeps_the_quotas_and_thresholds_computed_before(relative: str) -> None:
    plan = _establishment(relative).roles_plan()
    assert plan["quota_bytes"] == BEFORE_LOCKS[relative]["quota_bytes"]
    assert plan["thresholds"] == BEFORE_LOCKS[relative]["thresholds"]
    assert (
        list(plan["quota_bytes"]) == list(plan["thresholds"]) == list(plan["datasets"])
    )  # declaration order


def test_quota_is_the_expected_size_plus_the_growth_margin(establishment_data: dict[str, Any]) -> None:
    first, second = (d["name"] for d in establishment_data["datasets"][:2])
    establishment_data["datasets"][0]["backup"] = {"expected_size_gib": 100}
    establishment_data["datasets"][1]["backup"] = {"expected_size_gib": 2.5, "growth_margin_percent": 0}
    quota = Establishment.model_validate(establishment_data).quota_plan()
    assert quota[first] == 150 * 1024**3  # default margin 50 %
    assert quota[second] == int(2.5 * 1024**3)
    assert all(
        quota[d["name"]] is None for d in establishment_data["datasets"][2:]
    )  # none declared: no quota


def test_thresholds_are_the_defaults_without_alerts(establishment_data: dict[str, Any]) -> None:
    establishment_data.pop("alerts", None)
    thresholds = Establishment.model_validate(establishment_data).threshold_plan()
    assert set(thresholds) == {d["name"] for d in establishment_data["datasets"]}
    for values in thresholds.values():
        assert values["backup_age_warning_ratio"] == 1.0 and values["backup_grace_minutes"] == 60
        assert values["quota_warning_percent"] == 80.0 and values["quota_critical_percent"] == 95.0


def test_a_dataset_override_replaces_only_its_own_keys(establishment_data: dict[str, Any]) -> None:
    first, second = (d["name"] for d in establishment_data["datasets"][:2])
    establishment_data["alerts"] = {
        "email": ["astreinte@ch-exemple.fr"],
        "smtp_relay": "smtp.ch-exemple.fr:25",
        "thresholds": {"backup_grace_minutes": 30},
        "overrides": {first: {"quota_warning_percent": 70, "backup_grace_minutes": 90}},
    }
    thresholds = Establishment.model_validate(establishment_data).threshold_plan()
    assert (thresholds[first]["quota_warning_percent"], thresholds[first]["backup_grace_minutes"]) == (70, 90)
    assert (thresholds[second]["quota_warning_percent"], thresholds[second]["backup_grace_minutes"]) == (
        80.0,
        30,
    )
    assert thresholds[first]["quota_critical_percent"] == thresholds[second]["quota_critical_percent"] == 95.0


def test_supervision_configuration_takes_the_quotas_and_thresholds_it_is_given(
    establishment_data: dict[str, Any],
) -> None:
    alerts = _filters("rempart_alerts")
    plan = Establishment.model_validate(copy.deepcopy(establishment_data)).roles_plan()
    computed = alerts.rempart_alerts(establishment_data)["datasets"]
    assert {n: d["quota_bytes"] for n, d in computed.items()} == plan["quota_bytes"]
    assert {n: d["thresholds"] for n, d in computed.items()} == plan["thresholds"]
    name = next(iter(plan["quota_bytes"]))
    given = alerts.rempart_alerts(
        establishment_data,
        plan["quota_bytes"] | {name: 1024},
        plan["thresholds"] | {name: plan["thresholds"][name] | {"backup_grace_minutes": 5}},
    )["datasets"][name]
    assert given["quota_bytes"] == 1024 and given["thresholds"]["backup_grace_minutes"] == 5


def test_limits_are_the_models_own_policy(establishment_data: dict[str, Any]) -> None:
    limits = Establishment.model_validate(establishment_data).roles_plan()["limits"]
    assert limits == {
        "retention_floor": {"daily": 7, "monthly": 1, "yearly": 1},
        "offsite_regions": [
            "eu-west-3",
            "eu-west-1",
            "eu-central-1",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
        ],
    }  # the values roles/backup_server and roles/offsite_copy held as copies before issue 20
