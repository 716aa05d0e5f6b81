"""The report and the plan printed to PDF by Debian's headless Chromium (rempart report --pdf), read back with
pdftotext (reading order): the verdict comes first, every time carries its zone, no English status word reaches
the director (the raw attack log is quoted only in annex A); and, with the harness the rescue binder's print tests
use (tests/chromium_pdf.py: text with positions, pdfminer.six), no text of any page is printed over other text."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from chromium_pdf import overprinted, read_pdf
from test_measures import complete  # noqa: F401 (fixture)

from rempart.reports.documents import write_documents
from rempart.reports.french import ENGLISH_STATUS_WORDS

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("pdftotext")),
    reason="Debian chromium and poppler-utils not installed (.ci/apt-packages.txt, make host)",
)
ENGLISH = re.compile(rf"\b({'|'.join(ENGLISH_STATUS_WORDS)}|True|False|None)\b", re.IGNORECASE)
# a clock time not inside a UTC offset, and not followed by its zone
BARE_TIME = re.compile(r"(?<![+-])\b\d{2}:\d{2}\b(?! \(UTC[+-]\d{2}:\d{2}\))")
TIME_WITH_ZONE = re.compile(r"\b\d{2}/\d{2}/\d{4} à \d{2}:\d{2} \(UTC[+-]\d{2}:\d{2}\)")


def pdf_text(path: Path) -> str:
    """The PDF's text in reading order (pdftotext), after checking with the shared harness that no line of any
    page is printed over another."""
    pages = read_pdf(path)
    assert pages
    for page in pages:
        assert overprinted(page) == [], (path.name, page.number, overprinted(page)[:3])
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def real_attack_log(complete: Path) -> Path:  # noqa: F811
    """The lab's recorded ransomware drill (81 raw English attempts in the issue's report) in place of the
    hand-written one."""
    shutil.rmtree(complete / "ransomware")
    (complete / "ransomware").mkdir()
    recorded = sorted((PROJECT / "tests/fixtures/proof/ransomware").glob("*.json"))[-1]
    shutil.copy(recorded, complete / "ransomware" / recorded.name)
    return complete


def test_report_pdf_reads_as_a_french_signed_document(inventory, real_attack_log, now):
    written = write_documents(inventory, real_attack_log.parent, now, pdf=True)
    report = real_attack_log / "rapport-care.pdf"
    assert report in written and (real_attack_log / "plan-sauvegarde.pdf") in written
    assert report.read_bytes().startswith(b"%PDF")
    text = pdf_text(report)
    body, annex = text.split("Annexe A — Journal brut", 1)
    # the verdict comes before any requirement
    assert body.index("Verdict d'ensemble") < body.index("Exigences : statut, preuve et action")
    assert re.search(r"Verdict d'ensemble : (CONFORME|NON CONFORME|INCOMPLET)", body)
    # every time shown carries its zone (a line may break inside, so join lines first)
    flat = " ".join(body.split())
    assert TIME_WITH_ZONE.search(flat)
    assert [flat[m.start() - 20 : m.end() + 15] for m in BARE_TIME.finditer(flat)] == []
    assert ENGLISH.findall(body) == []
    # signature block, and the attack log classified in French in the annex
    assert "Approuvé par" in body and "Direction de l'établissement" in body
    annex = " ".join(annex.split())  # cells wrap
    assert "refusée" in annex and "échec pour une autre raison" in annex
    assert "réussie (rattrapée)" in annex


def test_plan_pdf_is_printed(inventory, complete, now):  # noqa: F811
    write_documents(inventory, complete.parent, now, pdf=True)
    text = pdf_text(complete / "plan-sauvegarde.pdf")
    assert "Plan de sauvegarde et de restauration" in text
    assert ENGLISH.findall(text) == []
