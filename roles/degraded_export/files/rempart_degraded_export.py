#!/usr/bin/python3
"""Rempart degraded-mode export (role degraded_export): read the establishment's declared views of the
patient records in ONE read-only snapshot, render the French static HTML binder with Jinja2, write a
SHA-256 manifest signed with the establishment's Ed25519 key, publish it as a new generation of the
outbox, keep the last N generations, and write Prometheus textfile metrics.

Exit status is non-zero on any failure (the systemd unit then fails, the journal has the reason, and
rempart_degraded_export_success is 0). Runs with the library rempart_host (role program_library):
``python3 -I /usr/local/lib/rempart/python/rempart_run.py /usr/local/lib/rempart-degraded/rempart_degraded_export.py``.

    rempart_degraded_export.py --config /etc/rempart/degraded-export.json
    rempart_degraded_export.py --config CONF --views views.json --out DIR --no-sign   # render only
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rempart_host import program
from rempart_host.files import write_atomic
from rempart_host.journal import ERR, log
from rempart_host.metrics import read_prefixed, write_prefixed

HERE = Path(__file__).resolve().parent
BINDER_FILES = ("index.html", "binder.json")
MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sha256.sig"
FORMAT = 1
DATE_KEYS = {"date", "date_naissance", "date_entree", "date_sortie", "date_resultat", "debut", "fin"}


def fetch_views(config: dict[str, Any]) -> tuple[dt.datetime, dict[str, list[dict[str, Any]]]]:
    """Every view from one REPEATABLE READ, READ ONLY transaction; its now() is the cut-off time."""
    import psycopg2
    import psycopg2.extras

    connection = psycopg2.connect(config["dsn"])
    try:
        connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute("SELECT now() AS cutoff")
            cutoff = cursor.fetchone()["cutoff"]
            parameters = {"results_days": int(config.get("results_days", 7)), "cutoff": cutoff}
            views = {}
            for name, sql in config["queries"].items():
                cursor.execute(sql, parameters)
                views[name] = [dict(row) for row in cursor.fetchall()]
        connection.rollback()
    finally:
        connection.close()
    return cutoff, views


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def room_order(patient: dict[str, Any]) -> tuple:
    """Rooms in the order a ward walks them: numbers compared as numbers ("9" before "10"), then the bed."""
    parts = re.split(r"(\d+)", str(patient["chambre"]))
    room = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts)
    return room, str(patient["lit"])


def build_model(config: dict[str, Any], cutoff: dt.datetime, views: dict[str, list[dict[str, Any]]]) -> dict:
    """What the template needs: units with their beds, patients keyed by IPP with their sections."""
    zone = ZoneInfo(config.get("timezone", "Europe/Paris"))
    local_cutoff = cutoff.astimezone(zone)

    def local(value: Any, key: str = "date") -> str:
        """Dates and times as French staff read them, in the establishment's time zone."""
        if isinstance(value, str) and key in DATE_KEYS:  # views read from JSON (--views)
            try:
                value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
            except ValueError:
                return value
        if isinstance(value, dt.datetime):
            return value.astimezone(zone).strftime("%d/%m/%Y %H:%M")
        if isinstance(value, dt.date):
            return value.strftime("%d/%m/%Y")
        return "" if value is None else str(value)

    patients: dict[str, dict[str, Any]] = {}
    units: dict[str, dict[str, Any]] = {}
    for row in views.get("census", []):
        unit = units.setdefault(
            row["unite_code"],
            {"code": row["unite_code"], "libelle": row["unite"], "batiment": row.get("batiment", ""),
             "etage": row.get("etage", ""), "telephone": row.get("telephone", ""), "lits": [], "planning": []},
        )  # fmt: skip
        patient = {
            "ipp": str(row["ipp"]), "nom": row["nom"], "prenom": row["prenom"], "sexe": row.get("sexe", ""),
            "naissance": local(row.get("date_naissance")), "unite": unit["code"], "unite_libelle": unit["libelle"],
            "chambre": row.get("chambre", ""), "lit": row.get("lit", ""), "entree": local(row.get("date_entree")),
            "medecin": row.get("medecin", ""), "motif": row.get("motif", ""),
            "allergies": [], "prescriptions": [], "soins": [], "resultats": [], "rendez_vous": [],
        }  # fmt: skip
        patients[patient["ipp"]] = patient
        unit["lits"].append(patient)
    sections = (("allergies", "allergies"), ("prescriptions", "prescriptions"), ("care_plan", "soins"),
                ("results", "resultats"))  # fmt: skip
    for view, key in sections:
        for row in views.get(view, []):
            patient = patients.get(str(row.get("ipp")))
            if patient is not None:
                patient[key].append({k: local(v, k) for k, v in row.items()})
    for row in views.get("schedules", []):
        entry = {k: local(v, k) for k, v in row.items()}
        if row.get("ipp") and str(row["ipp"]) in patients:
            patients[str(row["ipp"])]["rendez_vous"].append(entry)
        if row.get("unite") in units:
            units[row["unite"]]["planning"].append(entry)
    for unit in units.values():
        unit["lits"].sort(key=room_order)
    index = sorted(patients.values(), key=lambda p: p["ipp"])
    return {
        "etablissement": config["establishment"],
        "generation": cutoff.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"),
        "cutoff_iso": cutoff.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "cutoff_local": local_cutoff.strftime("%d/%m/%Y à %H:%M"),
        "timezone": str(zone),
        "staleness_limit_hours": int(config["staleness_limit_hours"]),
        "units": sorted(units.values(), key=lambda u: u["code"]),
        "index": index,
        "procedures": config.get("procedures", []),
        "patients_count": len(index),
        "search_index": [
            [p["ipp"], p["nom"], p["prenom"], p["naissance"], p["unite_libelle"], p["chambre"], p["lit"]]
            for p in index
        ],
    }


def render(model: dict[str, Any], template_dir: Path) -> str:
    import jinja2
    import markupsafe

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    # JSON safe inside <script>: no "<", ">" or "&" at all, so nothing can end the element.
    def script_json(value: Any) -> Any:
        text = json.dumps(value, ensure_ascii=False)
        return markupsafe.Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))

    # A CSS string (the print header's `content:`): quotes and backslashes escaped, no "<" to end the <style>.
    def css_string(value: Any) -> Any:
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        text = text.replace("\n", "\\A ").replace("<", "\\3C ")
        return markupsafe.Markup(f'"{text}"')

    environment.filters["script_json"] = script_json
    environment.filters["css_string"] = css_string
    return environment.get_template("binder.html.j2").render(**model)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_binder(model: dict[str, Any], html: str, directory: Path, signing_key: Path | None) -> None:
    meta = {key: model[key] for key in ("generation", "cutoff_iso", "cutoff_local", "timezone",
                                         "staleness_limit_hours", "patients_count")}  # fmt: skip
    meta |= {"format": FORMAT, "finess": model["etablissement"]["finess"]}
    (directory / "index.html").write_text(html, encoding="utf-8")
    (directory / "binder.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    manifest = "".join(f"{sha256(directory / name)}  {name}\n" for name in BINDER_FILES)
    (directory / MANIFEST).write_text(manifest, encoding="utf-8")
    if signing_key is not None:
        signed = subprocess.run(
            ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(signing_key),
             "-in", str(directory / MANIFEST), "-out", str(directory / SIGNATURE)],
            check=False, capture_output=True, text=True,
        )  # fmt: skip
        if signed.returncode != 0:
            raise RuntimeError(f"signing the manifest failed: {signed.stderr.strip()[-300:]}")
    for path in directory.iterdir():
        path.chmod(0o644)
    directory.chmod(0o755)


def publish(outbox: Path, staging: Path, generation: str, keep: int) -> Path:
    """Move the finished generation in place, then point LATEST at it (atomic rename), then prune."""
    final = outbox / generation
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    write_atomic(outbox / "LATEST", generation + "\n", mode=0o644)
    generations = sorted(p for p in outbox.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in generations[:-keep]:
        shutil.rmtree(old)
    return final


PREFIX = "rempart_degraded_export_"


def run(args: argparse.Namespace) -> int:
    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    metrics_file = Path(config["metrics_file"]) if config.get("metrics_file") and not args.views else None
    started = time.monotonic()
    metrics = read_prefixed(metrics_file, PREFIX) if metrics_file else {}
    try:
        if args.views:
            data = json.loads(Path(args.views).read_text(encoding="utf-8"))
            cutoff = dt.datetime.fromisoformat(data["cutoff"])
            views = data["views"]
        else:
            cutoff, views = fetch_views(config)
        model = build_model(config, cutoff, views)
        if not model["patients_count"] and not config.get("allow_empty", False):
            raise RuntimeError("the census view returned no patient: refusing to publish an empty binder")
        html = render(model, Path(config.get("template_dir", HERE / "binder")))
        key = None if args.no_sign else Path(config["signing_key"])
        outbox = Path(args.out or config["outbox"])
        outbox.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=outbox))
        try:
            write_binder(model, html, staging, key)
            final = publish(outbox, staging, model["generation"], int(config.get("generations", 6)))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except Exception as error:  # the unit fails, the journal says why, the metric says 0
        log(f"rempart-degraded-export: FAILED: {error}", ERR)
        metrics |= {"success": 0, "last_failure_timestamp_seconds": int(time.time())}
        if metrics_file is not None:
            write_prefixed(metrics_file, PREFIX, metrics, "degraded-mode export")
        return 1
    elapsed = time.monotonic() - started
    size = (final / "index.html").stat().st_size
    metrics |= {
        "success": 1,
        "last_success_timestamp_seconds": int(time.time()),
        "cutoff_timestamp_seconds": int(cutoff.timestamp()),
        "duration_seconds": round(elapsed, 3),
        "patients": model["patients_count"],
        "binder_bytes": size,
    }
    if metrics_file is not None:
        write_prefixed(metrics_file, PREFIX, metrics, "degraded-mode export")
    log(
        f"rempart-degraded-export: generation {model['generation']} published in {final} "
        f"({model['patients_count']} patients, {size} bytes, {elapsed:.2f} s)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rempart degraded-mode binder export")
    parser.add_argument("--config", required=True)
    parser.add_argument("--views", help="render from a JSON file {cutoff, views} instead of the database")
    parser.add_argument("--out", help="outbox folder (default: the configuration's)")
    parser.add_argument("--no-sign", action="store_true", help="do not sign the manifest (tests only)")
    args = parser.parse_args(argv)
    settings = json.loads(Path(args.config).read_text(encoding="utf-8"))
    metrics_dir = (
        Path(settings["metrics_file"]).parent if settings.get("metrics_file") and not args.views else None
    )
    return program.run(lambda: run(args), program="degraded-export", metrics_dir=metrics_dir)


if __name__ == "__main__":
    raise SystemExit(main())
