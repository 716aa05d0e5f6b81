"""The documents render in a real headless Chromium (Debian's, driven by Playwright), offline, and request
nothing but their own file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rempart.reports.documents import write_documents

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium not installed (make setup installs it)"
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield instance
        instance.close()


@pytest.mark.parametrize(
    ("document", "heading", "tables"),
    [
        (
            "rapport-care.html",
            "Rapport de preuves CaRE — sauvegardes",
            ["exigences", "regle-32110", "rpo-rto"],
        ),
        ("plan-sauvegarde.html", "Plan de sauvegarde et de restauration", ["dossiers", "contacts"]),
    ],
)
def test_document_renders_offline(browser, inventory, results, now, tmp_path, document, heading, tables):
    write_documents(inventory, results.parent, now)
    page_file: Path = results / document
    context = browser.new_context(offline=True)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(page_file.as_uri())
    assert page.locator("h1").inner_text() == heading
    assert "FINESS 340999903" in page.locator("body").inner_text()
    for table in tables:
        assert page.locator(f"table#{table} tr").count() >= 2, table
    if document == "rapport-care.html":
        assert page.locator("svg.graphique").count() == 3
        assert page.locator("svg.graphique").first.bounding_box()["width"] > 300
    screenshot = tmp_path / f"{document}.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 50_000
    assert requested == [page_file.as_uri()]
    context.close()
