"""The evidence report is computed from the result files: change a result, the report changes."""

from __future__ import annotations

import json
from pathlib import Path

from rempart.reports.documents import write_documents


def generate(inventory: Path, results: Path, now) -> tuple[str, dict]:
    write_documents(inventory, results.parent, now)
    html = (results / "rapport-care.html").read_text()
    document = json.loads((results / "rapport-care.json").read_text())
    return html, document


def requirement(document: dict, identifier: str) -> dict:
    return next(r for r in document["requirements"] if r["id"] == identifier)


def dataset(document: dict, name: str) -> dict:
    return next(d for d in document["datasets"] if d["name"] == name)


def test_report_reflects_recorded_results(inventory, results, now):
    html, document = generate(inventory, results, now)
    dpi = dataset(document, "dpi-postgresql")
    assert dpi["rto_measured_hours"] == 0.15  # 540 s from the drill file
    assert dpi["rto_met"] is True
    assert dpi["backup_age_hours"] == 5.95  # last job finished 6 h - 3 min before the report
    assert dpi["restore_errors"] == 0
    assert requirement(document, "CARE-D2-03")["status"] == "conforme"
    assert requirement(document, "TK-RANSOM")["status"] == "conforme"
    assert requirement(document, "BP028-01")["status"] == "conforme"
    assert requirement(document, "BP028-01")["action"] == "—"  # a met requirement asks for nothing
    # an unmet one names what closes the gap (the degraded-mode binder has no offsite copy in the fixture)
    assert requirement(document, "BP100-OPS-01")["status"] == "non conforme"
    assert requirement(document, "BP100-OPS-01")["action"] == (
        "Compléter les copies de classeur-degrade (tableau 3-2-1-1-0)."
    )
    # the RTO is the sum of the steps: 540 s timed by the drill, then the lab's declared 1 h + 0.5 h
    assert dpi["rto_total_hours"] == 1.65
    assert [(s["source"], s["hours"]) for s in dpi["rto_steps"]] == [
        ("mesuré", 0.15),
        ("déclaré", 1),
        ("déclaré", 0.5),
    ]
    assert "1,65 / 4 h" in html and "réinstallation du serveur PostgreSQL à partir du socle" in html
    assert "fichiers perdus : <strong>0</strong>" in html
    assert "backup-01" in html and "90 %" in html


def test_changing_a_result_changes_the_report(inventory, results, now):
    drill = next((results / "drills").glob("*.json"))
    content = json.loads(drill.read_text())
    content["datasets"][0]["duration_s"] = 5 * 3600  # 5 h: above the 4 h RTO
    content["datasets"][1]["status"] = "failed"
    content["datasets"][1]["files_failed"] = 3
    drill.write_text(json.dumps(content))
    html, document = generate(inventory, results, now)
    assert dataset(document, "dpi-postgresql")["rto_met"] is False
    assert dataset(document, "partages")["restore_errors"] == 3
    assert dataset(document, "partages")["rule_32110_met"] is False
    assert requirement(document, "BP100-OPS-11")["status"] == "non conforme"
    assert "5 / 4 h" in html


def test_missing_results_are_flagged_not_invented(inventory, tmp_path, now):
    empty = tmp_path / "reports" / "340999903"
    html, document = generate(inventory, empty, now)
    assert requirement(document, "CARE-D2-03")["status"] == "non mesuré"
    assert requirement(document, "BP100-EXT-03")["status"] == "non mesuré"
    assert dataset(document, "partages")["last_backup"] is None
    assert "Exercice rançongiciel non joué" in html


def test_unreadable_result_is_listed(inventory, results, now):
    (results / "drills" / "broken.json").write_text("{not json")
    html, document = generate(inventory, results, now)
    assert any(u.startswith("broken.json") for u in document["unreadable_results"])
    assert "Résultats illisibles" in html


def test_plan_lists_every_dataset_in_restore_order(inventory, results, now):
    generate(inventory, results, now)
    plan = (results / "plan-sauvegarde.html").read_text()
    assert plan.index("dpi-postgresql") < plan.index("partages")
    assert "Séquestre des clés" in plan and "eu-west-3" in plan
    assert "15 sauvegardes\nquotidiennes" in plan or "15 sauvegardes quotidiennes" in plan


def test_backups_come_from_the_servers_ledger(inventory, results, now):
    (results / "backups" / "partages.json").unlink()
    ledger = results / "ledger" / "partages.jsonl"
    ledger.parent.mkdir()
    arrived = now.timestamp() - 2 * 3600
    lines = [
        {"event": "job-failed", "at": arrived - 7200, "rc": 255},
        {"event": "snapshot", "id": "cd8434549c9c", "job_started": arrived - 30, "arrived": arrived,
         "stats": {"added_bytes": 4096, "files": 160}, "anomaly": [], "trusted": True},
        {"event": "hold", "at": arrived + 1, "by": "anomaly-check", "reasons": ["mass-change"]},
    ]  # fmt: skip
    ledger.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    _, document = generate(inventory, results, now)
    partages = dataset(document, "partages")
    assert partages["backup_age_hours"] == 2.0
    assert partages["prune_hold"] is True
    assert partages["rpo_met"] is True and partages["anomaly"] is False
