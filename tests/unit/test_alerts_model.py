"""establishment.alerts and the per-dataset quota (issues 16 and 15 item 5): bad input is refused before any
change, naming the field and the fix; the effective thresholds and quotas are what the roles receive."""

from __future__ import annotations

from typing import Any

import pytest

from plugins.filter.rempart_alerts import rempart_alerts
from rempart.model.validation import validate

ALERTS = {
    "email": ["astreinte-informatique@ch-lab.fr"],
    "smtp_relay": "smtp.ch-lab.fr:25",
    "supervision": ["10.20.0.15", "10.20.1.0/28", "fd00::15"],
}


@pytest.fixture
def data(establishment_data: dict[str, Any]) -> dict[str, Any]:
    establishment_data["alerts"] = {**ALERTS, "overrides": {}}
    return establishment_data


def _violations(data: dict[str, Any]) -> dict[str, str]:
    _, violations = validate(data)
    return {v.path: v.message for v in violations}


BAD = [
    ("email", {"email": ["astreinte"]}, "establishment.alerts.email[0]", "astreinte-informatique@"),
    ("no email", {"email": []}, "establishment.alerts.email", "at least 1"),
    ("relay without port", {"smtp_relay": "smtp.ch-lab.fr"}, "establishment.alerts.smtp_relay", ":25"),
    (
        "relay bad port",
        {"smtp_relay": "smtp.ch-lab.fr:99999"},
        "establishment.alerts.smtp_relay",
        "host:port",
    ),
    ("relay bad host", {"smtp_relay": "smtp ch:25"}, "establishment.alerts.smtp_relay", "host name"),
    ("supervision", {"supervision": ["centreon"]}, "establishment.alerts.supervision", "10.20.0.15"),
    ("unknown key", {"mail": ["a@b.fr"]}, "establishment.alerts.mail", "valid keys here: email"),
    (
        "warning above critical",
        {"thresholds": {"quota_warning_percent": 97}},
        "establishment.alerts.thresholds",
        "quota_warning_percent (97.0) is above quota_critical_percent",
    ),
    (
        "override unknown dataset",
        {"overrides": {"dpi": {"backup_age_warning_ratio": 1.5}}},
        "establishment.alerts.overrides.dpi",
        "unknown dataset 'dpi'; an override names a declared dataset: classeur-degrade, dpi-postgresql",
    ),
    (
        "override unknown threshold",
        {"overrides": {"partages": {"rpo": 3}}},
        "establishment.alerts.overrides.partages.rpo",
        "unknown key",
    ),
    (
        "override crossing the establishment's critical",
        {"overrides": {"partages": {"offsite_lag_warning_hours": 60}}},
        "establishment.alerts",
        "overrides.partages: offsite_lag_warning_hours (60",
    ),
]


@pytest.mark.parametrize(("case", "change", "path", "hint"), BAD, ids=[case[0] for case in BAD])
def test_bad_alerts_are_refused_naming_the_field(data, case, change, path, hint):
    data["alerts"].update(change)
    found = _violations(data)
    assert path in found, found
    assert hint in found[path]


def test_bad_quota_names_the_field(data):
    data["datasets"][1]["backup"] = {"expected_size_gib": -3}
    found = _violations(data)
    assert "greater than 0" in found["establishment.datasets[1].backup.expected_size_gib"]
    assert "expected size in GiB" in found["establishment.datasets[1].backup.expected_size_gib"]


def test_alerts_are_optional(establishment_data):
    establishment_data.pop("alerts", None)
    assert _violations(establishment_data) == {}
    published = rempart_alerts(establishment_data)
    assert published["email"] == [] and published["relay_port"] == 0
    assert published["datasets"]["partages"]["thresholds"]["backup_age_critical_ratio"] == 2.0


def test_published_thresholds_merge_overrides_and_quota(data):
    data["alerts"]["thresholds"] = {"backup_age_critical_ratio": 3}
    data["alerts"]["overrides"] = {"partages": {"backup_age_warning_ratio": 1.5, "quota_warning_percent": 70}}
    data["datasets"][1]["backup"] = {"expected_size_gib": 2, "growth_margin_percent": 25}
    assert _violations(data) == {}
    published = rempart_alerts(data)
    partages = published["datasets"]["partages"]
    assert partages["quota_bytes"] == int(2.5 * 1024**3)
    assert partages["thresholds"]["backup_age_warning_ratio"] == 1.5
    assert partages["thresholds"]["backup_age_critical_ratio"] == 3  # the establishment's, not the default
    assert partages["thresholds"]["quota_warning_percent"] == 70
    assert published["datasets"]["dpi-postgresql"]["thresholds"]["backup_age_warning_ratio"] == 1.0
    assert published["datasets"]["dpi-postgresql"]["quota_bytes"] is None
    assert (published["relay_host"], published["relay_port"]) == ("smtp.ch-lab.fr", 25)
    assert published["supervision_v4"] == ["10.20.0.15/32", "10.20.1.0/28"]
    assert published["supervision_v6"] == ["fd00::15/128"]
