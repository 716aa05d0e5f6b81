"""Render the degraded-mode binder on the controller, without a database: the lab's fictitious records
(rempart_lab/dpi_fictif.py) are turned into the six views the default SQL queries return,
then rendered by the export program itself (``--views``). Used by the binder tests and the benchmark."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from rempart_lab import dpi_fictif

ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "roles" / "degraded_export" / "files"
EXPORT = FILES / "rempart_degraded_export.py"
RUNNER = (
    ROOT / "roles" / "program_library" / "files" / "rempart_run.py"
)  # as the unit runs it: rempart_host importable


def _module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def views(patients: int, seed: int, now: dt.datetime) -> dict[str, list[dict]]:
    """What the role's default queries return, computed in Python from the generator's rows."""
    tables = dpi_fictif.generate(seed, patients, now)
    rows = {
        name: [dict(zip(dpi_fictif.COLUMNS[name], row, strict=True)) for row in data]
        for name, data in tables.items()
    }
    units = {u["code"]: u for u in rows["unite"]}
    people = {p["ipp"]: p for p in rows["patient"]}
    present = {s["ipp"]: s for s in rows["sejour"] if s["date_sortie"] is None}
    by_ipp: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for table in ("allergie", "prescription", "soin", "resultat"):
        for row in rows[table]:
            by_ipp[row["ipp"]][table].append(row)
    census = []
    for ipp, stay in present.items():
        unit, person = units[stay["unite"]], people[ipp]
        census.append({"unite_code": unit["code"], "unite": unit["libelle"], "batiment": unit["batiment"],
                       "etage": unit["etage"], "telephone": unit["telephone"], "chambre": stay["chambre"],
                       "lit": stay["lit"], "ipp": ipp, "nom": person["nom"], "prenom": person["prenom"],
                       "sexe": person["sexe"], "date_naissance": person["date_naissance"],
                       "date_entree": stay["date_entree"], "medecin": stay["medecin"], "motif": stay["motif"]})  # fmt: skip
    cutoff = now.isoformat()
    since = (now - dt.timedelta(days=7)).isoformat()
    return {
        "census": census,
        "allergies": [r for ipp in present for r in by_ipp[ipp]["allergie"]],
        "prescriptions": [
            r
            for ipp in present
            for r in by_ipp[ipp]["prescription"]
            if r["debut"] <= cutoff and (r["fin"] is None or r["fin"] > cutoff)
        ],
        "care_plan": [r for ipp in present for r in by_ipp[ipp]["soin"]],
        "results": [r for ipp in present for r in by_ipp[ipp]["resultat"] if r["date_resultat"] >= since],
        "schedules": rows["planning"],
    }


def render(tmp: Path, patients: int = 200, seed: int = 7, now: dt.datetime | None = None,
           staleness_limit_hours: int = 14,
           edit: Callable[[dict[str, list[dict]]], None] | None = None) -> tuple[Path, float]:  # fmt: skip
    """Render a binder into tmp/outbox; returns (generation folder, seconds spent in the export program).
    ``edit`` may change the views first (e.g. give one patient a card several pages long)."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    data = tmp / "views.json"
    rows = views(patients, seed, now)
    if edit is not None:
        edit(rows)
    data.write_text(json.dumps({"cutoff": now.isoformat(), "views": rows}, default=str))
    config = tmp / "export.json"
    defaults = __import__("yaml").safe_load((ROOT / "roles/degraded_export/defaults/main.yml").read_text())
    config.write_text(json.dumps({
        "queries": {}, "outbox": str(tmp / "outbox"), "generations": 3,
        "staleness_limit_hours": staleness_limit_hours, "timezone": "Europe/Paris",
        "establishment": {"finess": "340999903", "name": "Centre hospitalier du Lab (fictif)"},
        "procedures": defaults["degraded_export_procedures"], "template_dir": str(FILES / "binder"),
    }))  # fmt: skip
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(RUNNER), str(EXPORT), "--config", str(config), "--views", str(data), "--no-sign"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    latest = (tmp / "outbox" / "LATEST").read_text().strip()
    return tmp / "outbox" / latest, elapsed
