"""The backup and restore plan a director signs: contacts from the establishment file, crisis governance and
reporting duties, recovery from zero with measured durations, degraded mode, document control; offline media
appear only when declared."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_evidence import generate

from rempart.model.crisis import Crisis

ESTABLISHMENT = "group_vars/all/establishment.yml"


def plan(inventory: Path, results: Path, now) -> str:
    generate(inventory, results, now)
    return " ".join((results / "plan-sauvegarde.html").read_text(encoding="utf-8").split())


def edit(inventory: Path, change) -> None:
    path = inventory / ESTABLISHMENT
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data["establishment"])
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_contacts_governance_and_document_control_come_from_the_file(inventory, results, now):
    text = plan(inventory, results, now)
    assert "Directrice de garde (fictive)" in text and "+33 6 00 00 01 01" in text
    assert "CERT Santé (signalement d&#39;incident)" in text and "ARS (point focal, veille sanitaire)" in text
    assert "à compléter" not in text.lower()
    for duty in ("cellule de crise", "CNIL dans les 72 heures", "Porter plainte", "Préserver les preuves",
                 "Reconstruire le serveur de sauvegarde", "Reconstruire le poste de contrôle"):  # fmt: skip
        assert duty in text, duty
    assert "Version</th><td>1.0" in text and "02/11/2027" in text  # approved 02/11/2026, reviewed yearly
    assert "Coffre de la direction" in text
    assert "docs/runbook-bouton-rouge.md" in text and "docs/runbook-reprise-hors-site.md" in text
    assert "postes de secours (station-01)" in text


def test_measured_drill_durations_appear_in_the_recovery_sequence(inventory, results, now):
    text = plan(inventory, results, now)
    # dpi-postgresql: 540 s in the drill file, then the declared 60 + 30 min
    assert "de chaque fichier, exercice du" in text and ": 9 min (mesuré)" in text
    assert "redémarrage du DPI et contrôle par les référents : 30 min (déclaré)" in text
    assert "<td>99 min</td>" in text
    # classeur-degrade was not in the drill: its declared step alone is no total
    assert "aucun exercice de restauration : non mesuré" in text and "<td>incomplet</td>" in text


def test_offline_media_appear_only_when_declared(inventory, results, now):
    text = plan(inventory, results, now)
    assert "supports amovibles chiffrés (LUKS2) en rotation" in text and "lab-disque-a" in text
    edit(inventory, lambda e: e.pop("offline_copy"))
    text = plan(inventory, results, now)
    assert "aucun support déclaré" in text
    assert "LUKS2" not in text and "lab-disque" not in text and "runbook-rotation" not in text


def test_without_crisis_section_the_plan_says_it_cannot_be_signed(inventory, results, now):
    edit(inventory, lambda e: e.pop("crisis"))
    text = plan(inventory, results, now)
    assert "ce plan ne peut pas être signé" in text
    assert text.count("non déclaré") >= 6


def test_placeholders_are_flagged(inventory, results, now):
    def placeholder(establishment):
        establishment["crisis"]["contacts"][1] |= {"name": "À compléter", "phone": "+33 0 00 00 00 00"}

    edit(inventory, placeholder)
    assert "1 contact(s) à compléter dans l'inventaire avant signature" in plan(inventory, results, now)


def test_a_missing_required_role_is_refused_naming_it(inventory):
    crisis = yaml.safe_load((inventory / ESTABLISHMENT).read_text(encoding="utf-8"))["establishment"][
        "crisis"
    ]
    crisis["contacts"] = [c for c in crisis["contacts"] if c["role"] not in ("ars", "rssi")]
    with pytest.raises(ValueError, match=r"no contact for role\(s\) rssi, ars"):
        Crisis.model_validate(crisis)
