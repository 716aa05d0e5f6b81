"""The establishment model: one hospital (legal entity), as declared in
``inventories/<name>/group_vars/all/establishment.yml`` under the top-level ``establishment:`` key.

Field checks live here (pydantic); checks that need the whole model or the inventory
(hosts, dependencies, secrets) live in :mod:`rempart.model.validation`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from rempart.model.crisis import Crisis
from rempart.model.degraded_mode import DegradedMode
from rempart.model.finess import finess_problem
from rempart.offsite.limits import OFFSITE_CAP_MARGIN_DAYS

# AWS regions whose storage stays in the European Economic Area (HDS-02). Not eu-west-2 (London) nor
# eu-central-2 (Zurich): the United Kingdom and Switzerland are outside the EEA.
EEA_REGIONS: dict[str, tuple[str, ...]] = {
    "aws": ("eu-west-3", "eu-west-1", "eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2"),
}

# Retention floors below which Rempart refuses an establishment (BP100-RET-01 gives 15/12/5 as example):
# a week of dailies is the least that lets an attack be noticed before its last clean backup ages out.
RETENTION_FLOOR = {"daily": 7, "monthly": 1, "yearly": 1}
OFFSITE_MIN_RETENTION_DAYS = 14

# The computed plan (Establishment.dataset_plan): each dataset's reverse-tunnel port is this base plus its rank in
# the establishment (rempart_backup_tunnel_port_base overrides the base), and its backup timer starts at minute
# tunnel port x 7 (mod 60), which spreads the datasets over the hour.
TUNNEL_PORT_BASE = 18100
SCHEDULE_MINUTE_FACTOR = 7
_HOURLY_STEPS = (1, 2, 3, 4, 6, 8, 12)  # divisors of 24: the timer fires at the same hours every day

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
    # Expected size of the dataset's repository on the backup server (every retained snapshot), in GiB, and the
    # growth it may take on top: the repository's quota (issue 15 item 5), enforced by the backup server.
    # None: no quota for this dataset.
    expected_size_gib: float | None = Field(None, gt=0, le=1_048_576)
    growth_margin_percent: int = Field(50, ge=0, le=1000)

    @property
    def quota_bytes(self) -> int | None:
        """The repository's quota: expected size plus the growth margin (None: no quota declared)."""
        if self.expected_size_gib is None:
            return None
        return int(self.expected_size_gib * (1 + self.growth_margin_percent / 100) * 1024**3)


class DatasetPlan(Strict):
    """What the establishment model computes for one dataset: the client-side port of its reverse tunnel and its
    backup timer (systemd OnCalendar), with the French wording the documents use for that same timer."""

    tunnel_port: int
    schedule: str
    schedule_fr: str

    def for_roles(self) -> dict[str, Any]:
        """The values the roles take (backup_server_dataset_plan and the like): the documents' wording left out."""
        return {"tunnel_port": self.tunnel_port, "schedule": self.schedule}


def backup_schedule(rpo_hours: int, minute: int, declared: str | None = None) -> tuple[str, str]:
    """(OnCalendar, French wording) of a dataset's backup timer: never less often than the RPO (BP100-OPS, PDMA).

    < 24 h: every N hours, N the largest divisor of 24 not above the RPO; 24 h to 6 days: daily at 01:MM; a week or
    more: Sundays at 01:MM. ``declared`` (datasets[].backup.schedule) replaces the derived calendar.
    """
    if declared:
        return declared, f"selon le calendrier déclaré « {declared} »"
    minute %= 60
    if rpo_hours < 24:
        step = max(d for d in _HOURLY_STEPS if d <= rpo_hours)
        every = "toutes les heures" if step == 1 else f"toutes les {step} h"
        return f"*-*-* 00/{step}:{minute:02d}:00", f"{every}, à la minute {minute:02d}"
    if rpo_hours < 168:
        return f"*-*-* 01:{minute:02d}:00", f"chaque jour à 01:{minute:02d}"
    return f"Sun *-*-* 01:{minute:02d}:00", f"chaque dimanche à 01:{minute:02d}"


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


# --------------------------------------------------------------------------- alerts (issue 16)

EmailAddress = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
]
# Each threshold: (type, default, bounds). Warning below critical is checked per pair (ALERT_THRESHOLD_PAIRS).
_THRESHOLDS: dict[str, tuple[type, float, dict[str, float]]] = {
    # backup age as a multiple of the dataset's rpo_hours, plus a grace for the job's own duration
    "backup_age_warning_ratio": (float, 1.0, {"ge": 1.0, "le": 10.0}),
    "backup_age_critical_ratio": (float, 2.0, {"ge": 1.0, "le": 20.0}),
    "backup_grace_minutes": (int, 60, {"ge": 0, "le": 1440}),
    # offsite copy behind the newest on-site snapshot
    "offsite_lag_warning_hours": (float, 26.0, {"gt": 0, "le": 2160}),
    "offsite_lag_critical_hours": (float, 50.0, {"gt": 0, "le": 4320}),
    # restore drill (weekly by default) and restic check (weekly) ages
    "drill_age_warning_days": (float, 8.0, {"gt": 0, "le": 366}),
    "drill_age_critical_days": (float, 15.0, {"gt": 0, "le": 732}),
    "check_age_warning_days": (float, 8.0, {"gt": 0, "le": 366}),
    "check_age_critical_days": (float, 15.0, {"gt": 0, "le": 732}),
    # repository use against its quota (backup.expected_size_gib + growth_margin_percent)
    "quota_warning_percent": (float, 80.0, {"gt": 0, "le": 100}),
    "quota_critical_percent": (float, 95.0, {"gt": 0, "le": 100}),
}
ALERT_THRESHOLD_PAIRS = (
    ("backup_age_warning_ratio", "backup_age_critical_ratio"),
    ("offsite_lag_warning_hours", "offsite_lag_critical_hours"),
    ("drill_age_warning_days", "drill_age_critical_days"),
    ("check_age_warning_days", "check_age_critical_days"),
    ("quota_warning_percent", "quota_critical_percent"),
)


def _warning_below_critical(values: dict[str, Any]) -> None:
    for warning, critical in ALERT_THRESHOLD_PAIRS:
        if (
            values.get(warning) is not None
            and values.get(critical) is not None
            and values[warning] > values[critical]
        ):
            raise ValueError(
                f"{warning} ({values[warning]}) is above {critical} ({values[critical]}): the warning must come "
                "first; lower the warning or raise the critical threshold"
            )


class _ThresholdChecks(Strict):
    @model_validator(mode="after")
    def ordered(self) -> _ThresholdChecks:
        _warning_below_critical(self.model_dump())
        return self


AlertThresholds: type[Strict] = create_model(  # type: ignore[call-overload]
    "AlertThresholds",
    __base__=_ThresholdChecks,
    __doc__="When check_rempart and the Prometheus rules warn and go critical (establishment-wide defaults).",
    **{name: (kind, Field(default, **bounds)) for name, (kind, default, bounds) in _THRESHOLDS.items()},
)
ThresholdOverride: type[Strict] = create_model(  # type: ignore[call-overload]
    "ThresholdOverride",
    __base__=_ThresholdChecks,
    __doc__="A dataset's own thresholds (alerts.overrides.<dataset>); unset keys keep alerts.thresholds.",
    **{name: (kind | None, Field(None, **bounds)) for name, (kind, _, bounds) in _THRESHOLDS.items()},
)


class Alerts(Strict):
    """Where alerts go (issue 16): mail to the on-call addresses through the establishment's SMTP relay, metrics
    and the check plugin polled by the supervision addresses (Centreon/Nagios/Prometheus), every alert to syslog."""

    email: list[EmailAddress] = Field(min_length=1)
    smtp_relay: str
    supervision: list[str] = Field(default_factory=list)
    sender: EmailAddress | None = None
    thresholds: AlertThresholds = Field(default_factory=AlertThresholds)  # type: ignore[valid-type]
    overrides: dict[DatasetName, ThresholdOverride] = Field(default_factory=dict)  # type: ignore[valid-type]

    @field_validator("smtp_relay")
    @classmethod
    def relay_host_and_port(cls, relay: str) -> str:
        host, _, port = relay.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(
                f"{relay!r} is not host:port; write the relay with its port, e.g. 'smtp.ch-exemple.fr:25' "
                "(or :587 for submission)"
            )
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+", host):
            raise ValueError(f"{host!r} is not a host name or address; e.g. 'smtp.ch-exemple.fr:25'")
        return relay

    @field_validator("supervision")
    @classmethod
    def addresses(cls, sources: list[str]) -> list[str]:
        for source in sources:
            try:
                ipaddress.ip_network(source, strict=False)
            except ValueError:
                raise ValueError(
                    f"{source!r} is not an IP address or network; list the supervision pollers' addresses, "
                    "e.g. '10.20.0.15' or '10.20.0.0/28'"
                ) from None
        return sources

    @model_validator(mode="after")
    def overrides_ordered(self) -> Alerts:
        for name in self.overrides:
            try:
                _warning_below_critical(self.thresholds_for(name))
            except ValueError as error:
                raise ValueError(f"overrides.{name}: {error}") from None
        return self

    @property
    def relay_host(self) -> str:
        return self.smtp_relay.rpartition(":")[0].removeprefix("[").removesuffix("]")

    @property
    def relay_port(self) -> int:
        return int(self.smtp_relay.rpartition(":")[2])

    def thresholds_for(self, dataset: str) -> dict[str, float]:
        """The dataset's effective thresholds: its override's keys over the establishment's."""
        values = self.thresholds.model_dump()
        override = self.overrides.get(dataset)
        if override is not None:
            values.update(override.model_dump(exclude_none=True))
        return values


class RecoveryStep(Strict):
    """A step of the dataset's recovery that the lab cannot time (rebuilding the host, reinstalling and restarting
    the application, checks by the users): the establishment's own estimate, shown as declared, never measured."""

    step: str = Field(min_length=3, max_length=120)
    hours: float = Field(gt=0, le=8760)


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
    # The RTO is the sum of the recovery's steps: those the restore drill times (restore and verification, and
    # for a database the load), plus these declared estimates for the rest. None declared: "RTO tenu" is not
    # claimed (the report says what is missing).
    recovery_steps: list[RecoveryStep] = Field(default_factory=list)


class Establishment(Strict):
    finess: str
    name: str = Field(min_length=3)
    ght: str | None = None
    retention: Retention = Field(default_factory=Retention)
    offsite: Offsite
    datasets: list[Dataset] = Field(min_length=1)
    # Degraded-mode binder for the rescue stations (DEG-*, CARE-D2-02): rempart/model/degraded_mode.py.
    degraded_mode: DegradedMode = Field(default_factory=DegradedMode)
    # Offline copy on rotated removable media (BP100-OPS-02): roles/offline_copy. None: no offline leg.
    offline_copy: OfflineCopy | None = None
    # ANSSI-BP-028 level per host group (roles/hardening): docs/establishment.md, "Hardening levels".
    hardening: Hardening = Field(default_factory=Hardening)
    # Alert delivery and thresholds (roles/supervision): docs/establishment.md, "Alerts". None: no mail; the
    # check plugin and the metrics still run with the default thresholds, the exporter on 127.0.0.1 only.
    alerts: Alerts | None = None
    # Crisis contacts and the plan's document control (rempart/model/crisis.py). None: the backup and restore plan
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

    def dataset_plan(self, tunnel_port_base: int = TUNNEL_PORT_BASE) -> dict[str, DatasetPlan]:
        """Every dataset's computed values, in declaration order: its tunnel port (base + rank) and its backup
        timer (from rpo_hours at minute port x 7, or the declared backup.schedule). The one place these rules live:
        playbooks/validate.yml publishes the result as rempart_plan, the plays hand it to the roles, and the
        backup and restore plan (rempart/reports/documents.py) words the same timers."""
        plan = {}
        for rank, dataset in enumerate(self.datasets):
            port = int(tunnel_port_base) + rank
            schedule, wording = backup_schedule(
                dataset.rpo_hours, port * SCHEDULE_MINUTE_FACTOR, dataset.backup.schedule
            )
            plan[dataset.name] = DatasetPlan(tunnel_port=port, schedule=schedule, schedule_fr=wording)
        return plan

    @staticmethod
    def server_names(instance: str = "") -> dict[str, Any]:
        """The names of the establishment's instance of the backup service, which the roles working beside it
        (offsite_copy, restore_drill, red_button, supervision, backup_client) must find: ``instance`` is the view's
        rempart_backup_instance (its FINESS) on a server shared by a GHT (docs/ght.md), '' on a server of its own."""
        suffix = f"-{instance}" if instance else ""
        return {
            "suffix": suffix,
            "user": f"rempart{suffix}",
            "repos_dir": f"/srv/rempart{suffix}/repos",
            "state_dir": f"/var/lib/rempart{suffix}",
            "config_dir": f"/etc/rempart{suffix}",
            "config_file": f"/etc/rempart{suffix}/backup-server.json",
            "secrets_dir": f"/etc/rempart{suffix}/secrets",
            "ledger_dir": f"/var/lib/rempart{suffix}/ledger",
            "ssh_public_key": f"/var/lib/rempart{suffix}/ssh/id_ed25519.pub",
            "admin_command": f"/usr/local/sbin/rempart-backup-admin{suffix}",
            "units": {
                "rest": f"rempart-rest-server{suffix}.service",
                "backup": f"rempart-backup{suffix}@.service",
                "retention": f"rempart-retention{suffix}@.service",
                "check": f"rempart-check{suffix}@.service",
                "offsite_copy": f"rempart-offsite-copy{suffix}.service",
            },
        }

    def retention_plan(self) -> dict[str, int]:
        """The on-site retention of every dataset (daily, monthly, yearly snapshots kept, judged by arrival): the
        declared counts, Rempart's defaults (15/12/5, BP100-RET-01) for the others. backup_server applies it
        (backup_server_retention) and the backup and restore plan words it."""
        return self.retention.model_dump()

    def offsite_plan(self) -> dict[str, int]:
        """The offsite copy's lock period: ``retention_days`` (COMPLIANCE lock of every object still needed) and
        ``retention_cap_days`` (the longest lock anyone may set: declared, else retention_days +
        OFFSITE_CAP_MARGIN_DAYS, at most 3650). The Pulumi program builds the bucket from it (its stack outputs
        repeat it, checked by roles/offsite_copy), roles/offsite_copy refreshes the locks to it and
        playbooks/evidence.yml checks the bucket against it."""
        return {
            "retention_days": self.offsite.retention_days,
            "retention_cap_days": self.offsite.effective_retention_cap_days,
        }

    def quota_plan(self) -> dict[str, int | None]:
        """Each dataset's repository quota in bytes (backup.expected_size_gib + growth_margin_percent, None: no
        quota declared), in declaration order: roles/supervision enforces it (supervision_quota_bytes)."""
        return {dataset.name: dataset.backup.quota_bytes for dataset in self.datasets}

    def threshold_plan(self) -> dict[str, dict[str, float]]:
        """Each dataset's alert thresholds, in declaration order: its alerts.overrides keys over alerts.thresholds,
        Rempart's defaults where the establishment declares no alerts. roles/supervision publishes them
        (supervision_thresholds: check_rempart's configuration, the rempart_alert_* metrics the rules compare)."""
        if self.alerts is None:
            return {dataset.name: AlertThresholds().model_dump() for dataset in self.datasets}
        return {dataset.name: self.alerts.thresholds_for(dataset.name) for dataset in self.datasets}

    def roles_plan(self, tunnel_port_base: int = TUNNEL_PORT_BASE, instance: str = "") -> dict[str, Any]:
        """The plan as the plays read it (one entry of the rempart_plan fact): plain data, per dataset name (timer,
        tunnel port, quota, alert thresholds), the retention on site and offsite, and the names of the backup service's instance (``instance``: see
        server_names)."""
        return {
            "finess": self.finess,
            "datasets": {
                name: item.for_roles() for name, item in self.dataset_plan(tunnel_port_base).items()
            },
            "retention": self.retention_plan(),
            "offsite": self.offsite_plan(),
            "quota_bytes": self.quota_plan(),
            "thresholds": self.threshold_plan(),
            # the policy the roles check the values they are given against (one copy: this module's constants)
            "limits": {
                "retention_floor": dict(RETENTION_FLOOR),
                "offsite_regions": list(EEA_REGIONS[self.offsite.provider]),
            },
            "server": self.server_names(instance),
        }
