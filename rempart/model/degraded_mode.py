"""The ``degraded_mode`` section of an establishment (DEG-01…DEG-11, CARE-D2-02): when the export of the
records runs, what it contains, how long a copy stays trustworthy on the rescue stations, how many
generations they keep, and which stations get it. Roles: ``degraded_export``, ``degraded_station``.

Every key has a safe default except ``export`` (what to export is the establishment's decision): an
establishment without ``export`` simply has no degraded-mode binder, and the roles refuse to run.
"""

from __future__ import annotations

import itertools
import math
import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Twice a day, as CH Laborit does (DEG-02); the hospital may go down to hourly.
DEFAULT_EXPORT_TIMES = ("06:30", "18:30")
MIN_EXPORT_GAP_MINUTES = 60
# Added to the longest gap between two exports to get the default staleness limit: one export may run late.
STALENESS_MARGIN_HOURS = 2

_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class View(StrEnum):
    """The binder's sections (DEG-06 minimum dataset); each is one declared query."""

    census = "census"  # patient census by unit and room
    allergies = "allergies"
    prescriptions = "prescriptions"  # active prescriptions
    care_plan = "care_plan"  # plan de soins
    results = "results"  # recent lab/imaging results
    schedules = "schedules"  # unit schedules (agenda dégradé)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DegradedExport(_Strict):
    """What the export host runs: SQL queries against the dataset holding the patient records."""

    # Name of the establishment's dataset holding the records (a postgresql dataset); the export runs on
    # that dataset's host, against its database, read-only.
    source: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")]
    # SQL per view, overriding the role's defaults (written for the lab's fictitious DPI schema).
    queries: dict[View, Annotated[str, Field(min_length=10)]] = Field(default_factory=dict)
    # How far back the "recent results" view looks.
    results_days: int = Field(7, ge=1, le=90)

    @field_validator("queries")
    @classmethod
    def read_only_queries(cls, queries: dict[View, str]) -> dict[View, str]:
        for view, sql in queries.items():
            first = sql.lstrip().split(None, 1)[0].lower() if sql.strip() else ""
            if first not in ("select", "with"):
                raise ValueError(
                    f"queries.{view.value} must be a read-only SELECT (or WITH … SELECT) query; "
                    "the export runs in a read-only transaction anyway"
                )
        return queries


class Station(_Strict):
    host: str = Field(min_length=1)
    # Where it stands (printed in the binder and the station report), e.g. "Bâtiment A, 2e étage".
    location: str = ""
    # Units whose patients the station's staff look up first (informative; every station gets the whole
    # binder so that a patient moved between units is still found).
    units: list[str] = Field(default_factory=list)


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _gaps(times: list[str]) -> list[int]:
    """Minutes between consecutive export times, around the clock (sorted input)."""
    minutes = [_minutes(t) for t in times]
    if len(minutes) == 1:
        return [1440]
    return [b - a for a, b in itertools.pairwise(minutes)] + [minutes[0] + 1440 - minutes[-1]]


class DegradedMode(_Strict):
    # Local times (HH:MM) at which the export runs; default twice a day, at most every hour.
    export_times: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXPORT_TIMES), min_length=1, max_length=24
    )
    # Age after which the stations show the staleness banner and alert. Default: longest gap between two
    # exports + 2 h.
    staleness_limit_hours: int | None = Field(None, ge=1, le=168)
    # Binder generations kept on each station (encrypted) and on the export host.
    generations: int = Field(6, ge=2, le=60)
    # How often the stations look for a new binder.
    fetch_interval_minutes: int = Field(15, ge=5, le=720)
    export: DegradedExport | None = None
    # The stations; empty = every host of the inventory group degraded_stations.
    stations: list[Station] = Field(default_factory=list)

    @field_validator("export_times")
    @classmethod
    def valid_times(cls, times: list[str]) -> list[str]:
        for position, value in enumerate(times):
            if not isinstance(value, str) or not _TIME.match(value):
                raise ValueError(
                    f"export_times[{position}] = {value!r} is not a time: write 'HH:MM' between quotes, "
                    "e.g. ['06:30', '18:30']"
                )
        ordered = sorted(set(times), key=_minutes)
        if len(ordered) != len(times):
            raise ValueError("export_times has duplicates; list each time once")
        if min(_gaps(ordered)) < MIN_EXPORT_GAP_MINUTES:
            raise ValueError(
                "export_times are less than an hour apart; the export runs at most hourly "
                "(space the times at least 60 minutes apart)"
            )
        return ordered

    @property
    def longest_gap_hours(self) -> float:
        return max(_gaps(self.export_times)) / 60

    @property
    def effective_staleness_limit_hours(self) -> int:
        if self.staleness_limit_hours is not None:
            return self.staleness_limit_hours
        return math.ceil(self.longest_gap_hours) + STALENESS_MARGIN_HOURS

    @property
    def on_calendar(self) -> list[str]:
        """systemd OnCalendar= values of the export timer."""
        return [f"*-*-* {t}:00" for t in self.export_times]

    @model_validator(mode="after")
    def staleness_covers_gap(self) -> DegradedMode:
        gap = math.ceil(self.longest_gap_hours)
        if self.staleness_limit_hours is not None and self.staleness_limit_hours < gap:
            raise ValueError(
                f"staleness_limit_hours ({self.staleness_limit_hours}) is shorter than the longest gap between "
                f"two exports ({gap} h): the stations would show the staleness banner between regular exports; "
                f"set it to at least {gap} or add export_times"
            )
        hosts = [s.host for s in self.stations]
        duplicates = sorted({h for h in hosts if hosts.count(h) > 1})
        if duplicates:
            raise ValueError(f"stations: {', '.join(duplicates)} listed more than once; list each host once")
        return self
