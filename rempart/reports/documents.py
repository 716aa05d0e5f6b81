"""``rempart report``: the French documents of an establishment, rendered with Jinja2 from its inventory and its
result files — ``rapport-care.html`` + ``.json`` (evidence for the CaRE declaration) and ``plan-sauvegarde.html``
(backup and restore plan). Self-contained files: inline CSS and SVG, no script, no external resource."""

from __future__ import annotations

import argparse
import itertools
import json
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from rempart.catalogue import catalogue
from rempart.model.crisis import REQUIRED_ROLES, ROLE_LABELS
from rempart.model.dependencies import restore_order
from rempart.model.establishment import Establishment
from rempart.model.ght import establishment_sources
from rempart.model.inventory import load_establishment_data
from rempart.model.validation import load_valid
from rempart.reports.charts import target_vs_measured, time_series
from rempart.reports.evidence import Evidence, build_evidence
from rempart.reports.french import CRITICALITY, fr_date, fr_datetime, fr_duration, fr_number
from rempart.reports.measures import LEVELS_FR, classify, hardening_figures
from rempart.reports.pdf import print_to_pdf
from rempart.reports.results import Results, load_results

KINDS = {"files": "fichiers", "postgresql": "base PostgreSQL", "mariadb": "base MariaDB"}


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("rempart.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["fr_datetime"] = fr_datetime
    environment.filters["fr_date"] = fr_date
    environment.filters["fr_number"] = fr_number
    environment.filters["fr_duration"] = fr_duration
    environment.filters["criticality"] = lambda value: CRITICALITY.get(value, value)
    environment.filters["yesno"] = lambda value: "inconnu" if value is None else ("oui" if value else "non")
    environment.filters["yesno_css"] = lambda value: (
        "inconnu" if value is None else ("oui" if value else "non")
    )
    environment.filters["css"] = lambda value: str(value).replace(" ", "-")
    return environment


def _style() -> str:
    return files("rempart.reports").joinpath("templates/_style.css").read_text(encoding="utf-8")


def _charts(evidence: Evidence, results: Results) -> dict[str, str]:
    durations = {
        name: [(j.started, j.duration_s / 60) for j in history.successes() if j.duration_s is not None]
        for name, history in results.backups.items()
    }
    age_series: dict[str, list[tuple[datetime, float]]] = {}
    for name, history in results.backups.items():
        times = [j.finished or j.started for j in history.successes()]
        age_series[name] = [
            (later, (later - earlier).total_seconds() / 3600) for earlier, later in itertools.pairwise(times)
        ]
    return {
        "duration": time_series("Durée des sauvegardes", "minutes", durations),
        "age": time_series("Écart entre deux sauvegardes réussies (RPO effectif)", "heures", age_series),
        "rto": target_vs_measured(
            "RTO : durée de reprise (étapes mesurées et déclarées) et cible",
            "h",
            [
                (
                    d.name,
                    float(d.rto_hours),
                    d.rto_total_hours if d.rto_total_hours is not None else d.rto_measured_hours,
                )
                for d in evidence.datasets
            ],
        ),
    }


def _hardening_rows(results: Results) -> list[dict[str, object]]:
    requirement = catalogue().get("BP028-01")
    rows = []
    for score in sorted(results.hardening, key=lambda s: s.host):
        percent, waived, threshold = hardening_figures(score, requirement)
        rows.append(
            {
                "score": score,
                "level": LEVELS_FR.get(score.level, score.level),
                "percent": percent,
                "waived": waived,
                "threshold": threshold,
                "met": threshold is not None and percent >= threshold,
            }
        )
    return rows


def _ransomware_summary(results: Results) -> dict[str, object] | None:
    drill = max(results.ransomware, key=lambda r: r.finished, default=None)
    if drill is None:
        return None
    classified = [(attempt, classify(attempt)) for attempt in drill.attempts]
    counts = {name: 0 for name in ("refusée", "échec pour une autre raison", "réussie")}
    for _, name in classified:
        counts[name] += 1
    recovered = sum(a.outcome == "recovered" for a in drill.attempts)
    return {"drill": drill, "classified": classified, "counts": counts, "recovered": recovered}


def render_report(establishment: Establishment, results: Results, now: datetime) -> tuple[str, Evidence]:
    evidence = build_evidence(establishment, results, now)
    html = (
        _environment()
        .get_template("rapport-care.html.j2")
        .render(
            e=evidence,
            region=establishment.offsite.region,
            offline_declared=establishment.offline_copy is not None,
            style=_style(),
            charts=_charts(evidence, results),
            hardening=_hardening_rows(results),
            waivers=catalogue().get("BP028-01").waivers,
            offsite=results.offsite,
            ransomware=_ransomware_summary(results),
        )
    )
    return html, evidence


RUNBOOKS = {
    "bouton_rouge": "docs/runbook-bouton-rouge.md",
    "restauration": "docs/runbook-restauration-complete.md",
    "hors_site": "docs/runbook-reprise-hors-site.md",
    "hors_ligne": "docs/runbook-rotation-support-hors-ligne.md",
}


def render_plan(establishment: Establishment, now: datetime, evidence: Evidence | None = None) -> str:
    """The backup and restore plan; with ``evidence``, the measured drill durations per dataset."""
    order = restore_order(
        {d.name: d.depends_on for d in establishment.datasets},
        {d.name: d.criticality.value for d in establishment.datasets},
    )
    measured = {d.name: d for d in evidence.datasets} if evidence else {}
    return (
        _environment()
        .get_template("plan-sauvegarde.html.j2")
        .render(
            e=establishment,
            datasets=[establishment.dataset(name) for name in order],
            measured=measured,
            generated_at=now,
            kinds=KINDS,
            # the timers the backup server installs, worded from the same computed plan (Establishment.dataset_plan)
            plan=establishment.dataset_plan(),
            retention=establishment.retention_plan(),  # what backup_server keeps, and the offsite lock period
            offsite_lock=establishment.offsite_plan(),
            crisis=establishment.crisis,
            required_roles=[ROLE_LABELS[r] for r in REQUIRED_ROLES],
            degraded=establishment.degraded_mode,
            runbooks=RUNBOOKS,
            style=_style(),
        )
    )


def write_documents(inventory: Path, reports: Path, now: datetime, pdf: bool = False) -> list[Path]:
    """The documents of every establishment of the inventory, each in its own reports/<finess>/ (GHT: one
    folder per legal entity, computed from that establishment's file and results only); with ``pdf``, each HTML
    document is also printed to PDF by headless Chromium (rempart/reports/pdf.py)."""
    written: list[Path] = []
    for source in establishment_sources(inventory):
        establishment = load_valid(load_establishment_data(source.path), source.hosts)
        documents = _write_establishment(establishment, reports, now)
        if pdf:
            documents += [print_to_pdf(path) for path in documents if path.suffix == ".html"]
        written += documents
    return written


def _write_establishment(establishment: Establishment, reports: Path, now: datetime) -> list[Path]:
    folder = reports / establishment.finess
    folder.mkdir(parents=True, exist_ok=True)
    html, evidence = render_report(establishment, load_results(folder), now)
    written = {
        folder / "rapport-care.html": html,
        folder / "rapport-care.json": json.dumps(
            evidence.as_dict(), indent=2, ensure_ascii=False, default=str
        )
        + "\n",
        folder / "plan-sauvegarde.html": render_plan(establishment, now, evidence),
    }
    for path, content in written.items():
        path.write_text(content, encoding="utf-8")
    return list(written)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="render the CaRE evidence report and the backup/restore plan"
    )
    parser.add_argument("--inventory", type=Path, required=True, help="inventories/<name>")
    parser.add_argument(
        "--reports", type=Path, default=Path("reports"), help="reports root (default: reports)"
    )
    parser.add_argument("--now", type=datetime.fromisoformat, default=None, help="report time (ISO 8601)")
    parser.add_argument(
        "--pdf", action="store_true", help="also print each document to PDF with headless Chromium"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    now = args.now or datetime.now(UTC)
    for path in write_documents(args.inventory, args.reports, now, pdf=args.pdf):
        print(path)
    return 0
