"""Result files under ``reports/<finess>/``: what jobs, drills and checks record, read back for the reports.

Each producer (backup jobs, restore drills, ransomware drill, hardening scan, offsite verifier, offline copy, red
button) writes one JSON document in the layout below; the evidence report is computed only from these files and
the inventory, never from hand-typed numbers. Layout and fields: docs/results.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator


class Result(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BackupJob(Result):
    started: AwareDatetime
    finished: AwareDatetime | None = None
    duration_s: float | None = None
    status: Literal["success", "failed"]
    snapshot: str | None = None
    bytes_added: int | None = None
    files_new: int | None = None
    files_changed: int | None = None
    anomaly: bool = False
    trusted: bool = True  # the server's arrival checks passed (ledger `trusted`)
    changed_ratio: float | None = None  # share of files added or changed (ledger `stats`)
    entropy_share: float | None = None  # share of sampled touched files that look encrypted
    first: bool = (
        False  # the dataset's first snapshot: everything is new, no anomaly rule applies (ledger `stats`)
    )

    @property
    def usable(self) -> bool:
        """A snapshot a restore may rely on (and the RPO may count): it succeeded, is trusted, raised no anomaly."""
        return self.status == "success" and self.trusted and not self.anomaly


class BackupHistory(Result):
    dataset: str
    jobs: list[BackupJob] = Field(default_factory=list)
    prune_hold: bool = False

    def successes(self) -> list[BackupJob]:
        return sorted((j for j in self.jobs if j.status == "success"), key=lambda j: j.started)

    def usable(self) -> list[BackupJob]:
        """The successful snapshots without anomaly, oldest first: what the RPO counts."""
        return [j for j in self.successes() if j.usable]


class DrillDataset(Result):
    dataset: str
    status: Literal["passed", "failed"]
    source: Literal["onsite", "offsite", "offline"] = "onsite"
    files_verified: int = 0
    files_failed: int = 0
    rows_checked: int | None = None
    bytes_restored: int | None = None
    duration_s: float
    rto_hours: float | None = None
    errors: list[str] = Field(default_factory=list)
    scope: Literal["full", "sample"] = "full"
    restore_s: float | None = None  # the restore unit: restic restore, then every restored file hashed
    load_s: float | None = None  # a database's load unit: the dump loaded into a scratch server, rows counted
    rto_estimated_s: float | None = None  # duration_s, extrapolated to the full size for a sampled dataset


class Drill(Result):
    kind: Literal["restore"] = "restore"
    started: AwareDatetime
    finished: AwareDatetime
    datasets: list[DrillDataset]

    @property
    def passed(self) -> bool:
        return bool(self.datasets) and all(d.status == "passed" for d in self.datasets)


class Attempt(Result):
    actor: str
    action: str
    outcome: Literal["refused", "recovered", "succeeded"]
    detail: str = ""


class OffsiteLeg(Result):
    """The ransomware drill's offsite leg: the writer key turned against the bucket, then a restore from the
    point-in-time recovery alone."""

    bucket: str
    recovered_at: AwareDatetime
    attempts: int
    refused: int
    objects_hidden: int
    versions_deleted: int
    files_lost: int
    rows_lost: int
    files_checked: int
    rows_checked: int
    restore_time_s: float
    status: Literal["passed", "failed"]


class RansomwareDrill(Result):
    started: AwareDatetime
    finished: AwareDatetime
    attempts: list[Attempt]
    files_lost: int
    rows_lost: int
    files_checked: int | None = None
    rows_checked: int | None = None
    restore_time_s: float
    status: Literal["passed", "failed"]
    offsite: OffsiteLeg | str | None = None  # "not run: <why>" when the inventory has no offsite bucket


class HardeningScore(Result):
    """``hardening/<host>.json``: one ``oscap xccdf eval`` of a host, counted as tests/benchmarks/hardening_report.py
    ``counts`` does (pass, fail, notapplicable, other, rate, failures), plus the host, the profile and the time."""

    host: str
    profile: str
    passed: int = Field(alias="pass")
    failed: int = Field(alias="fail")
    notapplicable: int
    scanned_at: AwareDatetime
    level: str = ""
    failures: list[str] = Field(default_factory=list)
    content: str = ""

    @model_validator(mode="after")
    def _level_from_profile(self) -> HardeningScore:
        if not self.level:
            self.level = self.profile.rsplit("_", 1)[-1]  # xccdf_..._anssi_bp28_enhanced -> enhanced
        return self

    @property
    def score_pct(self) -> float:
        judged = self.passed + self.failed
        return round(100 * self.passed / judged, 1) if judged else 0.0


class OffsiteVerification(Result):
    bucket: str
    checked_at: AwareDatetime
    compliant: bool
    findings: list[str] = Field(default_factory=list)
    location: str | None = None  # the bucket's region as the provider reports it (HDS-02); None: not read


class DegradedStation(Result):
    """``degraded/<station>.json``: a rescue station's state as its metrics say (roles/degraded_station)."""

    station: str
    collected_at: AwareDatetime
    last_success: AwareDatetime | None = None  # the last fetch whose binder passed every check
    cutoff: AwareDatetime | None = None  # the cut-off time of the binder the station shows


class EncryptionSample(Result):
    """``encryption/<where>.json``: objects sampled from a repository (on site or offsite) to show they are
    ciphertext, plus the repository's configuration (HDS-03)."""

    where: str  # e.g. "sur site : partages", "hors site : rempart-…-offsite"
    checked_at: AwareDatetime
    objects_sampled: int
    plaintext_objects: list[str] = Field(default_factory=list)
    repository_encrypted: bool


class OfflineCopy(Result):
    dataset: str
    medium: str
    copied_at: AwareDatetime
    offline_since: AwareDatetime | None = None  # None: the medium was never proven detached
    verified: bool
    latest_snapshot: str | None = None
    repository_sha256: str | None = None


class RedButton(Result):
    tested_at: AwareDatetime
    isolated_client_refused: bool
    jobs_resumed: bool


class HostPackages(Result):
    """``packages/<host>.json``: the Debian packages installed on a host (``playbooks/evidence.yml``)."""

    host: str
    collected_at: AwareDatetime
    packages: dict[str, str]  # name -> installed version


T = TypeVar("T", bound=Result)


class Results(BaseModel):
    """Everything found under ``reports/<finess>/``; unreadable files are listed, never silently dropped."""

    backups: dict[str, BackupHistory] = Field(default_factory=dict)
    drills: list[Drill] = Field(default_factory=list)
    ransomware: list[RansomwareDrill] = Field(default_factory=list)
    hardening: list[HardeningScore] = Field(default_factory=list)
    offsite: OffsiteVerification | None = None
    offline: list[OfflineCopy] = Field(default_factory=list)
    red_button: list[RedButton] = Field(default_factory=list)
    packages: list[HostPackages] = Field(default_factory=list)
    degraded: list[DegradedStation] = Field(default_factory=list)
    encryption: list[EncryptionSample] = Field(default_factory=list)
    unreadable: list[str] = Field(default_factory=list)

    def last_drill(self) -> Drill | None:
        return max(self.drills, key=lambda d: d.finished, default=None)


def _read(path: Path, model: type[T], unreadable: list[str]) -> T | None:
    try:
        return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as error:
        unreadable.append(f"{path.name}: {str(error).splitlines()[0]}")
        return None


def _read_all(folder: Path, model: type[T], unreadable: list[str]) -> list[T]:
    found = (_read(p, model, unreadable) for p in sorted(folder.glob("*.json")))
    return [item for item in found if item is not None]


def history_from_ledger(dataset: str, lines: list[str]) -> BackupHistory:
    """A dataset's job history from the backup server's arrival ledger (``/var/lib/rempart/ledger/<d>.jsonl``):
    one job per snapshot that arrived, with the server's own times, plus failed jobs and prune holds."""
    jobs: list[dict[str, object]] = []
    hold = False
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        event = entry.get("event")
        if event == "snapshot":
            stats = entry.get("stats") or {}
            started, arrived = entry.get("job_started") or entry["arrived"], entry["arrived"]
            admitted = entry.get("admitted", True)  # older ledgers have no admission step
            jobs.append(
                {
                    "started": datetime.fromtimestamp(started, UTC),
                    "finished": datetime.fromtimestamp(arrived, UTC),
                    "duration_s": arrived - started,
                    "status": "success",
                    "snapshot": str(entry.get("id", ""))[:8],
                    "bytes_added": stats.get("added_bytes"),
                    "files_new": stats.get("files"),
                    "anomaly": bool(entry.get("anomaly")),
                    "trusted": bool(entry.get("trusted", True)) and bool(admitted),
                    "changed_ratio": stats.get("changed_ratio"),
                    "entropy_share": stats.get("entropy_share"),
                    "first": bool(stats.get("first")),
                }
            )
        elif event == "job-failed":
            jobs.append({"started": datetime.fromtimestamp(entry["at"], UTC), "status": "failed"})
        elif event in ("hold", "hold-cleared"):
            hold = event == "hold"
    return BackupHistory.model_validate({"dataset": dataset, "jobs": jobs, "prune_hold": hold})


def offline_from_ledger(lines: list[str]) -> list[OfflineCopy]:
    """Verified offline copies from the offline ledger the backup server writes (roles/offline_copy,
    ``/var/lib/rempart/offline/ledger.jsonl``): one entry per dataset and copy, with when its medium went offline."""
    copies = []
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry.get("event") != "offline-copy":
            continue
        offline_at = entry.get("offline_at")
        copies.append(
            OfflineCopy(
                dataset=entry["dataset"],
                medium=entry["medium"],
                copied_at=datetime.fromtimestamp(entry["copied"], UTC),
                offline_since=datetime.fromtimestamp(offline_at, UTC) if offline_at else None,
                verified=bool(entry.get("verified")),
                latest_snapshot=str(entry.get("latest_snapshot") or "")[:8] or None,
                repository_sha256=entry.get("repository_sha256"),
            )
        )
    return copies


def _offline_copies(folder: Path, unreadable: list[str]) -> list[OfflineCopy]:
    copies = _read_all(folder, OfflineCopy, unreadable)
    ledger = folder / "ledger.jsonl"
    if ledger.exists():
        try:
            copies += offline_from_ledger(ledger.read_text(encoding="utf-8").splitlines())
        except (OSError, ValueError, KeyError, ValidationError) as error:
            unreadable.append(f"{ledger.name}: {str(error).splitlines()[0]}")
    return copies


def _ledger_histories(folder: Path, unreadable: list[str]) -> dict[str, BackupHistory]:
    histories: dict[str, BackupHistory] = {}
    for path in sorted(folder.glob("*.jsonl")):
        try:
            histories[path.stem] = history_from_ledger(
                path.stem, path.read_text(encoding="utf-8").splitlines()
            )
        except (OSError, ValueError, KeyError, ValidationError) as error:
            unreadable.append(f"{path.name}: {str(error).splitlines()[0]}")
    return histories


def load_results(folder: Path) -> Results:
    unreadable: list[str] = []
    backups = _ledger_histories(folder / "ledger", unreadable)
    backups |= {h.dataset: h for h in _read_all(folder / "backups", BackupHistory, unreadable)}
    verification = folder / "offsite" / "verify.json"
    return Results(
        backups=backups,
        drills=_read_all(folder / "drills", Drill, unreadable),
        ransomware=_read_all(folder / "ransomware", RansomwareDrill, unreadable),
        hardening=_read_all(folder / "hardening", HardeningScore, unreadable),
        offsite=_read(verification, OffsiteVerification, unreadable) if verification.exists() else None,
        offline=_offline_copies(folder / "offline", unreadable),
        red_button=_read_all(folder / "red-button", RedButton, unreadable),
        packages=_read_all(folder / "packages", HostPackages, unreadable),
        degraded=_read_all(folder / "degraded", DegradedStation, unreadable),
        encryption=_read_all(folder / "encryption", EncryptionSample, unreadable),
        unreadable=unreadable,
    )
