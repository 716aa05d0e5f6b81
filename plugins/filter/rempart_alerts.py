"""Jinja2 filter giving roles/supervision what the establishment's ``alerts`` section and datasets mean for the
backup server (rempart/model/establishment.py, the model the validation uses): effective thresholds per dataset, the
repository quotas, the relay and the supervision addresses."""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible.errors import AnsibleFilterError
from pydantic import ValidationError

from rempart.model.establishment import Establishment
from rempart.model.validation import plain


def rempart_alerts(
    establishment: Any, quota_bytes: dict[str, Any] | None = None, thresholds: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Plain data for the supervision configuration (check_rempart, rules, mail). ``quota_bytes`` and
    ``thresholds`` per dataset: the plan's (Establishment.quota_plan, threshold_plan), computed here when None."""
    try:
        model = Establishment.model_validate(plain(establishment))
    except ValidationError as error:  # playbooks/validate.yml names the fields first; this is a last guard
        raise AnsibleFilterError(f"invalid establishment (run playbooks/validate.yml): {error}") from error
    alerts = model.alerts
    quota_bytes = model.quota_plan() if quota_bytes is None else plain(quota_bytes)
    thresholds = model.threshold_plan() if thresholds is None else plain(thresholds)
    networks = [ipaddress.ip_network(s, strict=False) for s in (alerts.supervision if alerts else [])]
    return {
        "establishment": model.name,
        "finess": model.finess,
        "email": list(alerts.email) if alerts else [],
        "relay_host": alerts.relay_host if alerts else "",
        "relay_port": alerts.relay_port if alerts else 0,
        "sender": (alerts.sender or "") if alerts else "",
        "supervision_v4": [str(n) for n in networks if n.version == 4],
        "supervision_v6": [str(n) for n in networks if n.version == 6],
        "datasets": {
            dataset.name: {
                "host": dataset.host,
                "rpo_hours": dataset.rpo_hours,
                "quota_bytes": quota_bytes[dataset.name],
                "offline_copy": model.offline_copy is not None,
                "thresholds": thresholds[dataset.name],
            }
            for dataset in model.datasets
        },
    }


THRESHOLD_METRICS = {
    "rempart_alert_backup_age_warning_seconds": "newest backup older than this (rpo_hours x ratio + grace): warning",
    "rempart_alert_backup_age_critical_seconds": "newest backup older than this: critical",
    "rempart_alert_offsite_lag_warning_seconds": "offsite copy lag above this: warning",
    "rempart_alert_offsite_lag_critical_seconds": "offsite copy lag above this: critical",
    "rempart_alert_drill_age_warning_seconds": "last restore drill older than this: warning",
    "rempart_alert_drill_age_critical_seconds": "last restore drill older than this: critical",
    "rempart_alert_check_age_warning_seconds": "last restic check older than this: warning",
    "rempart_alert_check_age_critical_seconds": "last restic check older than this: critical",
    "rempart_alert_quota_warning_ratio": "repository use / quota above this: warning",
    "rempart_alert_quota_critical_ratio": "repository use / quota above this: critical",
}


def _threshold_values(dataset: dict[str, Any]) -> dict[str, float]:
    limits, rpo = dataset["thresholds"], float(dataset["rpo_hours"]) * 3600
    grace = float(limits["backup_grace_minutes"]) * 60
    values = {
        "rempart_alert_backup_age_warning_seconds": rpo * float(limits["backup_age_warning_ratio"]) + grace,
        "rempart_alert_backup_age_critical_seconds": rpo * float(limits["backup_age_critical_ratio"]) + grace,
        "rempart_alert_quota_warning_ratio": float(limits["quota_warning_percent"]) / 100,
        "rempart_alert_quota_critical_ratio": float(limits["quota_critical_percent"]) / 100,
    }
    for flow, unit, seconds in (
        ("offsite_lag", "hours", 3600),
        ("drill_age", "days", 86400),
        ("check_age", "days", 86400),
    ):
        for level in ("warning", "critical"):
            values[f"rempart_alert_{flow}_{level}_seconds"] = (
                float(limits[f"{flow}_{level}_{unit}"]) * seconds
            )
    return values


def rempart_alert_threshold_metrics(alerts: dict[str, Any]) -> str:
    """The thresholds as Prometheus textfile metrics (the alert rules compare each dataset to its own)."""
    lines = []
    for metric, help_text in THRESHOLD_METRICS.items():
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        for name, dataset in sorted(alerts["datasets"].items()):
            value = _threshold_values(dataset)[metric]
            lines.append(f'{metric}{{dataset="{name}",host="{dataset["host"]}"}} {value:.15g}')
    return "\n".join(lines) + "\n"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "rempart_alerts": rempart_alerts,
            "rempart_alert_threshold_metrics": rempart_alert_threshold_metrics,
        }
