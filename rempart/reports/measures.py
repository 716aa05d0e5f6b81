"""The measure functions of the requirement catalogue: each reads the recorded results (rempart/reports/results.py) and
returns what it found — whether the requirement is met (None: nothing measured), when the measure was taken,
and a French evidence text naming the measure, its date and its figures. rempart/reports/evidence.py turns that into a
status ("non mesuré", "périmé", "conforme", "non conforme") with the catalogue's maximum age.

A requirement names its function in rempart/catalogue/requirements.yml (`measure`); tests/unit/test_catalogue.py
checks every name resolves here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from rempart.catalogue import Requirement
from rempart.model.establishment import EEA_REGIONS, Establishment
from rempart.reports.french import CRITICALITY, fr_datetime, fr_duration, fr_number
from rempart.reports.results import Attempt, Drill, DrillDataset, HardeningScore, OffsiteLeg, Results

if TYPE_CHECKING:
    from rempart.reports.evidence import DatasetEvidence

LEVELS_FR = {"minimal": "minimal", "intermediary": "intermédiaire", "enhanced": "renforcé", "high": "élevé"}


@dataclass(frozen=True)
class Inputs:
    establishment: Establishment
    results: Results
    datasets: list[DatasetEvidence]
    order: list[str]
    now: datetime


@dataclass(frozen=True)
class Finding:
    ok: bool | None  # None: nothing measured
    measured_at: datetime | None
    evidence: str
    action: str = ""  # what closes the gap when ok is False


def judged(ok: bool, measured_at: datetime | None, evidence: str, action: str) -> Finding:
    """A measured verdict: ``action`` (what closes the gap) kept only when the requirement is not met."""
    return Finding(ok, measured_at, evidence, "" if ok else action)


Measure = Callable[[Inputs, Requirement], Finding]
MEASURES: dict[str, Measure] = {}


def measure(function: Measure) -> Measure:
    MEASURES[function.__name__] = function
    return function


def last_drill_of(results: Results, dataset: str) -> tuple[Drill, DrillDataset] | None:
    found = [(d, x) for d in results.drills for x in d.datasets if x.dataset == dataset]
    return max(found, key=lambda pair: pair[0].finished, default=None)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count > 1 else ''}"


@measure
def unmeasured(inputs: Inputs, requirement: Requirement) -> Finding:
    return Finding(None, None, "aucune mesure de Rempart ne couvre encore cette exigence")


@measure
def inventory_backed_up(inputs: Inputs, requirement: Requirement) -> Finding:
    declared = (
        f"inventaire validé (group_vars/all/establishment.yml) : {_plural(len(inputs.datasets), 'dossier')} "
        "avec criticité, PDMA et DMIA"
    )
    backed = [d for d in inputs.datasets if d.last_backup]
    if not backed:
        return Finding(None, None, f"{declared} ; aucune sauvegarde enregistrée par le serveur")
    missing = [d.name for d in inputs.datasets if not d.last_backup]
    oldest = min(d.last_backup for d in backed if d.last_backup)
    return judged(
        not missing,
        oldest,
        f"{declared} ; sauvegarde exploitable enregistrée par le serveur pour {len(backed)}/{len(inputs.datasets)}"
        f" (la plus ancienne des dernières : {fr_datetime(oldest)})",
        f"Aucune sauvegarde exploitable de {', '.join(missing)} : vérifier le dossier et son hôte.",
    )


@measure
def degraded_stations(inputs: Inputs, requirement: Requirement) -> Finding:
    mode = inputs.establishment.degraded_mode
    if mode.export is None:
        return Finding(
            False,
            inputs.now,
            "inventaire : aucun mode dégradé déclaré (degraded_mode.export absent)",
            "Déclarer l'export du mode dégradé (degraded_mode dans establishment.yml) et installer les postes de "
            "secours.",
        )
    stations = inputs.results.degraded
    if not stations:
        return Finding(None, None, "aucun relevé des postes de secours")
    limit = mode.effective_staleness_limit_hours
    recorded = {s.station for s in stations}
    late = [station.host for station in mode.stations if station.host not in recorded]
    parts = [f"{host} : aucun relevé" for host in late]
    for station in sorted(stations, key=lambda s: s.station):
        if station.cutoff is None or station.last_success is None:
            parts.append(f"{station.station} : aucun classeur vérifié reçu")
            late.append(station.station)
            continue
        age = (station.collected_at - station.cutoff).total_seconds() / 3600
        parts.append(
            f"{station.station} (relevé le {fr_datetime(station.collected_at)}) : dernier classeur vérifié reçu le "
            f"{fr_datetime(station.last_success)}, état au {fr_datetime(station.cutoff)}, âge {fr_number(age)} h "
            f"(limite {limit} h)"
        )
        if age > limit:
            late.append(station.station)
    return judged(
        not late,
        min(s.collected_at for s in stations),
        " ; ".join(parts),
        f"Classeur trop ancien sur {', '.join(late)} : vérifier l'export et la récupération (journal du poste).",
    )


def _drill_figures(drill: Drill) -> str:
    verified = sum(x.files_verified for x in drill.datasets)
    failed = sum(x.files_failed for x in drill.datasets)
    rows = sum(x.rows_checked or 0 for x in drill.datasets)
    text = (
        f"exercice de restauration du {fr_datetime(drill.finished)} : {_plural(len(drill.datasets), 'dossier')}, "
        f"{verified} fichier(s) vérifié(s), {failed} en échec"
    )
    return text + (f", {rows} ligne(s) de base comptée(s)" if rows else "")


def _failed_datasets(drill: Drill) -> list[str]:
    return [x.dataset for x in drill.datasets if x.status != "passed"]


@measure
def last_drill(inputs: Inputs, requirement: Requirement) -> Finding:
    drill = inputs.results.last_drill()
    if drill is None:
        return Finding(None, None, "aucun exercice de restauration enregistré")
    failed = _failed_datasets(drill)
    return Finding(
        drill.passed,
        drill.finished,
        _drill_figures(drill),
        f"Échec de la restauration de {', '.join(failed)} : examiner le résultat (drills/) et rejouer l'exercice."
        if failed
        else "",
    )


@measure
def critical_full_restore(inputs: Inputs, requirement: Requirement) -> Finding:
    if not inputs.results.drills:
        return Finding(None, None, "aucun exercice de restauration enregistré")
    important = {
        d.name: d.criticality.value
        for d in inputs.establishment.datasets
        if d.criticality.value in ("vital", "critical")
    }
    full = [
        (drill, x)
        for drill in inputs.results.drills
        for x in drill.datasets
        if x.dataset in important and x.status == "passed" and x.scope == "full"
    ]
    if not full:
        newest = max(d.finished for d in inputs.results.drills)
        return Finding(
            False,
            newest,
            f"aucune restauration complète réussie d'un dossier vital ou critique ({', '.join(important) or 'aucun déclaré'})",
            "Jouer un exercice de restauration complète d'un dossier vital ou critique (playbooks/drill.yml).",
        )
    drill, x = max(full, key=lambda pair: pair[0].finished)
    rows = f", {x.rows_checked} ligne(s) comptée(s)" if x.rows_checked else ""
    return Finding(
        True,
        drill.finished,
        f"{x.dataset} ({CRITICALITY[important[x.dataset]]}) restauré en entier le {fr_datetime(drill.finished)} : "
        f"{x.files_verified} fichier(s) vérifié(s){rows}",
    )


@measure
def every_dataset_drilled(inputs: Inputs, requirement: Requirement) -> Finding:
    if not inputs.results.drills:
        return Finding(None, None, "aucun exercice de restauration enregistré")
    parts, missing, failed, times = [], [], [], []
    for name in inputs.order:
        found = last_drill_of(inputs.results, name)
        if found is None:
            missing.append(name)
            parts.append(f"{name} : jamais restauré")
            continue
        drill, x = found
        times.append(drill.finished)
        verdict = "réussie" if x.status == "passed" else "en échec"
        parts.append(
            f"{name} : {fr_datetime(drill.finished)}, {verdict} ({x.files_verified} fichier(s) vérifié(s), "
            f"{x.files_failed} en échec)"
        )
        if x.status != "passed":
            failed.append(name)
    action = []
    if failed:
        action.append(f"Corriger puis rejouer la restauration de {', '.join(failed)}.")
    if missing:
        action.append(f"Inclure {', '.join(missing)} dans l'exercice.")
    newest = max(d.finished for d in inputs.results.drills)
    return Finding(not (missing or failed), min(times, default=newest), "dernière restauration par dossier — " + " ; ".join(parts),
                   " ".join(action))  # fmt: skip


@measure
def restore_order(inputs: Inputs, requirement: Requirement) -> Finding:
    drill = inputs.results.last_drill()
    if drill is None:
        return Finding(None, None, f"ordre prévu : {' → '.join(inputs.order)} ; aucun exercice ne l'a suivi")
    restored = [x.dataset for x in drill.datasets]
    position = {name: index for index, name in enumerate(restored)}
    depends = {d.name: d.depends_on for d in inputs.establishment.datasets}
    problems = []
    for name in restored:
        for dependency in depends.get(name, []):
            if dependency not in position:
                problems.append(f"{name} restauré sans sa dépendance {dependency}")
            elif position[dependency] > position[name]:
                problems.append(f"{name} restauré avant sa dépendance {dependency}")
    return judged(
        not problems,
        drill.finished,
        f"exercice du {fr_datetime(drill.finished)} : ordre suivi {' → '.join(restored)} ; ordre prévu "
        f"{' → '.join(inputs.order)}" + (f" ; {' ; '.join(problems)}" if problems else ""),
        "Restaurer les dépendances d'abord : jouer l'exercice sur tous les dossiers (playbooks/drill.yml).",
    )


@measure
def rule_321(inputs: Inputs, requirement: Requirement) -> Finding:
    datasets = inputs.datasets
    if not any(d.last_backup for d in datasets):
        return Finding(None, None, "aucune sauvegarde enregistrée")
    offsite = inputs.results.offsite
    met = [d.name for d in datasets if d.rule_32110["3 copies"] and d.rule_32110["2 supports"]
           and d.rule_32110["1 hors site"]]  # fmt: skip
    short = [d.name for d in datasets if d.name not in met]
    times = [d.last_backup for d in datasets if d.last_backup] + ([offsite.checked_at] if offsite else [])
    where = (
        f"copie hors site vérifiée le {fr_datetime(offsite.checked_at)}"
        if offsite
        else "copie hors site jamais vérifiée"
    )
    return judged(
        not short,
        min(times),
        f"{len(met)}/{len(datasets)} dossier(s) à 3 copies sur 2 supports dont 1 hors site ; {where}",
        f"Compléter les copies de {', '.join(short)} (tableau 3-2-1-1-0).",
    )


@measure
def offline_copy(inputs: Inputs, requirement: Requirement) -> Finding:
    declared = inputs.establishment.offline_copy
    if declared is None:
        return Finding(
            False,
            inputs.now,
            "inventaire : aucun support hors ligne déclaré (offline_copy absent)",
            "Déclarer des supports amovibles en rotation (offline_copy dans establishment.yml), ou justifier "
            "l'absence de copie hors ligne.",
        )
    rotation = declared.rotation
    policy = (
        f"rotation tous les {rotation.every_days} jours, {rotation.media_count} supports dont "
        f"{rotation.offsite_count} hors site"
    )
    if not inputs.results.offline:
        return Finding(None, None, f"{policy} ; aucune copie hors ligne enregistrée")
    late = [d.name for d in inputs.datasets if not d.offline_current]
    since = [d.offline_since for d in inputs.datasets if d.offline_since]
    media = sorted({d.offline_medium for d in inputs.datasets if d.offline_medium})
    newest = f", dernier support déconnecté le {fr_datetime(max(since))}" if since else ""
    return judged(
        not late,
        min(since) if since else inputs.now,
        f"offline/ledger.jsonl — {policy} ; dernier(s) support(s) : {', '.join(media) or 'aucun'}{newest}",
        f"Copie hors ligne absente ou plus ancienne que la rotation pour {', '.join(late)} : faire la rotation "
        "(docs/runbook-rotation-support-hors-ligne.md).",
    )


def _ransomware_window(inputs: Inputs) -> list[tuple[str, datetime, float, bool]]:
    """Snapshots that arrived during the newest ransomware drill: (dataset, arrival, changed ratio, flagged).
    A dataset's first snapshot is left out (everything in it is new: no rule compares it with anything)."""
    drill = max(inputs.results.ransomware, key=lambda r: r.finished)
    found = []
    for name, history in inputs.results.backups.items():
        for job in history.successes():
            arrived = job.finished or job.started
            if drill.started <= arrived <= drill.finished and job.changed_ratio is not None and not job.first:
                found.append((name, arrived, job.changed_ratio, job.anomaly))
    return sorted(found, key=lambda w: w[1])


def _attack_backups(
    window: list[tuple[str, datetime, float, bool]], threshold: float
) -> list[tuple[str, datetime, float, bool]]:
    """Per dataset, the first snapshot of the drill that changed at least ``threshold`` of its files: the one that
    stored the encrypted state. The drill then restores the data and backs it up again; that snapshot (a mass
    change back to the good files) is the drill's own repair, not an attack to detect."""
    seen: set[str] = set()
    chosen = []
    for entry in window:
        if entry[2] >= threshold and entry[0] not in seen:
            seen.add(entry[0])
            chosen.append(entry)
    return chosen


@measure
def anomaly_detection(inputs: Inputs, requirement: Requirement) -> Finding:
    holds = [d.name for d in inputs.datasets if d.prune_hold]
    hold_text = f" ; purge gelée (anomalie à examiner) sur {', '.join(holds)}" if holds else ""
    if not inputs.results.ransomware:
        return Finding(
            None, None, "exercice rançongiciel non joué : la détection n'a pas été éprouvée" + hold_text
        )
    drill = max(inputs.results.ransomware, key=lambda r: r.finished)
    window = _ransomware_window(inputs)
    if not window:
        return Finding(
            None,
            None,
            f"le journal du serveur ne couvre pas l'exercice rançongiciel du {fr_datetime(drill.finished)}"
            + hold_text,
        )
    threshold = requirement.thresholds.get("changed_ratio", 0.5)
    mass = _attack_backups(window, threshold)
    missed = [w for w in mass if not w[3]]
    flagged = [w for w in mass if w[3]]
    text = (
        f"exercice rançongiciel du {fr_datetime(drill.finished)} : {len(mass)} sauvegarde(s) des données chiffrées "
        f"(la première de chaque jeu modifiant au moins {fr_number(100 * threshold, 0)} % des fichiers ; ni la "
        f"première sauvegarde d'un jeu ni celle des données restaurées ne comptent), {len(flagged)} signalée(s) "
        "comme anomalie"
    )
    text += "".join(
        f" ; NON signalée : {name} ({fr_number(100 * ratio, 0)} % des fichiers modifiés, arrivée le {fr_datetime(at)})"
        for name, at, ratio, _ in missed
    )
    if not mass:
        text += " ; aucune sauvegarde chiffrée n'est arrivée pendant l'exercice"
    return Finding(
        bool(flagged) and not missed,
        drill.finished,
        text + hold_text,
        "Le contrôle n'a pas signalé une sauvegarde chiffrée : revoir les seuils d'anomalie du serveur "
        "(backup_server_anomaly) puis rejouer l'exercice."
        if missed or not mass
        else "",
    )


@measure
def offsite_immutable(inputs: Inputs, requirement: Requirement) -> Finding:
    check = inputs.results.offsite
    if check is None:
        return Finding(None, None, "compartiment hors site jamais vérifié")
    found = f"{_plural(len(check.findings), 'constat')} (voir la section hors site)" if check.findings else ""
    return judged(
        check.compliant,
        check.checked_at,
        f"offsite/verify.json — compartiment {check.bucket} vérifié le {fr_datetime(check.checked_at)} : "
        + (
            found
            or "verrouillage COMPLIANCE, versions, chiffrement, accès public et sondes d'effacement conformes"
        ),
        "Corriger les réglages du compartiment (constats de rempart verify-offsite).",
    )


@measure
def offsite_location(inputs: Inputs, requirement: Requirement) -> Finding:
    check = inputs.results.offsite
    declared = inputs.establishment.offsite.region
    if check is None or check.location is None:
        return Finding(
            None, None, f"région déclarée {declared} ; emplacement réel du compartiment non relevé"
        )
    inside = check.location in EEA_REGIONS[inputs.establishment.offsite.provider]
    return judged(
        inside,
        check.checked_at,
        f"compartiment {check.bucket} situé en {check.location} selon le fournisseur, relevé le "
        f"{fr_datetime(check.checked_at)} ; région déclarée {declared}",
        f"Le compartiment est hors de l'Espace économique européen ({check.location}) : le recréer dans une "
        "région de l'EEE et y recopier les sauvegardes.",
    )


@measure
def client_side_encryption(inputs: Inputs, requirement: Requirement) -> Finding:
    samples = inputs.results.encryption
    if not samples:
        return Finding(None, None, "aucun échantillon des dépôts relevé")
    bad = [s for s in samples if s.plaintext_objects or not s.repository_encrypted]
    parts = [
        f"{s.where} : {s.objects_sampled} objet(s) échantillonné(s) le {fr_datetime(s.checked_at)}, "
        f"{len(s.plaintext_objects)} en clair, configuration {'chiffrée' if s.repository_encrypted else 'EN CLAIR'}"
        for s in samples
    ]
    if not bad and not any(s.where.startswith("hors site") for s in samples):
        # what leaves the site is what HDS-03 is about: not measured without an offsite sample
        return Finding(None, None, " ; ".join(parts) + " ; copie hors site non échantillonnée")
    return judged(
        not bad,
        min(s.checked_at for s in samples),
        " ; ".join(parts),
        f"Données en clair dans {', '.join(s.where for s in bad)} : isoler le dépôt et enquêter.",
    )


@measure
def red_button(inputs: Inputs, requirement: Requirement) -> Finding:
    tests = inputs.results.red_button
    if not tests:
        return Finding(None, None, "bouton rouge jamais testé")
    last = max(tests, key=lambda r: r.tested_at)
    return judged(
        last.isolated_client_refused and last.jobs_resumed,
        last.tested_at,
        f"test du {fr_datetime(last.tested_at)} : client isolé refusé "
        f"{'oui' if last.isolated_client_refused else 'NON'}, sauvegardes reprises après levée "
        f"{'oui' if last.jobs_resumed else 'NON'}",
        "Le bouton rouge n'a pas isolé ou pas rendu la main : voir docs/runbook-bouton-rouge.md et le journal.",
    )


def hardening_figures(score: HardeningScore, requirement: Requirement) -> tuple[float, int, float | None]:
    """(score after the reviewed waivers in %, waived failures, the level's threshold or None)."""
    waived = sum(any(w.rule in rule for w in requirement.waivers) for rule in score.failures)
    judged = score.passed + score.failed - waived
    percent = round(100 * score.passed / judged, 1) if judged else 0.0
    return percent, waived, requirement.thresholds.get(score.level)


@measure
def hardening_score(inputs: Inputs, requirement: Requirement) -> Finding:
    scores = inputs.results.hardening
    if not scores:
        return Finding(None, None, "aucune analyse OpenSCAP enregistrée")
    parts, below = [], []
    for score in sorted(scores, key=lambda s: s.host):
        percent, waived, threshold = hardening_figures(score, requirement)
        level = LEVELS_FR.get(score.level, score.level)
        limit = f"seuil {fr_number(threshold)} %" if threshold is not None else "aucun seuil pour ce niveau"
        parts.append(
            f"{score.host} (niveau {level}) : {fr_number(percent)} % le {fr_datetime(score.scanned_at)} "
            f"({score.passed} règles réussies, {score.failed} échouées dont {waived} en dérogation), {limit}"
        )
        if threshold is None or percent < threshold:
            below.append(score.host)
    return judged(
        not below,
        min(s.scanned_at for s in scores),
        " ; ".join(parts),
        f"Durcissement insuffisant sur {', '.join(below)} : appliquer roles/hardening au niveau déclaré et "
        "corriger les règles en échec (liste dans la section durcissement).",
    )


AttemptClass = Literal["refusée", "échec pour une autre raison", "réussie"]
# A refusal is what the defence answered: HTTP 401/403/405, S3 AccessDenied, a closed port, a refused login, or the
# server's checks that the targets are still there. Anything else that did not succeed (a timeout, HTTP 500, an
# exception) failed for another reason and proves nothing about the defence.
_OTHER = re.compile(r"timed out|timeout|\b5[0-9]{2}\b|Traceback|Exception", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b40[135]\b|AccessDenied|Forbidden|Connection refused|login refused|denied|not permitted|read-only"
    r"|still listed|restore points kept: True",
    re.IGNORECASE,
)


def classify(attempt: Attempt) -> AttemptClass:
    if attempt.outcome in ("succeeded", "recovered"):
        return "réussie"  # "recovered": the action happened; its effect was undone by a restore
    if _OTHER.search(attempt.detail) or not _REFUSAL.search(attempt.detail):
        return "échec pour une autre raison"
    return "refusée"


@measure
def ransomware_drill(inputs: Inputs, requirement: Requirement) -> Finding:
    if not inputs.results.ransomware:
        return Finding(None, None, "exercice rançongiciel non joué")
    drill = max(inputs.results.ransomware, key=lambda r: r.finished)
    classes = [classify(a) for a in drill.attempts]
    recovered = sum(a.outcome == "recovered" for a in drill.attempts)
    lost = drill.files_lost + drill.rows_lost
    text = (
        f"exercice du {fr_datetime(drill.finished)} : {len(drill.attempts)} tentatives — "
        f"{classes.count('refusée')} refusées, {classes.count('échec pour une autre raison')} en échec pour une "
        f"autre raison, {classes.count('réussie')} réussies dont {recovered} rattrapées sans perte ; "
        f"{drill.files_lost} fichier(s) et {drill.rows_lost} ligne(s) perdus, restauration sur site en "
        f"{fr_duration(drill.restore_time_s)}"
    )
    leg = drill.offsite
    if isinstance(leg, OffsiteLeg):
        text += (
            f" ; hors site : {leg.refused}/{leg.attempts} refusées, {leg.files_lost} fichier(s) et "
            f"{leg.rows_lost} ligne(s) perdus après restauration depuis la copie immuable"
        )
    else:
        text += " ; volet hors site non joué"
    succeeded = sum(a.outcome == "succeeded" for a in drill.attempts)
    ok = drill.status == "passed" and lost == 0 and succeeded == 0
    ok = ok and (not isinstance(leg, OffsiteLeg) or leg.status == "passed")
    return judged(
        ok,
        drill.finished,
        text,
        "Une destruction a réussi ou des données sont perdues : voir l'annexe des tentatives et corriger.",
    )
