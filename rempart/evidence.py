"""The CaRE evidence of an establishment, computed from its inventory and its result files only.

Per dataset the 3-2-1-1-0 status (3 copies, 2 media, 1 offsite, 1 offline or immutable, 0 restore errors), RPO and
RTO targets against what was measured, then each requirement id with its status and the file that proves it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from rempart.dependencies import restore_order
from rempart.establishment import Establishment
from rempart.results import Drill, DrillDataset, HostPackages, OffsiteLeg, RansomwareDrill, Results
from rempart.tested_set import compare_installed, read_tested

Status = Literal["conforme", "non conforme", "preuve manquante"]
DRILL_MAX_AGE = timedelta(days=92)  # restore tests at least quarterly (BP100-OPS-11), well inside retention


@dataclass
class DatasetEvidence:
    name: str
    description: str
    host: str
    criticality: str
    rpo_hours: int
    rto_hours: int
    restore_rank: int
    last_backup: datetime | None
    backup_age_hours: float | None
    rpo_met: bool | None
    copies: int
    media: list[str]
    offsite_immutable: bool | None
    offline_since: datetime | None
    offline_medium: str | None
    offline_current: (
        bool | None
    )  # newest offline copy within the rotation policy (establishment.offline_copy)
    last_verified_restore: datetime | None
    restore_errors: int | None
    rto_measured_hours: float | None
    rto_met: bool | None
    anomaly: bool
    prune_hold: bool
    rule_32110: dict[str, bool | None] = field(default_factory=dict)

    @property
    def rule_32110_met(self) -> bool:
        return all(self.rule_32110.values())


@dataclass
class RequirementEvidence:
    id: str
    label: str
    status: Status
    evidence: str


@dataclass
class HostSoftware:
    """A host's installed versions of the tested packages (rempart/tested_set.py), as collected and dated."""

    host: str
    collected_at: datetime
    versions: dict[str, str]  # tested package -> installed version
    differences: list[str]  # French, one line per package whose version is not the tested one


@dataclass
class Evidence:
    finess: str
    name: str
    ght: str | None
    generated_at: datetime
    restore_order: list[str]
    datasets: list[DatasetEvidence]
    requirements: list[RequirementEvidence]
    unreadable_results: list[str]
    software: list[HostSoftware] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for dataset, source in zip(document["datasets"], self.datasets, strict=True):
            dataset["rule_32110_met"] = source.rule_32110_met
        return document


def _last_drill_of(results: Results, dataset: str) -> tuple[Drill, DrillDataset] | None:
    found = [(d, x) for d in results.drills for x in d.datasets if x.dataset == dataset]
    return max(found, key=lambda pair: pair[0].finished, default=None)


def _dataset_evidence(
    establishment: Establishment, results: Results, now: datetime, rank: int, name: str
) -> DatasetEvidence:
    dataset = establishment.dataset(name)
    history = results.backups.get(name)
    successes = history.successes() if history else []
    last = successes[-1] if successes else None
    last_time = (last.finished or last.started) if last else None
    age = (now - last_time).total_seconds() / 3600 if last_time else None
    offsite_ok = results.offsite.compliant if results.offsite else None
    # only a verified copy whose medium was proven detached counts as offline (BP100-OPS-02)
    offline = max(
        (o for o in results.offline if o.dataset == name and o.verified and o.offline_since),
        key=lambda o: o.copied_at,
        default=None,
    )
    rotation = establishment.offline_copy.rotation if establishment.offline_copy else None
    offline_current = (
        offline is not None
        and offline.offline_since is not None
        and (rotation is None or now - offline.offline_since <= timedelta(days=rotation.every_days))
    )
    drill = _last_drill_of(results, name)
    drill_result = drill[1] if drill else None
    verified_at = drill[0].finished if drill and drill_result and drill_result.status == "passed" else None
    errors = (drill_result.files_failed + len(drill_result.errors)) if drill_result else None
    rto_measured = drill_result.duration_s / 3600 if drill_result else None
    media = ["production"]
    if last:
        media.append("disque (dépôt sur site, ajout seul)")
    if offsite_ok:
        media.append("stockage objet hors site (Object Lock COMPLIANCE)")
    if offline:
        media.append(f"support amovible hors ligne ({offline.medium})")
    copies = len(media)
    evidence = DatasetEvidence(
        name=name,
        description=dataset.description,
        host=dataset.host,
        criticality=dataset.criticality.value,
        rpo_hours=dataset.rpo_hours,
        rto_hours=dataset.rto_hours,
        restore_rank=rank,
        last_backup=last_time,
        backup_age_hours=round(age, 2) if age is not None else None,
        rpo_met=(age <= dataset.rpo_hours) if age is not None else None,
        copies=copies,
        media=media,
        offsite_immutable=offsite_ok,
        offline_since=offline.offline_since if offline else None,
        offline_medium=offline.medium if offline else None,
        offline_current=offline_current if (offline or results.offline) else None,
        last_verified_restore=verified_at,
        restore_errors=errors,
        rto_measured_hours=round(rto_measured, 4) if rto_measured is not None else None,
        rto_met=(rto_measured <= dataset.rto_hours) if rto_measured is not None else None,
        anomaly=any(j.anomaly for j in (history.jobs if history else [])[-1:]),
        prune_hold=bool(history and history.prune_hold),
    )
    evidence.rule_32110 = {
        "3 copies": copies >= 3,
        "2 supports": len({m.split(" ")[0] for m in media[1:]}) >= 2 if copies > 1 else False,
        "1 hors site": bool(offsite_ok),
        "1 hors ligne ou immuable": offline_current or bool(offsite_ok),
        "0 erreur de restauration": errors == 0 if errors is not None else None,
    }
    return evidence


def _offline_evidence(establishment: Establishment, datasets: list[DatasetEvidence]) -> str:
    declared = establishment.offline_copy
    if declared is None:
        return "offline/ — aucun support hors ligne déclaré"
    media = sorted({d.offline_medium for d in datasets if d.offline_medium})
    return (
        f"offline/ledger.jsonl — rotation tous les {declared.rotation.every_days} jours, "
        f"{declared.rotation.media_count} supports dont {declared.rotation.offsite_count} hors site ; "
        f"dernier(s) support(s) : {', '.join(media) or 'aucun'}"
    )


def _status(ok: bool | None) -> Status:
    return "preuve manquante" if ok is None else ("conforme" if ok else "non conforme")


def _requirements(
    establishment: Establishment, results: Results, datasets: list[DatasetEvidence], now: datetime
) -> list[RequirementEvidence]:
    last_drill = results.last_drill()
    recent_drill = last_drill is not None and now - last_drill.finished <= DRILL_MAX_AGE
    vital = {d.name for d in establishment.datasets if d.criticality.value in ("vital", "critical")}
    drilled_vital = {x.dataset for d in results.drills for x in d.datasets if x.status == "passed"} & vital
    ransomware = max(results.ransomware, key=lambda r: r.finished, default=None)
    red_button = max(results.red_button, key=lambda r: r.tested_at, default=None)
    backups_known = all(d.last_backup for d in datasets)
    return [
        RequirementEvidence(
            "CARE-D2-01",
            "Inventaire des dossiers avec criticité, PDMA (RPO) et DMIA (RTO)",
            "conforme",
            "group_vars/all/establishment.yml (validé)",
        ),
        RequirementEvidence(
            "CARE-D2-03",
            "Au moins une restauration testée en conditions réelles, datée",
            _status(recent_drill if last_drill else None),
            f"drills/ — dernier exercice {last_drill.finished:%d/%m/%Y %H:%M}"
            if last_drill
            else "aucun exercice",
        ),
        RequirementEvidence(
            "CARE-D2-05",
            "Restauration complète vérifiée d'une application critique",
            _status(bool(drilled_vital) if results.drills else None),
            ", ".join(sorted(drilled_vital)) or "aucune",
        ),
        RequirementEvidence(
            "BP100-OPS-11",
            "Sauvegardes testées régulièrement (R22), tous les fichiers vérifiés",
            _status((recent_drill and last_drill.passed) if last_drill else None),
            "drills/",
        ),
        RequirementEvidence(
            "BP100-OPS-12",
            "Ordre de restauration selon les dépendances (R23)",
            "conforme",
            " → ".join(
                restore_order(
                    {d.name: d.depends_on for d in establishment.datasets},
                    {d.name: d.criticality.value for d in establishment.datasets},
                )
            ),
        ),
        RequirementEvidence(
            "BP100-OPS-10",
            "Contrôle de chaque sauvegarde, détection d'anomalies (R21)",
            _status(not any(d.anomaly or d.prune_hold for d in datasets) if backups_known else None),
            "backups/ — anomalies et gel de la purge",
        ),
        RequirementEvidence(
            "BP100-OPS-01",
            "Règle 3-2-1 pour chaque dossier",
            _status(
                all(
                    d.rule_32110["3 copies"] and d.rule_32110["2 supports"] and d.rule_32110["1 hors site"]
                    for d in datasets
                )
                if backups_known
                else None
            ),
            "tableau 3-2-1-1-0",
        ),
        RequirementEvidence(
            "BP100-OPS-02",
            "Copie hors ligne",
            _status(all(d.offline_current for d in datasets) if results.offline else None),
            _offline_evidence(establishment, datasets),
        ),
        RequirementEvidence(
            "BP100-EXT-03",
            "Copie hors site immuable (WORM, COMPLIANCE) vérifiée",
            _status(results.offsite.compliant if results.offsite else None),
            f"offsite/verify.json — {results.offsite.bucket}" if results.offsite else "non vérifiée",
        ),
        RequirementEvidence(
            "HDS-02",
            "Stockage des données de santé dans l'EEE uniquement",
            "conforme",
            f"région {establishment.offsite.region} (validée)",
        ),
        RequirementEvidence(
            "HDS-03",
            "Chiffrement côté établissement avant envoi",
            "conforme",
            "dépôts restic chiffrés par les clés de l'établissement (coffre ansible-vault)",
        ),
        RequirementEvidence(
            "BP100-OPS-13",
            "Bouton rouge d'isolement testé",
            _status((red_button.isolated_client_refused and red_button.jobs_resumed) if red_button else None),
            f"red-button/ — {red_button.tested_at:%d/%m/%Y}" if red_button else "non testé",
        ),
        RequirementEvidence(
            "BP028-01",
            "Durcissement ANSSI-BP-028 mesuré (OpenSCAP)",
            _status(bool(results.hardening) or None),
            ", ".join(f"{h.host} {h.level} {h.score_pct} %" for h in results.hardening) or "aucun score",
        ),
        RequirementEvidence(
            "TK-RANSOM",
            "Exercice rançongiciel : aucune donnée perdue",
            _status(
                (
                    ransomware.status == "passed"
                    and ransomware.files_lost == 0
                    and ransomware.rows_lost == 0
                    and (
                        not isinstance(ransomware.offsite, OffsiteLeg)
                        or ransomware.offsite.status == "passed"
                    )
                )
                if ransomware
                else None
            ),
            _ransomware_evidence(ransomware),
        ),
    ]


def _ransomware_evidence(drill: RansomwareDrill | None) -> str:
    if drill is None:
        return "non joué"
    text = f"ransomware/ — {len(drill.attempts)} tentatives"
    leg = drill.offsite
    if isinstance(leg, OffsiteLeg):
        text += (
            f" ; hors site : {leg.refused}/{leg.attempts} refusées, {leg.files_lost} fichier(s) et"
            f" {leg.rows_lost} ligne(s) perdus après restauration depuis la copie immuable"
        )
    else:
        text += " ; volet hors site non joué"
    return text


def _software(collected: list[HostPackages]) -> list[HostSoftware]:
    tested = read_tested()
    return [
        HostSoftware(
            host=host.host,
            collected_at=host.collected_at,
            versions={name: version for name, version in sorted(host.packages.items()) if name in tested},
            differences=[d.describe() for d in compare_installed(tested, host.packages)],
        )
        for host in sorted(collected, key=lambda h: h.host)
    ]


def build_evidence(establishment: Establishment, results: Results, now: datetime) -> Evidence:
    order = restore_order(
        {d.name: d.depends_on for d in establishment.datasets},
        {d.name: d.criticality.value for d in establishment.datasets},
    )
    datasets = [
        _dataset_evidence(establishment, results, now, rank, name) for rank, name in enumerate(order, 1)
    ]
    return Evidence(
        finess=establishment.finess,
        name=establishment.name,
        ght=establishment.ght,
        generated_at=now,
        restore_order=order,
        datasets=datasets,
        requirements=_requirements(establishment, results, datasets, now),
        unreadable_results=results.unreadable,
        software=_software(results.packages),
    )
