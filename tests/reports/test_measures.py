"""Every status is a function of recorded, dated results: a complete set of results makes every measured
requirement "conforme"; changing one input changes the matching requirement's status; an empty results folder
makes none "conforme"."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from conftest import write
from test_evidence import dataset, generate, requirement
from test_offline_evidence import write_ledger

from rempart.catalogue import catalogue

MEASURED = sorted(r.id for r in catalogue().requirements if r.measure != "unmeasured")


def _jobs(now: datetime) -> list[dict]:
    return [
        {"started": (now - timedelta(hours=h)).isoformat(), "finished": (now - timedelta(hours=h - 0.05)).isoformat(),
         "duration_s": 180.0, "status": "success", "changed_ratio": 0.01}
        for h in (30, 22, 14, 6)
    ]  # fmt: skip


@pytest.fixture
def complete(results: Path, now: datetime) -> Path:
    """The conftest results plus everything else a measure reads, all recent and good."""
    jobs = _jobs(now)
    # the ransomware drill (now - 3 h .. now - 2 h 30) encrypted the rescue station's binder: flagged
    jobs.append({"started": (now - timedelta(hours=2, minutes=50)).isoformat(),
                 "finished": (now - timedelta(hours=2, minutes=45)).isoformat(), "duration_s": 300.0,
                 "status": "success", "changed_ratio": 1.0, "entropy_share": 1.0, "anomaly": True})  # fmt: skip
    write(results / "backups" / "classeur-degrade.json", {"dataset": "classeur-degrade", "jobs": jobs})
    drill = next((results / "drills").glob("*.json"))
    content = json.loads(drill.read_text())
    content["datasets"].append(
        {"dataset": "classeur-degrade", "status": "passed", "files_verified": 14, "duration_s": 30.0}
    )
    drill.write_text(json.dumps(content))
    write_ledger(results, now - timedelta(days=2))
    verify = results / "offsite" / "verify.json"
    write(verify, json.loads(verify.read_text()) | {"location": "eu-west-3"})
    write(results / "red-button" / "test.json",
          {"tested_at": (now - timedelta(days=1)).isoformat(), "isolated_client_refused": True, "jobs_resumed": True})  # fmt: skip
    write(results / "degraded" / "station-01.json",
          {"station": "station-01", "collected_at": now.isoformat(),
           "last_success": (now - timedelta(minutes=10)).isoformat(), "cutoff": (now - timedelta(hours=5)).isoformat()})  # fmt: skip
    for where in ("sur site : partages", "hors site : rempart-340999903-offsite"):
        write(results / "encryption" / f"{where.split(' : ')[1]}.json",
              {"where": where, "checked_at": now.isoformat(), "objects_sampled": 20, "repository_encrypted": True})  # fmt: skip
    return results


def statuses(inventory: Path, results: Path, now: datetime) -> dict[str, str]:
    _, document = generate(inventory, results, now)
    return {r["id"]: r["status"] for r in document["requirements"]}


def test_complete_results_make_every_measured_requirement_conforming(inventory, complete, now):
    html, document = generate(inventory, complete, now)
    assert {r["id"]: r["status"] for r in document["requirements"]} == dict.fromkeys(MEASURED, "conforme")
    assert document["verdict"] == "conforme"
    assert "Verdict d'ensemble : <strong>CONFORME</strong>" in html
    # every evidence cell names its measure's date, with the zone
    for r in document["requirements"]:
        assert "(UTC+01:00)" in r["evidence"], r


def _json(path: Path, change: Callable[[dict], None]) -> None:
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


def _drill(results: Path) -> Path:
    return next((results / "drills").glob("*.json"))


def _shift_drill(content: dict) -> None:
    for key in ("started", "finished"):
        content[key] = (datetime.fromisoformat(content[key]) - timedelta(days=100)).isoformat()


def _fail_partages(content: dict) -> None:
    content["datasets"][1] |= {"status": "failed", "files_failed": 2}


def _missed_anomaly(content: dict) -> None:
    content["jobs"][-1]["anomaly"] = False


def _station_cutoff(content: dict) -> None:
    content["cutoff"] = (datetime.fromisoformat(content["collected_at"]) - timedelta(hours=30)).isoformat()


def _station_collected(content: dict) -> None:
    content["collected_at"] = (
        datetime.fromisoformat(content["collected_at"]) - timedelta(days=5)
    ).isoformat()


MUTATIONS = {
    "no drill": (lambda r: shutil.rmtree(r / "drills"),
                 {"CARE-D2-03": "non mesuré", "CARE-D2-05": "non mesuré", "BP100-OPS-11": "non mesuré",
                  "BP100-OPS-12": "non mesuré"}),
    "failed drill": (lambda r: _json(_drill(r), _fail_partages),
                     {"CARE-D2-03": "non conforme", "BP100-OPS-11": "non conforme"}),
    "stale drill": (lambda r: _json(_drill(r), _shift_drill),
                    {"CARE-D2-03": "périmé", "CARE-D2-05": "périmé", "BP100-OPS-11": "périmé",
                     "BP100-OPS-12": "périmé"}),
    "OpenSCAP 20 %": (lambda r: _json(r / "hardening" / "backup-01.json", lambda c: c.update({"pass": 20, "fail": 80})),
                      {"BP028-01": "non conforme"}),
    "no OpenSCAP": (lambda r: shutil.rmtree(r / "hardening"), {"BP028-01": "non mesuré"}),
    "bucket outside the EEA": (lambda r: _json(r / "offsite" / "verify.json", lambda c: c.update({"location": "us-east-1"})),
                               {"HDS-02": "non conforme"}),
    "bucket location not read": (lambda r: _json(r / "offsite" / "verify.json", lambda c: c.pop("location")),
                                 {"HDS-02": "non mesuré"}),
    "missed anomaly": (lambda r: _json(r / "backups" / "classeur-degrade.json", _missed_anomaly),
                       {"BP100-OPS-10": "non conforme"}),
    "no ransomware drill": (lambda r: shutil.rmtree(r / "ransomware"),
                            {"BP100-OPS-10": "non mesuré", "TK-RANSOM": "non mesuré"}),
    "station binder too old": (lambda r: _json(r / "degraded" / "station-01.json", _station_cutoff),
                               {"CARE-D2-02": "non conforme"}),
    "station fetch stale": (lambda r: _json(r / "degraded" / "station-01.json", _station_collected),
                            {"CARE-D2-02": "périmé"}),
    "declared station never recorded": (
        lambda r: _json(r / "degraded" / "station-01.json", lambda c: c.update({"station": "autre-poste"})),
        {"CARE-D2-02": "non conforme"},
    ),
    "plaintext object offsite": (lambda r: _json(next((r / "encryption").glob("rempart*.json")),
                                                 lambda c: c.update({"plaintext_objects": ["data/ab/cd"]})),
                                 {"HDS-03": "non conforme"}),
    "offsite copy not sampled": (lambda r: next((r / "encryption").glob("rempart*.json")).unlink(),
                                 {"HDS-03": "non mesuré"}),
    "red button never tested": (lambda r: shutil.rmtree(r / "red-button"), {"BP100-OPS-13": "non mesuré"}),
    "offsite lock broken": (lambda r: _json(r / "offsite" / "verify.json", lambda c: c.update({"compliant": False})),
                            {"BP100-EXT-03": "non conforme", "BP100-OPS-01": "non conforme"}),
}  # fmt: skip


@pytest.mark.parametrize("name", MUTATIONS)
def test_each_input_moves_its_requirement(inventory, complete, now, name):
    mutate, expected = MUTATIONS[name]
    mutate(complete)
    found = statuses(inventory, complete, now)
    assert {k: found[k] for k in expected} == expected
    untouched = {k: v for k, v in found.items() if k not in expected}
    assert set(untouched.values()) == {"conforme"}, untouched  # nothing else moved


def test_the_drill_must_follow_the_dependencies(inventory, complete, now):
    path = inventory / "group_vars/all/establishment.yml"
    data = yaml.safe_load(path.read_text())
    data["establishment"]["datasets"][0]["depends_on"] = ["partages"]  # dpi needs the shares restored first
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    _, document = generate(inventory, complete, now)
    order = requirement(document, "BP100-OPS-12")
    assert order["status"] == "non conforme"
    assert "dpi-postgresql restauré avant sa dépendance partages" in order["evidence"]


def test_anomalous_snapshots_do_not_count_for_the_rpo(inventory, complete, now):
    _, document = generate(inventory, complete, now)
    binder = dataset(document, "classeur-degrade")
    assert binder["anomalous_snapshots"] == 1
    assert binder["backup_age_hours"] == 5.95  # the 6 h-old good one, not the 2 h 45 encrypted one


def test_an_empty_results_folder_has_no_conforming_requirement(inventory, tmp_path, now):
    empty = tmp_path / "reports" / "340999903"
    html, document = generate(inventory, empty, now)
    found = {r["id"]: r["status"] for r in document["requirements"]}
    assert sorted(found) == MEASURED
    assert "conforme" not in found.values()
    assert found["CARE-D2-01"] == found["HDS-02"] == found["HDS-03"] == found["BP100-OPS-12"] == "non mesuré"
    assert document["verdict"] == "incomplet"
    assert all(r["status"] == "non mesuré" for r in document["unmeasured"])
    assert "Verdict d'ensemble : <strong>INCOMPLET</strong>" in html


def test_a_result_older_than_the_catalogue_allows_is_stale(inventory, complete, now):
    later = now + timedelta(days=40)  # the OpenSCAP scan and the offsite check (31 days) are now too old
    found = statuses(inventory, complete, later)
    assert found["BP028-01"] == found["BP100-EXT-03"] == found["HDS-02"] == "périmé"


def test_a_first_backup_and_the_drills_own_restore_are_not_missed_detections(inventory, complete, now):
    """Shape of a demo run: a dataset backed up for the first time when the drill starts (everything new), the
    encrypted snapshot flagged, then the restored data backed up again (a mass change back, not flagged). Only
    the encrypted one is an attack to detect; when it goes unflagged the requirement fails, naming it."""
    at = now - timedelta(hours=2, minutes=58)
    first = {"started": (at - timedelta(minutes=1)).isoformat(), "finished": at.isoformat(), "duration_s": 60.0,
             "status": "success", "changed_ratio": 1.0, "first": True}  # fmt: skip
    write(complete / "backups" / "imagerie.json", {"dataset": "imagerie", "jobs": [first]})

    def restored_again(content: dict) -> None:
        done = now - timedelta(hours=2, minutes=35)
        content["jobs"].append({"started": (done - timedelta(minutes=2)).isoformat(), "finished": done.isoformat(),
                                "duration_s": 120.0, "status": "success", "changed_ratio": 1.0, "anomaly": False})  # fmt: skip

    _json(complete / "backups" / "classeur-degrade.json", restored_again)
    _, document = generate(inventory, complete, now)
    detection = requirement(document, "BP100-OPS-10")
    assert detection["status"] == "conforme", detection["evidence"]
    assert "1 sauvegarde(s) des données chiffrées" in detection["evidence"]
    _json(complete / "backups" / "classeur-degrade.json", lambda c: c["jobs"][-2].update({"anomaly": False}))
    _, document = generate(inventory, complete, now)
    detection = requirement(document, "BP100-OPS-10")
    assert (
        detection["status"] == "non conforme" and "NON signalée : classeur-degrade" in detection["evidence"]
    )
