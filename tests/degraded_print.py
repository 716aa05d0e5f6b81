"""Print the degraded-mode binder as a care team would, from its own print panel (one unit, a room range or
one patient), with the host's headless Chromium, and check the PDF from its text positions
(tests/chromium_pdf.py):

- every page starts with the cut-off line, then the staleness warning when the copy is stale;
- nothing is printed over anything (no header over the name/IPP line or a table row: the header band ends
  above every other line, and no two characters overlap);
- a patient card starts on a new page, and the top of each of its pages carries its identity (name, IPP,
  date of birth, unit, room) and its allergies ("non renseigné" when there are none);
- the pages are exactly the chosen unit's list, then the chosen patients' cards, in order.

Shared by tests/test_degraded_binder.py (a binder rendered on the controller) and molecule/degraded (the
station's copy)."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from chromium_pdf import PdfPage, TextBox, chromium, overprinted, print_pdf, read_pdf

# What the print panel chose, read from the page: the printed sheets' titles and cards' identity blocks.
EXPECTED = """() => {
  const flat = (text) => text.replace(/\\s+/g, " ").trim();
  const printed = (e) => !e.classList.contains("non-imprime");
  const title = (sheet) => {
    const copy = sheet.querySelector(".titre-feuille").cloneNode(true);
    copy.querySelectorAll(".ecran").forEach((e) => e.remove());
    return flat(copy.textContent);
  };
  return {
    order: [...document.querySelectorAll(".feuille, .fiche")].filter(printed).map((block) =>
      block.classList.contains("fiche") ? block.dataset.ipp : "liste:" + title(block)),
    sheets: [...document.querySelectorAll(".feuille")].filter(printed).map(title),
    cards: [...document.querySelectorAll(".fiche")].filter(printed).map((card) => ({
      ipp: card.dataset.ipp,
      identity: flat(card.querySelector(".identite").innerText),
      allergies: flat(card.querySelector(".ligne-allergies").innerText),
    })),
    banner: document.getElementById("perime").hidden ? "" : flat(document.getElementById("perime").innerText),
  };
}"""
HEADER_CONTENT = """() => getComputedStyle(document.querySelector(".entete-page"), "::before").content"""
STUB_PRINT = """() => { window.printed = 0; window.print = () => { window.printed += 1; }; }"""


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def consume(lines: list[TextBox], expected: str) -> int | None:
    """How many of the first lines, joined, read exactly ``expected`` (a block wrapped over lines)."""
    expected = flat(expected)
    joined = ""
    for count, line in enumerate(lines, start=1):
        joined = flat(f"{joined} {line.text}")
        if joined == expected:
            return count
        if len(joined) >= len(expected) or not expected.startswith(joined):
            return None
    return None


@dataclass
class PrintCheck:
    pdf: Path
    pages: int = 0
    seconds: float = 0.0  # selection + printing + reading the PDF
    sequence: list[str] = field(default_factory=list)  # per page: "liste:<title>" or the card's IPP
    pages_per_card: dict[str, int] = field(default_factory=dict)
    expected: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_page(page: PdfPage, header: str, stale: str, expected: dict) -> tuple[str, list[str]]:
    """What the page is (a card's IPP or a list's title) and what is wrong with it."""
    problems = []
    lines = page.lines
    taken = consume(lines, header)
    if taken is None:
        problems.append(
            f"page {page.number} does not start with the cut-off line: {[x.text for x in lines[:2]]}"
        )
        taken = 0
    elif stale:
        more = consume(lines[taken:], stale)
        if more is None:
            problems.append(f"page {page.number}: no staleness warning under the cut-off line")
        else:
            taken += more
    if not stale and any("PÉRIMÉE" in line.text for line in lines):
        problems.append(f"page {page.number}: staleness warning on a fresh copy")
    if taken:
        band_bottom = max(line.bottom for line in lines[:taken])
        under = [line for line in lines[taken:] if line.top < band_bottom - 0.5]
        if under:
            problems.append(f"page {page.number}: text inside the header band: {[x.text for x in under[:3]]}")
    over = overprinted(page)
    if over:
        problems.append(
            f"page {page.number}: text printed over text: {[(a.text, b.text) for a, b in over[:5]]}"
        )
    rest = lines[taken:]
    for card in expected["cards"]:
        if consume(rest, card["identity"]) is not None:
            identities = [line.text for line in lines if re.search(r" — IPP \d+$", line.text)]
            if len(identities) != 1:
                problems.append(f"page {page.number}: {len(identities)} patient name/IPP lines: {identities}")
            return card["ipp"], problems
    for title in expected["sheets"]:
        if consume(rest, title) is not None:
            return f"liste:{title}", problems
    problems.append(f"page {page.number}: neither a chosen card's identity nor a list title under the header "
                    f"{[x.text for x in rest[:3]]}")  # fmt: skip
    return "?", problems


def print_selection(binder: Path, meta: dict, out: Path, *, unit: str | None = None,
                    rooms: tuple[str, str] | None = None, ipp: str | None = None, everything: bool = False,
                    stale: bool = True, extra_css: str = "") -> PrintCheck:  # fmt: skip
    """Choose in the binder's print panel (a unit, a room range of that unit, one patient found with the
    search, or everything), print to PDF as the print dialog would, and check every page. ``extra_css`` is
    added to the page first (the tests break the layout on purpose to see this check fail)."""
    cutoff = dt.datetime.fromisoformat(meta["cutoff_iso"].replace("Z", "+00:00"))
    limit = dt.timedelta(hours=int(meta["staleness_limit_hours"]))
    out.mkdir(parents=True, exist_ok=True)
    name = "tout" if everything else ipp or f"{unit}-{'-'.join(rooms) if rooms else 'service'}"
    result = PrintCheck(pdf=out / f"impression-{name}-{'perimee' if stale else 'a-jour'}.pdf")
    started = time.monotonic()
    with chromium() as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.clock.install(time=cutoff + (limit + dt.timedelta(hours=3) if stale else dt.timedelta(hours=1)))
        page.goto(binder.resolve().as_uri())
        page.evaluate(STUB_PRINT)
        if extra_css:
            page.add_style_tag(content=extra_css)
        if everything:
            page.click("#imp-tout")
        elif ipp:
            page.fill("#recherche", ipp)
            page.press("#recherche", "Enter")
            page.click("#imprimer-fiche")
        else:
            page.select_option("#imp-unite", unit)
            if rooms:
                page.select_option("#imp-de", rooms[0])
                page.select_option("#imp-a", rooms[1])
                page.click("#imp-chambres")
            else:
                page.click("#imp-service")
        assert page.evaluate("window.printed") == 1, "the print button did not open the print dialog"
        result.expected = page.evaluate(EXPECTED)
        page.emulate_media(media="print")
        header = json.loads(page.evaluate(HEADER_CONTENT))
        print_pdf(page, result.pdf)
        assert not errors and not context.refused, (errors, context.refused)
    assert f"État au {meta['cutoff_local']}" in header, header
    pages = read_pdf(result.pdf)
    result.pages = len(pages)
    stale_text = result.expected["banner"]
    assert bool(stale_text) == stale, (
        f"staleness banner {stale_text!r} on a copy that is {'' if stale else 'not '}stale"
    )
    for page in pages:
        kind, problems = check_page(page, header, stale_text, result.expected)
        result.sequence.append(kind)
        result.problems += problems
        if not kind.startswith("liste:") and kind != "?":
            result.pages_per_card[kind] = result.pages_per_card.get(kind, 0) + 1
    order = [
        kind
        for position, kind in enumerate(result.sequence)
        if position == 0 or result.sequence[position - 1] != kind
    ]
    wanted = result.expected["order"]
    if order != wanted:
        result.problems.append(f"pages in this order {order}, expected {wanted}")
    result.seconds = time.monotonic() - started
    return result


def assert_print_ok(result: PrintCheck) -> PrintCheck:
    assert result.expected["cards"], "nothing chosen to print"
    assert not result.problems, "\n".join(result.problems[:20])
    for card in result.expected["cards"]:
        assert card["allergies"].startswith("ALLERGIES : ") and card["allergies"] != "ALLERGIES :", card
    return result
