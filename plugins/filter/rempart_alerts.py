"""Jinja2 filter giving roles/supervision what the establishment's ``alerts`` section and datasets mean for the
backup server (rempart/establishment.py, the model the validation uses): effective thresholds per dataset, the
repository quotas, the relay and the supervision addresses."""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible.errors import AnsibleFilterError
from pydantic import ValidationError

from rempart.establishment import AlertThresholds, Establishment
from rempart.validation import plain


def rempart_alerts(establishment: Any) -> dict[str, Any]:
    """Plain data for the supervision configuration (check_rempart, rules, mail)."""
    try:
        model = Establishment.model_validate(plain(establishment))
    except ValidationError as error:  # playbooks/validate.yml names the fields first; this is a last guard
        raise AnsibleFilterError(f"invalid establishment (run playbooks/validate.yml): {error}") from error
    alerts = model.alerts
    defaults = AlertThresholds().model_dump()
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
                "quota_bytes": dataset.backup.quota_bytes,
                "thresholds": alerts.thresholds_for(dataset.name) if alerts else defaults,
            }
            for dataset in model.datasets
        },
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_alerts": rempart_alerts}
