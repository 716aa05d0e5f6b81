"""French wording of the documents a hospital reads: times in Europe/Paris with their offset, decimals with a
comma, criticality and statuses in French."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
CRITICALITY = {"vital": "vitale", "critical": "critique", "important": "importante", "standard": "standard"}
# Status words a French document must never show (the producers record them in English).
ENGLISH_STATUS_WORDS = ("passed", "failed", "succeeded", "recovered", "compliant", "critical", "missing")


def fr_datetime(value: datetime) -> str:
    """``30/11/2026 à 19:09 (UTC+01:00)``: Paris time, with the offset it had then."""
    local = value.astimezone(PARIS)
    offset = local.strftime("%z")
    return f"{local:%d/%m/%Y à %H:%M} (UTC{offset[:3]}:{offset[3:]})"


def fr_date(value: datetime) -> str:
    return f"{value.astimezone(PARIS):%d/%m/%Y}"


def fr_number(value: float, digits: int = 1) -> str:
    """``0,15``: a comma as decimal separator, trailing zeros dropped, a narrow space between thousands."""
    text = f"{value:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:,.0f}"
    return text.replace(",", "\u202f").replace(".", ",")


def fr_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{fr_number(seconds)} s"
    if seconds < 7200:
        return f"{fr_number(seconds / 60)} min"
    return f"{fr_number(seconds / 3600, 2)} h"
