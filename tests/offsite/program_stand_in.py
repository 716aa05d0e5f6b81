"""The offsite tests' establishment, and a reset of the stand-in before the Pulumi program makes its bucket
again (lab/offsite_replay.py; the program's IAM names are fixed per FINESS)."""

from __future__ import annotations

import urllib.request
from typing import Any

from rempart.model.establishment import Establishment
from rempart.model.validation import load_valid

ESTABLISHMENT = {
    "finess": "340999903",
    "name": "CH des tests",
    "retention": {"daily": 7, "monthly": 12, "yearly": 5},
    "offsite": {"provider": "aws", "region": "eu-west-3", "retention_days": 30},
    "datasets": [
        {"name": "partages", "description": "d", "host": "files-01", "kind": "files",
         "paths": ["/srv/partages"], "criticality": "important", "rpo_hours": 24, "rto_hours": 24},
    ],
}  # fmt: skip


def an_establishment(**offsite: Any) -> Establishment:
    data = {**ESTABLISHMENT, "offsite": {**ESTABLISHMENT["offsite"], **offsite}}
    return load_valid(data, ["files-01"])


def reset_stand_in(endpoint: str) -> None:
    """moto's own reset: every bucket and identity gone (the program's IAM names are fixed per FINESS)."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
