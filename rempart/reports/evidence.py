"""The CaRE evidence of an establishment, computed from its inventory and its result files only.

Per dataset the 3-2-1-1-0 status (3 copies, 2 media, 1 offsite, 1 offline or immutable, 0 restore errors), RPO and
RTO targets against what was measured, then each requirement of the catalogue (rempart/catalogue) judged by its
measure function (rempart/reports/measures.py) from recorded, dated results: "non mesuré" without a result, "périmé" when
the result is older than the catalogue allows, otherwise "conforme" or "non conforme". No status is a constant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from rempart.catalogue import UNMEASURED, Catalogue, Requirement, catalogue
from rempart.model.dependencies import restore_order
from rempart.model.establishment import Dataset, Establishment
from rempart.model.tested_set import compare_installed, read_tested
from rempart.reports.french import fr_datetime
from rempart.reports.measures import MEASURES, Finding, Inputs, last_drill_of
from rempart.reports.results import Drill, DrillDataset, HostPackages, Results

Status = Literal["conforme", "non conforme", "non mesuré", "périmé"]
STATUSES: tuple[Status, ...] = ("conforme", "non conforme", "périmé", "non mesuré")
Verdict = Literal["conforme", "non conforme", "incomplet"]


@dataclass
class RtoStep:
    """A step of a dataset's recovery: timed by the last restore drill, declared by the establishment
    (``recovery_steps``), or neither (hours None)."""

    label: str  # French: what the step is, and for a measured one what exactly was timed
    hours: float | None
    source: Literal["mesuré", "non mesuré", "déclaré", "non déclaré"]


UNDECLARED_STEP = (
    "reconstruction de l'hôte et remise en service de l'application : ni mesurée ni déclarée (recovery_steps "
    "du dossier dans le fichier de l'établissement)"
)


def rto_steps(dataset: Dataset, drill: tuple[Drill, DrillDataset] | None) -> list[RtoStep]:
    """The recovery's steps in the order they run: what the drill timed, then the declared estimates."""
    steps: list[RtoStep] = []
    if drill is None:
        steps.append(RtoStep("restauration et contrôle : le dossier n'est dans aucun exercice de restauration",
                             None, "non mesuré"))  # fmt: skip
    else:
        run, result = drill
        total = result.rto_estimated_s if result.rto_estimated_s is not None else result.duration_s
        load = result.load_s or 0.0
        sampled = " (échantillon, extrapolé à la taille complète)" if result.scope == "sample" else ""
        steps.append(RtoStep(
            f"restauration depuis le dépôt sur site et contrôle de l'empreinte de chaque fichier{sampled}, "
            f"exercice du {fr_datetime(run.finished)}", round((total - load) / 3600, 4), "mesuré",
        ))  # fmt: skip
        if result.load_s is not None:
            steps.append(RtoStep(
                "chargement du dump dans une base de travail et comptage des lignes de chaque table",
                round(load / 3600, 4), "mesuré",
            ))  # fmt: skip
    steps += [RtoStep(step.step, step.hours, "déclaré") for step in dataset.recovery_steps]
    if not dataset.recovery_steps:
        steps.append(RtoStep(UNDECLARED_STEP, None, "non déclaré"))
    return steps


@dataclass
class DatasetEvidence:
    name: str
    description: str
    host: str
    criticality: str
    rpo_hours: int
    rto_hours: int
    restore_rank: int
    last_backup: datetime | None  # newest snapshot a restore may rely on (trusted, no anomaly)
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
    rto_measured_hours: (
        float | None
    )  # the drill's restore + verification in its sandbox (see rto_measured_what)
    rto_met: (
        bool | None
    )  # the sum of every step within rto_hours; None while a step is neither timed nor declared
    anomaly: bool
    prune_hold: bool
    anomalous_snapshots: int = 0  # successful snapshots left out of the RPO (anomaly or untrusted)
    rto_steps: list[RtoStep] = field(default_factory=list)
    rto_total_hours: float | None = None  # measured + declared steps; None while one is missing
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
    action: str
    measured_at: datetime | None
    declared: str | None = None


@dataclass
class HostSoftware:
    """A host's installed versions of the tested packages (rempart/model/tested_set.py), as collected and dated."""

    host: str
    collected_at: datetime
    versions: dict[str, str]  # tested package -> installed version
    differences: list[str]  # French, one line per package whose version is not the tested one


RTO_MEASURED_WHAT = (
    "somme des étapes de la reprise : celles que l'exercice de restauration chronomètre (restauration depuis le "
    "dépôt sur site dans un bac à sable du serveur de sauvegarde, contrôle de chaque fichier et, pour une base, "
    "chargement dans une base de travail et comptage des lignes), puis les estimations déclarées par "
    "l'établissement pour le reste (reconstruction de l'hôte, remise en service de l'application) ; sans "
    "estimation déclarée, le RTO n'est pas dit tenu"
)


@dataclass
class Evidence:
    finess: str
    name: str
    ght: str | None
    generated_at: datetime
    restore_order: list[str]
    datasets: list[DatasetEvidence]
    requirements: list[RequirementEvidence]
    unmeasured: list[RequirementEvidence]  # catalogue requirements nothing in Rempart measures yet
    unreadable_results: list[str]
    software: list[HostSoftware] = field(default_factory=list)
    rto_measured_what: str = RTO_MEASURED_WHAT

    @property
    def verdict(self) -> Verdict:
        """conforme only when every measured requirement is; non conforme as soon as one is not; incomplet when
        none fails but some are not measured or their measure is too old."""
        statuses = {r.status for r in self.requirements}
        if "non conforme" in statuses:
            return "non conforme"
        return "conforme" if statuses == {"conforme"} else "incomplet"

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.requirements)

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["verdict"] = self.verdict
        for dataset, source in zip(document["datasets"], self.datasets, strict=True):
            dataset["rule_32110_met"] = source.rule_32110_met
        return document


def _dataset_evidence(
    establishment: Establishment, results: Results, now: datetime, rank: int, name: str
) -> DatasetEvidence:
    dataset = establishment.dataset(name)
    history = results.backups.get(name)
    usable = history.usable() if history else []
    last = usable[-1] if usable else None
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
    drill = last_drill_of(results, name)
    drill_result = drill[1] if drill else None
    verified_at = drill[0].finished if drill and drill_result and drill_result.status == "passed" else None
    errors = (drill_result.files_failed + len(drill_result.errors)) if drill_result else None
    steps = rto_steps(dataset, drill)
    rto_measured = (
        round((drill_result.rto_estimated_s or drill_result.duration_s) / 3600, 4) if drill_result else None
    )  # the drill's own total (its steps are rounded apart)
    rto_total = (
        round(sum(s.hours or 0.0 for s in steps), 4)
        if drill_result and all(s.hours is not None for s in steps)
        else None
    )
    media = ["production"]
    if last:
        media.append("disque (dépôt sur site, ajout seul)")
    if offsite_ok:
        media.append("stockage objet hors site (Object Lock COMPLIANCE)")
    if offline:
        media.append(f"support amovible hors ligne ({offline.medium})")
    copies = len(media)
    jobs = history.successes() if history else []
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
        rto_measured_hours=rto_measured,
        rto_met=(rto_total <= dataset.rto_hours) if rto_total is not None else None,
        rto_steps=steps,
        rto_total_hours=rto_total,
        anomaly=any(j.anomaly for j in jobs[-1:]),
        prune_hold=bool(history and history.prune_hold),
        anomalous_snapshots=sum(not j.usable for j in jobs),
    )
    evidence.rule_32110 = {
        "3 copies": copies >= 3,
        "2 supports": len({m.split(" ")[0] for m in media[1:]}) >= 2 if copies > 1 else False,
        "1 hors site": bool(offsite_ok),
        "1 hors ligne ou immuable": offline_current or bool(offsite_ok),
        "0 erreur de restauration": errors == 0 if errors is not None else None,
    }
    return evidence


def judge(requirement: Requirement, finding: Finding, now: datetime) -> Status:
    """The status of a requirement from its measure: nothing measured, too old, then the measure's verdict."""
    if finding.ok is None or finding.measured_at is None:
        return "non mesuré"
    if requirement.max_age_days is not None and now - finding.measured_at > timedelta(
        days=requirement.max_age_days
    ):
        return "périmé"
    return "conforme" if finding.ok else "non conforme"


def _action(requirement: Requirement, finding: Finding, status: Status) -> str:
    if status == "conforme":
        return finding.action or "—"
    if status == "non conforme" and finding.action:
        return finding.action
    prefix = "Mesure trop ancienne : " if status == "périmé" else ""
    return prefix + (requirement.action_fr or "Aucune mesure dans Rempart.")


def _requirement(requirement: Requirement, inputs: Inputs) -> RequirementEvidence:
    finding = MEASURES[requirement.measure](inputs, requirement)
    status = judge(requirement, finding, inputs.now)
    return RequirementEvidence(
        id=requirement.id,
        label=requirement.title_fr or requirement.statement_fr,
        status=status,
        evidence=finding.evidence,
        action=_action(requirement, finding, status),
        measured_at=finding.measured_at,
        declared=requirement.declared_fr,
    )


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


def build_evidence(
    establishment: Establishment, results: Results, now: datetime, requirements: Catalogue | None = None
) -> Evidence:
    order = restore_order(
        {d.name: d.depends_on for d in establishment.datasets},
        {d.name: d.criticality.value for d in establishment.datasets},
    )
    datasets = [
        _dataset_evidence(establishment, results, now, rank, name) for rank, name in enumerate(order, 1)
    ]
    inputs = Inputs(establishment, results, datasets, order, now)
    known = requirements or catalogue()
    judged = [_requirement(r, inputs) for r in known.requirements if r.measure != UNMEASURED]
    unmeasured = [_requirement(r, inputs) for r in known.requirements if r.measure == UNMEASURED]
    return Evidence(
        finess=establishment.finess,
        name=establishment.name,
        ght=establishment.ght,
        generated_at=now,
        restore_order=order,
        datasets=datasets,
        requirements=judged,
        unmeasured=unmeasured,
        unreadable_results=results.unreadable,
        software=_software(results.packages),
    )
