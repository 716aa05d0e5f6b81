"""The establishment model: one hospital (legal entity), as declared in
``inventories/<name>/group_vars/all/establishment.yml`` under the top-level ``establishment:`` key.

Field checks live here (pydantic); checks that need the whole model or the inventory
(hosts, dependencies, secrets) live in :mod:`rempart.validation`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rempart.crisis import Crisis
from rempart.degraded_mode import DegradedMode
from rempart.finess import finess_problem

# AWS regions whose storage stays in the European Economic Area (HDS-02). Not eu-west-2 (London) nor
# eu-central-2 (Zurich): the United Kingdom and Switzerland are outside the EEA.
EEA_REGIONS: dict[str, tuple[str, ...]] = {
    "aws": ("eu-west-3", "eu-west-1", "eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2"),
}

# Retention floors below which Rempart refuses an establishment (BP100-RET-01 gives 15/12/5 as example):
# a week of dailies is the least that lets an attack be noticed before its last clean backup ages out.
RETENTION_FLOOR = {"daily": 7, "monthly": 1, "yearly": 1}
OFFSITE_MIN_RETENTION_DAYS = 14
OFFSITE_CAP_MARGIN_DAYS = 30

DatasetName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")]


class Kind(StrEnum):
    files = "files"
    postgresql = "postgresql"
    mariadb = "mariadb"


class Criticality(StrEnum):
    vital = "vital"
    critical = "critical"
    important = "important"
    standard = "standard"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retention(Strict):
    daily: int = Field(15, ge=RETENTION_FLOOR["daily"], le=366)
    monthly: int = Field(12, ge=RETENTION_FLOOR["monthly"], le=120)
    yearly: int = Field(5, ge=RETENTION_FLOOR["yearly"], le=30)


class Offsite(Strict):
    """The immutable offsite copy (S3 Object Lock, COMPLIANCE mode): HDS-02, BP100-EXT-01, BP100-EXT-03."""

    provider: Literal["aws"] = "aws"
    region: str
    retention_days: int = Field(ge=OFFSITE_MIN_RETENTION_DAYS, le=3650)
    # Longest retention anyone (the writer refreshing locks included) may set, in days from now: caps the
    # "lock everything for decades" storage-cost attack. Default: retention_days + OFFSITE_CAP_MARGIN_DAYS.
    retention_cap_days: int | None = Field(None, ge=OFFSITE_MIN_RETENTION_DAYS + 1, le=3650)
    # Server-side encryption at rest. restic already encrypts client-side with the establishment's keys
    # (HDS-03); "sse-kms" adds a dedicated key whose disabling/deletion is denied to all but break-glass.
    encryption: Literal["sse-s3", "sse-kms"] = "sse-s3"
    # Role allowed to change bucket settings (never to shorten a COMPLIANCE lock). None: Pulumi creates one
    # that needs MFA.
    break_glass_role_arn: str | None = Field(
        None, pattern=r"^arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$"
    )
    # restic packs (data/) move to a colder class that still allows immediate reads (restore needs them).
    cold_storage_class: Literal["STANDARD_IA", "GLACIER_IR"] = "GLACIER_IR"
    cold_after_days: int = Field(30, ge=30, le=3650)

    @property
    def effective_retention_cap_days(self) -> int:
        return self.retention_cap_days or min(self.retention_days + OFFSITE_CAP_MARGIN_DAYS, 3650)

    @model_validator(mode="after")
    def cap_above_retention(self) -> Offsite:
        if self.retention_cap_days is not None and self.retention_cap_days <= self.retention_days:
            raise ValueError(
                f"retention_cap_days ({self.retention_cap_days}) must be greater than retention_days "
                f"({self.retention_days}): the offsite job refreshes locks to retention_days from now"
            )
        return self

    @field_validator("region")
    @classmethod
    def region_in_eea(cls, region: str) -> str:
        allowed = EEA_REGIONS["aws"]
        if region not in allowed:
            raise ValueError(
                f"{region!r} is not an EEA region: health data must stay in the EEA (HDS-02); "
                f"use one of {', '.join(allowed)}"
            )
        return region


MediumId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")]
OFFLINE_MAX_ROTATION_DAYS = 92  # a quarter: older than that, the offline copy misses most incidents


class OfflineMedium(Strict):
    """One removable medium of the offline copy, recognised by the serial number of its disk (udev
    ID_SERIAL_SHORT) and/or the UUID of its LUKS2 header (set when the medium is enrolled)."""

    id: MediumId
    serial: str | None = Field(None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    uuid: str | None = Field(None, pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    description: str = ""

    @model_validator(mode="after")
    def identified(self) -> OfflineMedium:
        if not self.serial and not self.uuid:
            raise ValueError(
                f"medium {self.id!r} needs 'serial' (udevadm info: ID_SERIAL_SHORT) or 'uuid' (its LUKS2 UUID, "
                "cryptsetup luksUUID): an unidentified medium would be refused when attached"
            )
        return self


class OfflineRotation(Strict):
    """How media rotate: a new offline copy at least every ``every_days``; ``media_count`` media in the
    rotation, ``offsite_count`` of them kept off-site at any time (BP100-OPS-02, BP100-EXT-01)."""

    every_days: int = Field(ge=1, le=OFFLINE_MAX_ROTATION_DAYS)
    media_count: int = Field(ge=2, le=52)
    offsite_count: int = Field(1, ge=0, le=51)

    @model_validator(mode="after")
    def one_medium_on_site(self) -> OfflineRotation:
        if self.offsite_count >= self.media_count:
            raise ValueError(
                f"offsite_count ({self.offsite_count}) must be below media_count ({self.media_count}): "
                "at least one medium must be on site to receive the next copy"
            )
        return self


class OfflineCopy(Strict):
    """The offline leg of 3-2-1-1-0: rotated LUKS2-encrypted removable media (roles/offline_copy)."""

    media: list[OfflineMedium] = Field(min_length=2)
    rotation: OfflineRotation

    @model_validator(mode="after")
    def enough_media(self) -> OfflineCopy:
        if len(self.media) < self.rotation.media_count:
            raise ValueError(
                f"rotation.media_count is {self.rotation.media_count} but only {len(self.media)} media are "
                "declared: declare every medium of the rotation under media"
            )
        return self


class DatasetBackup(Strict):
    """How the dataset's backup job runs (roles backup_server / backup_client). Defaults suit most datasets."""

    # restic compression: "off" for data that does not compress (DICOM images, already compressed archives)
    # saves CPU for nothing lost; "max" costs ~3x the CPU for a few percent of disk.
    compression: Literal["auto", "off", "max"] = "auto"
    # Files restic reads at once (restic --read-concurrency): more helps on SSDs and many small files.
    read_concurrency: int = Field(2, ge=1, le=16)
    # Upload cap in KiB/s (restic --limit-upload) for sites whose backup network is shared; None: no cap.
    limit_upload_kib: int | None = Field(None, ge=64)
    # systemd OnCalendar overriding the schedule derived from rpo_hours (must be at least as frequent).
    schedule: str | None = Field(None, pattern=r"^[A-Za-z0-9*,./:~ -]{3,64}$")


class HardeningLevel(StrEnum):
    """ANSSI-BP-028 levels (cumulative); ``none``: roles/hardening does not run on the host."""

    none = "none"
    minimal = "minimal"
    intermediary = "intermediary"
    enhanced = "enhanced"


HARDENING_RANK = {level: rank for rank, level in enumerate(HardeningLevel)}
# Groups whose hosts are hardened as another group's: a GHT's shared backup server (docs/ght.md) is a backup server.
HARDENING_GROUP_ALIASES = {"shared_backup_servers": "backup_servers"}


class Hardening(Strict):
    """roles/hardening's level per host group. A host in several of these groups gets the highest of their levels;
    a host in none of them gets ``other``. Defaults: Rempart's own backup servers at enhanced (BP028-01), the rescue
    stations Rempart installs at intermediary; the production servers the backup reads from (backup clients, the
    records host of the degraded-mode export) are managed by their vendors: untouched unless the establishment
    opts in."""

    backup_servers: HardeningLevel = HardeningLevel.enhanced
    degraded_stations: HardeningLevel = HardeningLevel.intermediary
    backup_clients: HardeningLevel = HardeningLevel.none
    degraded_export_hosts: HardeningLevel = HardeningLevel.none
    other: HardeningLevel = HardeningLevel.none

    @field_validator("backup_servers")
    @classmethod
    def backup_servers_hardened(cls, level: HardeningLevel) -> HardeningLevel:
        if level is HardeningLevel.none:
            raise ValueError(
                "the backup server holds every copy of the establishment's data and must be hardened: "
                "use enhanced (ANSSI-BP-028, BP028-01), or intermediary / minimal with a documented waiver"
            )
        return level

    def level_for(self, groups: Iterable[str]) -> HardeningLevel:
        """The level of a host in these inventory groups."""
        named = [
            getattr(self, group)
            for group in {HARDENING_GROUP_ALIASES.get(name, name) for name in groups}
            if group in type(self).model_fields and group != "other"
        ]
        return max(named, key=HARDENING_RANK.__getitem__) if named else self.other


class Dataset(Strict):
    name: DatasetName
    host: str = Field(min_length=1)
    kind: Kind
    paths: list[Annotated[str, Field(pattern=r"^/")]] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)
    database: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
    criticality: Criticality
    rpo_hours: int = Field(ge=1, le=8760)
    rto_hours: int = Field(ge=1, le=8760)
    depends_on: list[str] = Field(default_factory=list)
    description: str = ""
    backup: DatasetBackup = Field(default_factory=DatasetBackup)


class Establishment(Strict):
    finess: str
    name: str = Field(min_length=3)
    ght: str | None = None
    retention: Retention = Field(default_factory=Retention)
    offsite: Offsite
    datasets: list[Dataset] = Field(min_length=1)
    # Degraded-mode binder for the rescue stations (DEG-*, CARE-D2-02): rempart/degraded_mode.py.
    degraded_mode: DegradedMode = Field(default_factory=DegradedMode)
    # Offline copy on rotated removable media (BP100-OPS-02): roles/offline_copy. None: no offline leg.
    offline_copy: OfflineCopy | None = None
    # ANSSI-BP-028 level per host group (roles/hardening): docs/establishment.md, "Hardening levels".
    hardening: Hardening = Field(default_factory=Hardening)
    # Crisis contacts and the plan's document control (rempart/crisis.py). None: the backup and restore plan
    # says its contacts are missing and cannot be signed.
    crisis: Crisis | None = None

    @field_validator("finess", mode="before")
    @classmethod
    def finess_valid(cls, value: object) -> str:
        problem = finess_problem(value)
        if problem:
            raise ValueError(problem)
        return str(value).replace(" ", "")

    @model_validator(mode="after")
    def degraded_export_source(self) -> Establishment:
        export = self.degraded_mode.export
        if export is None:
            return self
        sources = [d for d in self.datasets if d.name == export.source]
        postgresql = sorted(d.name for d in self.datasets if d.kind is Kind.postgresql) or ["(none declared)"]
        if not sources or sources[0].kind is not Kind.postgresql:
            raise ValueError(
                f"degraded_mode.export.source: {export.source!r} is not a postgresql dataset of this "
                f"establishment; name the dataset holding the patient records, one of {', '.join(postgresql)}"
            )
        return self

    def dataset(self, name: str) -> Dataset:
        return next(d for d in self.datasets if d.name == name)
