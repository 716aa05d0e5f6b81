"""The degraded-mode binder as rendered by roles/degraded_export (DEG-06, DEG-07), on the controller:
content, self-containment, and a real headless Chromium from file:// (search, cut-off, staleness)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from degraded_binder import render
from degraded_chromium import CHROMIUM, assert_binder_works, unique_patient

chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs the Debian chromium package")


@pytest.fixture(scope="module")
def binder(tmp_path_factory) -> Path:
    generation, _ = render(tmp_path_factory.mktemp("binder"), patients=300)
    return generation


def test_binder_has_every_section_and_the_cutoff_everywhere(binder: Path):
    text = (binder / "index.html").read_text(encoding="utf-8")
    meta = json.loads((binder / "binder.json").read_text())
    assert meta["patients_count"] == 300
    for title in ("Patients présents par service et chambre", "Index des numéros (IPP → nom)", "ALLERGIES",
                  "Prescriptions actives", "Plan de soins", "Résultats récents", "Plannings des services",
                  "Procédures dégradées", "Feuilles de rétrosaisie"):  # fmt: skip
        assert title in text, title
    # the cut-off time is in the fixed header (repeated on every printed page) and in every section/card
    assert text.count(f"État au {meta['cutoff_local']}") >= 300
    assert "@media print" in text and "position: fixed" in text
    assert 'lang="fr"' in text


def test_binder_is_self_contained(binder: Path):
    text = (binder / "index.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "default-src 'none'" in text
    manifest = (binder / "MANIFEST.sha256").read_text().splitlines()
    assert [line.split()[1] for line in manifest] == ["index.html", "binder.json"]


def test_identity_index_maps_numbers_to_names(binder: Path):
    text = (binder / "index.html").read_text(encoding="utf-8")
    ipp, nom, prenom, *_ = unique_patient(binder / "index.html")
    assert re.search(
        rf'<td><a href="#p-{ipp}">{ipp}</a></td><td>{re.escape(nom)}</td><td>{re.escape(prenom)}</td>', text
    )


@chromium
def test_real_chromium_finds_patients_offline_and_shows_staleness(binder: Path, tmp_path: Path):
    copy = tmp_path / "copie"
    shutil.copytree(binder, copy)
    meta = json.loads((copy / "binder.json").read_text())
    result = assert_binder_works(copy / "index.html", meta, tmp_path)
    print(
        f"chromium: search answered in {result.search_seconds * 1000:.0f} ms in the page ({result.search_roundtrip_seconds * 1000:.0f} ms seen by Playwright); screenshot {result.screenshot}"
    )
