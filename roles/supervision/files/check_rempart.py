#!/usr/bin/python3
"""check_rempart: the backup server's state for Centreon/Nagios (Monitoring Plugins conventions).

One status line, ``|`` and the performance data; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. It reads the
Prometheus textfile metrics the Rempart programs write (the node exporter's textfile folder) and the thresholds
roles/supervision writes from the establishment (alerts.thresholds, alerts.overrides, each dataset's rpo_hours and
repository quota). Modes:

  backups     per dataset: newest successful backup against rpo_hours, last job result, prune hold, anomaly
  offsite     per dataset: lag of the immutable offsite copy behind the newest on-site snapshot, last copy result;
              per bucket, when ``rempart offsite-watch`` writes its metrics into the same folder (it runs with the
              restore key, independently of the copy): objects hidden by a delete marker, retention refresh age
              per repository, locks shorter than the retention, the watch's own age. Without those metrics the
              bucket itself is not judged (the status line says "compartiment non surveillé").
  drill       per dataset: age and result of the last restore drill
  repository  per dataset: repository use against its quota, age and result of the last restic check
  offline     per dataset: newest offline copy against the rotation (when the establishment declares one); a
              medium left attached, an unknown medium attached
  redbutton   the emergency isolation (red button): CRITICAL while the server is isolated

Every mode names the datasets it reports on and says when the server is isolated (jobs are then suspended).
Run by NRPE or check_by_ssh: ``check_rempart --mode backups [--dataset partages]``. Standard library only.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG = Path("/etc/rempart/supervision.json")
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
SEVERITY = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}  # the worst finding decides the exit code
MODES = {
    "backups": "SAUVEGARDES",
    "offsite": "EXTERNALISATION",
    "drill": "EXERCICES DE RESTAURATION",
    "repository": "DÉPÔTS",
    "offline": "COPIE HORS LIGNE",
    "redbutton": "BOUTON ROUGE",
}

# --------------------------------------------------------------------------- metrics (Prometheus text format)

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_labels(text: str) -> dict[str, str]:
    labels, position = {}, 0
    while position < len(text):
        match = _LABEL.match(text, position)
        if not match:
            raise ValueError(f"unreadable labels {{{text}}}")
        value = match.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        labels[match.group(1)] = value
        position = match.end()
    return labels


class Metrics:
    """Every sample of every ``*.prom`` file of the textfile folder."""

    def __init__(self, folder: Path) -> None:
        self.samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for path in sorted(folder.glob("*.prom")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip() or line.startswith("#"):
                    continue
                match = _SAMPLE.match(line)
                if match:
                    labels = parse_labels(match.group(2) or "")
                    self.samples.setdefault(match.group(1), []).append((labels, float(match.group(3))))

    def get(self, name: str, dataset: str | None = None) -> float | None:
        for labels, value in self.samples.get(name, []):
            if dataset is None or labels.get("dataset") == dataset:
                return value
        return None


# --------------------------------------------------------------------------- findings and output


@dataclass
class Perf:
    label: str
    value: float
    unit: str = ""
    warning: float | None = None
    critical: float | None = None
    minimum: float | None = None
    maximum: float | None = None

    def __str__(self) -> str:
        label = self.label.replace("'", "''")
        fields = [self.warning, self.critical, self.minimum, self.maximum]
        tail = ";".join("" if v is None else _number(v) for v in fields).rstrip(";")
        return f"'{label}'={_number(self.value)}{self.unit}" + (f";{tail}" if tail else "")


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


@dataclass
class Finding:
    dataset: str
    state: int
    problems: list[str] = field(default_factory=list)
    perfdata: list[Perf] = field(default_factory=list)

    def worse(self, state: int, problem: str) -> None:
        if SEVERITY[state] > SEVERITY[self.state]:
            self.state = state
        self.problems.append(problem)


def _hours(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} j"
    return f"{seconds / 3600:.1f} h"


# a threshold unit → the unit of what it is compared with: durations in seconds, a share in percent as is
TO_MEASURED_UNIT = {"hours": 3600, "days": 86400, "percent": 1}


def _limits(limits: dict[str, Any], name: str, unit: str) -> tuple[float, float]:
    """The ``<name>_warning_<unit>`` and ``<name>_critical_<unit>`` thresholds (a duration in seconds)."""
    warning, critical = (
        float(limits[f"{name}_{level}_{unit}"]) * TO_MEASURED_UNIT[unit] for level in ("warning", "critical")
    )
    return warning, critical


def _age_state(age: float, warning: float, critical: float) -> int:
    return CRITICAL if age > critical else WARNING if age > warning else OK


# --------------------------------------------------------------------------- modes


def check_backups(name: str, dataset: dict[str, Any], metrics: Metrics, now: float) -> Finding:
    limits = dataset["thresholds"]
    rpo = float(dataset["rpo_hours"]) * 3600
    grace = float(limits["backup_grace_minutes"]) * 60
    warning = rpo * float(limits["backup_age_warning_ratio"]) + grace
    critical = rpo * float(limits["backup_age_critical_ratio"]) + grace
    finding = Finding(name, OK)
    last = metrics.get("rempart_backup_last_success_timestamp_seconds", name)
    if last is None or last <= 0:
        finding.worse(CRITICAL, "aucune sauvegarde réussie enregistrée : lancer le job (systemctl start "
                                f"rempart-backup@{name}) et lire son journal")  # fmt: skip
    else:
        age = max(0.0, now - last)
        state = _age_state(age, warning, critical)
        if state != OK:
            finding.worse(
                state, f"dernière sauvegarde réussie il y a {_hours(age)} (RPO {dataset['rpo_hours']} h)"
            )
        finding.perfdata.append(Perf(f"âge sauvegarde {name}", round(age), "s", warning, critical, 0))
    if metrics.get("rempart_backup_last_run_success", name) == 0:
        failures = metrics.get("rempart_backup_consecutive_failures", name) or 1
        finding.worse(CRITICAL, f"dernier job en échec ({failures:.0f} échec(s) consécutif(s))")
    if metrics.get("rempart_prune_hold", name) == 1:
        since = metrics.get("rempart_prune_hold_since_timestamp_seconds", name) or now
        finding.worse(CRITICAL, f"rétention suspendue (hold) depuis {_hours(now - since)} : vérifier puis "
                                f"rempart-backup-admin clear-hold {name}")  # fmt: skip
    if metrics.get("rempart_backup_anomaly", name) == 1:
        finding.worse(CRITICAL, "anomalie sur la dernière sauvegarde (possible chiffrement par rançongiciel)")
    failures = metrics.get("rempart_backup_consecutive_failures", name)
    if failures is not None:
        finding.perfdata.append(Perf(f"échecs {name}", failures, "", None, 1, 0))
    return finding


def check_offsite(name: str, dataset: dict[str, Any], metrics: Metrics, now: float) -> Finding:
    warning, critical = _limits(dataset["thresholds"], "offsite_lag", "hours")
    finding = Finding(name, OK)
    lag = metrics.get("rempart_offsite_lag_seconds", name)
    if lag is None:
        finding.worse(
            UNKNOWN, "aucune métrique de copie externalisée (rempart-offsite-copy n'a jamais tourné ?)"
        )
        return finding
    state = _age_state(lag, warning, critical)
    if state != OK:
        finding.worse(state, f"copie externalisée en retard de {_hours(lag)} sur la dernière sauvegarde")
    if metrics.get("rempart_offsite_last_run_success", name) == 0:
        finding.worse(WARNING, "dernière copie externalisée en échec (journal de rempart-offsite-copy)")
    finding.perfdata.append(Perf(f"retard externalisation {name}", round(lag), "s", warning, critical, 0))
    return finding


def _watch_samples(metrics: Metrics, bucket: str, name: str) -> list[tuple[dict[str, str], float]]:
    samples = metrics.samples.get(f"rempart_offsite_watch_{name}", [])
    return [(labels, value) for labels, value in samples if labels.get("bucket") == bucket]


def check_offsite_buckets(metrics: Metrics, limits: dict[str, Any], now: float) -> list[Finding]:
    """One finding per bucket that ``rempart offsite-watch`` reports on (none when it does not run here)."""
    warning, critical = _limits(limits, "offsite_lag", "hours")
    findings = []
    for labels, last in metrics.samples.get("rempart_offsite_watch_last_run_timestamp_seconds", []):
        bucket = labels.get("bucket", "?")
        of = functools.partial(_watch_samples, metrics, bucket)
        finding = Finding(f"compartiment {bucket}", OK)
        age = max(0.0, now - last)
        state = _age_state(age, warning, critical)
        if state != OK:
            finding.worse(state, f"contrôle du compartiment (rempart offsite-watch) vieux de {_hours(age)}")
        hidden = sum(v for _, v in of("hidden_objects"))
        if hidden > 0:
            finding.worse(CRITICAL, f"{hidden:.0f} objet(s) masqué(s) par un marqueur de suppression : attaque "
                                    "possible, restaurer avec rempart offsite-recover (docs/offsite.md)")  # fmt: skip
        explained = hidden > 0
        for repository, refresh in sorted(
            ((k.get("repository", "?"), v) for k, v in of("refresh_age_seconds"))
        ):
            stale = _age_state(refresh, warning, critical)
            if refresh < 0:
                finding.worse(WARNING, f"rétention de {repository} jamais rafraîchie")
            elif stale != OK:
                finding.worse(stale, f"rétention de {repository} rafraîchie il y a {_hours(refresh)}")
            else:
                continue
            explained = True
        raised = sum(v for _, v in of("findings"))
        if raised > 0 and not explained:
            finding.worse(WARNING, f"{raised:.0f} constat(s) de rempart offsite-watch (verrou plus court que la "
                                   "rétention, copie en retard) : lire sa sortie")  # fmt: skip
        for _, horizon in of("min_lock_horizon_seconds"):
            finding.perfdata.append(Perf(f"horizon verrou {bucket}", round(horizon), "s", None, None))
        finding.perfdata.append(Perf(f"objets masqués {bucket}", hidden, "", None, 1, 0))
        findings.append(finding)
    return findings


def check_drill(name: str, dataset: dict[str, Any], metrics: Metrics, now: float) -> Finding:
    warning, critical = _limits(dataset["thresholds"], "drill_age", "days")
    finding = Finding(name, OK)
    last = metrics.get("rempart_drill_last_run_timestamp_seconds")
    if last is None or last <= 0:
        finding.worse(WARNING, "aucun exercice de restauration enregistré")
        return finding
    age = max(0.0, now - last)
    state = _age_state(age, warning, critical)
    if state != OK:
        finding.worse(state, f"dernier exercice de restauration il y a {_hours(age)}")
    result = metrics.get("rempart_drill_dataset_success", name)
    if result == 0:
        finding.worse(
            CRITICAL, "dernier exercice de restauration en échec (rapport dans les résultats d'exercice)"
        )
    elif result is None:
        finding.worse(WARNING, "absent du dernier exercice de restauration")
    finding.perfdata.append(Perf(f"âge exercice {name}", round(age), "s", warning, critical, 0))
    return finding


def check_repository(name: str, dataset: dict[str, Any], metrics: Metrics, now: float) -> Finding:
    limits = dataset["thresholds"]
    finding = Finding(name, OK)
    quota = metrics.get("rempart_repository_quota_bytes", name) or dataset.get("quota_bytes")
    used = metrics.get("rempart_repository_used_bytes", name)
    if quota and used is None:
        finding.worse(UNKNOWN, "taille du dépôt inconnue (métrique rempart_repository_used_bytes absente)")
    elif quota:
        percent = 100.0 * used / quota
        warning, critical = _limits(limits, "quota", "percent")
        state = _age_state(percent, warning, critical)
        if state != OK:
            finding.worse(state, f"dépôt à {percent:.0f} % de son quota ({used / 1024**3:.2f} / "
                                 f"{quota / 1024**3:.2f} Gio) : augmenter backup.expected_size_gib ou purger")  # fmt: skip
        if metrics.get("rempart_repository_quota_exceeded", name) == 1:
            finding.worse(CRITICAL, "dernier job refusé ou coupé au quota du dépôt : relever "
                                    "backup.expected_size_gib ou purger")  # fmt: skip
        finding.perfdata.append(Perf(f"quota {name}", round(percent, 2), "%", warning, critical, 0, 100))
        finding.perfdata.append(Perf(f"utilisé {name}", used, "B", None, None, 0, quota))
    warning, critical = _limits(limits, "check_age", "days")
    last = metrics.get("rempart_check_last_run_timestamp_seconds", name)
    if last is None or last <= 0:
        finding.worse(WARNING, "aucun contrôle d'intégrité (restic check) enregistré")
    else:
        age = max(0.0, now - last)
        state = _age_state(age, warning, critical)
        if state != OK:
            finding.worse(state, f"dernier contrôle d'intégrité il y a {_hours(age)}")
        if metrics.get("rempart_check_success", name) == 0:
            finding.worse(
                CRITICAL, f"dernier contrôle d'intégrité en échec : rempart-backup-admin restic {name} check"
            )
        finding.perfdata.append(Perf(f"âge contrôle {name}", round(age), "s", warning, critical, 0))
    return finding


def check_offline(name: str, dataset: dict[str, Any], metrics: Metrics, now: float) -> Finding:
    finding = Finding(name, OK)
    if not dataset.get("offline_copy"):
        return finding  # no offline leg declared (establishment.offline_copy)
    stale = metrics.get("rempart_offline_copy_stale", name)
    if stale is None:
        finding.worse(
            UNKNOWN, "aucune métrique de copie hors ligne (rempart-offline-status n'a jamais tourné ?)"
        )
        return finding
    last = metrics.get("rempart_offline_copy_last_timestamp_seconds", name) or 0
    if stale == 1:
        age = f"il y a {_hours(now - last)}" if last > 0 else "jamais faite"
        finding.worse(WARNING, f"dernière copie hors ligne {age}, plus ancienne que la rotation : brancher le "
                               "prochain support")  # fmt: skip
    if any(value == 1 for _, value in metrics.samples.get("rempart_offline_medium_attached_too_long", [])):
        finding.worse(WARNING, "un support hors ligne est resté branché au-delà d'une copie : le débrancher")
    if (metrics.get("rempart_offline_unknown_media_attached") or 0) > 0:
        finding.worse(CRITICAL, "support inconnu branché sur le serveur de sauvegarde")
    if last > 0:
        finding.perfdata.append(Perf(f"âge copie hors ligne {name}", round(now - last), "s", None, None, 0))
    return finding


CHECKS = {
    "backups": check_backups,
    "offsite": check_offsite,
    "drill": check_drill,
    "repository": check_repository,
    "offline": check_offline,
}


def isolation(config: dict[str, Any]) -> dict[str, Any] | None:
    path = Path(config.get("red_button_flag") or "/nonexistent")
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError):
        return {}


def evaluate(config: dict[str, Any], mode: str, datasets: list[str], now: float) -> list[Finding]:
    """One finding per dataset (one for the whole server in redbutton mode)."""
    isolated = isolation(config)
    if mode == "redbutton":
        finding = Finding("serveur", OK)
        if isolated is not None:
            finding.worse(CRITICAL, f"serveur isolé (bouton rouge) depuis {isolated.get('since', '?')} par "
                                    f"{isolated.get('by', '?')} : {isolated.get('reason', '?')} ; sauvegardes "
                                    "suspendues jusqu'à la levée (red_button_state=release)")  # fmt: skip
        finding.perfdata.append(Perf("isolé", 1 if isolated is not None else 0, "", None, 1, 0, 1))
        return [finding]
    metrics = Metrics(Path(config["metrics_dir"]))
    findings = [CHECKS[mode](name, config["datasets"][name], metrics, now) for name in datasets]
    if mode == "offsite" and datasets:
        strictest = min((config["datasets"][n]["thresholds"] for n in datasets),
                        key=lambda t: float(t["offsite_lag_warning_hours"]))  # fmt: skip
        findings += check_offsite_buckets(metrics, strictest, now)
    return findings


def status_line(config: dict[str, Any], mode: str, findings: list[Finding]) -> tuple[int, str]:
    worst = max((f.state for f in findings), key=SEVERITY.__getitem__, default=UNKNOWN)
    problems = [f for f in findings if f.state != OK]
    parts = [
        f"{f.dataset} : {', '.join(f.problems)}" for f in sorted(problems, key=lambda f: -SEVERITY[f.state])
    ]
    fine = [f.dataset for f in findings if f.state == OK]
    if fine:
        parts.append(f"OK : {', '.join(fine)}")
    if mode != "redbutton" and isolation(config) is not None:
        parts.append("serveur isolé par le bouton rouge (sauvegardes suspendues)")
    if mode == "offsite" and findings and not any(f.dataset.startswith("compartiment ") for f in findings):
        parts.append("compartiment non surveillé ici (rempart offsite-watch n'écrit pas dans ce dossier)")
    text = " ; ".join(parts) or "aucun jeu de données"
    perfdata = " ".join(str(p) for f in findings for p in f.perfdata)
    line = f"REMPART {MODES[mode]} {STATE_NAMES[worst]} - {config.get('establishment', '')} : {text}"
    return worst, line + (f" | {perfdata}" if perfdata else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check_rempart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", "-m", required=True, choices=sorted(MODES))
    parser.add_argument("--dataset", "-d", action="append", default=[], help="only this dataset (repeatable)")
    parser.add_argument("--config", "-c", type=Path, default=CONFIG)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return UNKNOWN if exit_.code else OK
    try:
        config = json.loads(args.config.read_text(encoding="utf-8"))
        unknown = sorted(set(args.dataset) - set(config["datasets"]))
        if unknown:
            print(f"REMPART UNKNOWN - jeu(x) de données inconnu(s) : {', '.join(unknown)} ; déclarés : "
                  f"{', '.join(sorted(config['datasets']))}")  # fmt: skip
            return UNKNOWN
        findings = evaluate(config, args.mode, args.dataset or sorted(config["datasets"]), time.time())
        state, line = status_line(config, args.mode, findings)
    except Exception as error:  # a plugin never dies with a traceback: UNKNOWN with the reason
        print(f"REMPART UNKNOWN - {type(error).__name__}: {error}")
        return UNKNOWN
    print(line)
    return state


if __name__ == "__main__":
    sys.exit(main())
