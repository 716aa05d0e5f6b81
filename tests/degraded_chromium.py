"""Open a degraded-mode binder in the real headless Chromium of the host (Debian package ``chromium``),
driven by Playwright (never ``playwright install``: executable_path=/usr/bin/chromium), from file:// with
every network request refused and recorded: search, cut-off, staleness, and at a given screen size whether
the chosen card's name/IPP and allergy lines are in view and uncovered (check_card_in_view). Shared by
tests/test_degraded_binder.py (a binder rendered on the controller) and molecule/degraded (the station's
decrypted copy, network cut). Printing: tests/degraded_print.py."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chromium_pdf import CHROMIUM, CHROMIUM_FLAGS, chromium

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "assert_binder_works",
    "assert_card_in_view",
    "busy_query",
    "check_binder",
    "check_card_in_view",
    "search_index",
    "unique_patient",
]


SEARCH_TIMING = """(query) => {
  const input = document.getElementById("recherche");
  const started = performance.now();
  input.value = query;
  input.dispatchEvent(new Event("input"));
  void document.body.offsetHeight;  // force the layout of the results
  return performance.now() - started;
}"""


@dataclass
class BinderCheck:
    cutoff_text: str = ""
    found_by_name: list[str] = field(default_factory=list)
    found_by_number: list[str] = field(default_factory=list)
    search_seconds: float = 0.0  # in the page, real clock: input event → results in the DOM, laid out
    search_roundtrip_seconds: float = 0.0  # Playwright fill → selector seen (includes the driver's latency)
    banner_fresh: bool = True
    banner_after_limit: str = ""
    banner_reloaded_late: str = ""
    banner_on_screen: bool = False
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    console_errors: list[str] = field(default_factory=list)
    print_search_display: str = ""  # the search box in print ("none": not printed)


def search_index(binder: Path) -> list[list[str]]:
    text = binder.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="index">(.*?)</script>', text, re.S)
    assert match, "the binder has no embedded search index"
    return json.loads(match.group(1))


def unique_patient(binder: Path) -> list[str]:
    """A patient whose name + first name is unique in the binder: [ipp, nom, prenom, ...]."""
    rows = search_index(binder)
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        counts[(row[1], row[2])] = counts.get((row[1], row[2]), 0) + 1
    return next(row for row in rows if counts[(row[1], row[2])] == 1)


def check_binder(binder: Path, meta: dict, out: Path) -> BinderCheck:
    """Drive Chromium on ``binder`` (index.html) whose binder.json is ``meta``; screenshots go to ``out``."""
    from playwright.sync_api import sync_playwright

    result = BinderCheck()
    patient = unique_patient(binder)
    cutoff = dt.datetime.fromisoformat(meta["cutoff_iso"].replace("Z", "+00:00"))
    limit = dt.timedelta(hours=int(meta["staleness_limit_hours"]))
    url = binder.resolve().as_uri()
    profile = out / "chromium-profile"
    with sync_playwright() as playwright:
        # a throw-away profile (--user-data-dir, which Playwright passes for a persistent context)
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            offline=True, locale="fr-FR", timezone_id="Europe/Paris",
        )  # fmt: skip
        try:

            def refuse(route):  # anything that is not the binder file itself
                if route.request.url != url:
                    route.abort()
                else:
                    route.continue_()

            context.route("**/*", refuse)
            page = context.new_page()
            page.on("request", lambda request: result.requests.append(request.url))
            page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
            page.clock.install(time=cutoff + dt.timedelta(hours=1))
            page.goto(url)
            result.cutoff_text = page.locator("#coupure").inner_text()
            result.banner_fresh = page.locator("#perime").is_hidden()

            started = time.monotonic()
            page.fill("#recherche", f"{patient[1].lower()} {patient[2]}")
            page.wait_for_selector(f'#resultats a[href="#p-{patient[0]}"]', timeout=5000)
            result.search_roundtrip_seconds = time.monotonic() - started
            result.found_by_name = page.locator("#resultats li").all_inner_texts()

            page.fill("#recherche", patient[0])
            page.wait_for_selector(f'#resultats a[href="#p-{patient[0]}"]', timeout=5000)
            result.found_by_number = page.locator("#resultats li").all_inner_texts()
            page.click(f'#resultats a[href="#p-{patient[0]}"]')
            page.locator(f"#p-{patient[0]}").wait_for(state="visible")
            out.mkdir(parents=True, exist_ok=True)
            result.screenshot = out / "binder-search.png"
            page.screenshot(path=str(result.screenshot))

            # the clock moves on past the staleness limit: the banner appears without a reload
            page.clock.fast_forward(int((limit + dt.timedelta(minutes=5)).total_seconds() * 1000))
            page.locator("#perime").wait_for(state="visible", timeout=5000)
            result.banner_after_limit = page.locator("#perime").inner_text()
            box = page.locator("#perime").bounding_box()  # stays on screen while reading a patient card
            result.banner_on_screen = box is not None and 0 <= box["y"] < 300
            page.screenshot(path=str(out / "binder-stale.png"))

            # search speed on a page with the real clock (the fake clock also fakes performance.now)
            timing = context.new_page()
            timing.on("request", lambda request: result.requests.append(request.url))
            timing.goto(url)
            result.search_seconds = timing.evaluate(SEARCH_TIMING, f"{patient[1]} {patient[2][:3]}") / 1000
            # print stylesheet: the search box is not printed (the printed pages: tests/degraded_print.py)
            timing.emulate_media(media="print")
            result.print_search_display = timing.evaluate(
                "getComputedStyle(document.querySelector('.recherche')).display"
            )
            timing.close()

            # and a copy opened late shows it at once
            late = context.new_page()
            late.on("request", lambda request: result.requests.append(request.url))
            late.clock.install(time=cutoff + limit + dt.timedelta(hours=3))
            late.goto(url)
            late.locator("#perime").wait_for(state="visible", timeout=5000)
            result.banner_reloaded_late = late.locator("#perime").inner_text()
        finally:
            context.close()
    return result


def assert_binder_works(binder: Path, meta: dict, out: Path) -> BinderCheck:
    result = check_binder(binder, meta, out)
    patient = unique_patient(binder)
    assert meta["cutoff_local"] in result.cutoff_text, result.cutoff_text
    assert result.banner_fresh, "staleness banner shown on a fresh copy"
    assert any(patient[0] in line for line in result.found_by_name), result.found_by_name
    assert any(patient[1] in line and patient[2] in line for line in result.found_by_number), (
        result.found_by_number
    )
    assert result.search_seconds < 0.5, f"search took {result.search_seconds:.2f} s in the page"
    assert result.search_roundtrip_seconds < 5, f"search seen after {result.search_roundtrip_seconds:.2f} s"
    assert "PÉRIMÉE" in result.banner_after_limit and meta["cutoff_local"] in result.banner_after_limit
    assert "PÉRIMÉE" in result.banner_reloaded_late
    assert result.banner_on_screen, "the staleness banner scrolled out of sight"
    url = binder.resolve().as_uri()
    assert set(result.requests) == {url}, f"external requests: {set(result.requests) - {url}}"
    assert result.screenshot and result.screenshot.stat().st_size > 10_000
    assert not result.console_errors, result.console_errors
    assert result.print_search_display == "none"
    return result


# Where the chosen card's name/IPP line and allergy line are, and what covers them: every element whose
# position is fixed or sticky (and that does not contain the line) and whose box meets the line's box, and
# what the browser finds at three points of the line (elementFromPoint: the line, or what is over it).
CARD_IN_VIEW = """(ipp) => {
  const card = document.getElementById("p-" + ipp);
  const width = document.documentElement.clientWidth, height = document.documentElement.clientHeight;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (typeof e.className === "string" && e.className ? "." + e.className.trim().split(/\\s+/).join(".") : "");
  // the page's fixed and sticky elements (its stylesheet does not change: looked up once per page)
  const overlays = window.fixedOrSticky = window.fixedOrSticky || [...document.body.querySelectorAll("*")]
    .filter((e) => ["fixed", "sticky"].includes(getComputedStyle(e).position));
  const view = { sticky: document.getElementById("haut").getBoundingClientRect().height, width: width,
                 height: height, hash: location.hash, focused: name(document.activeElement),
                 results_shown: !document.getElementById("resultats").hidden };
  for (const [key, selector] of [["name", ".nom-ipp"], ["allergies", ".ligne-allergies"]]) {
    const line = card.querySelector(selector), box = line.getBoundingClientRect();
    const covered = overlays.filter((e) => !e.contains(line)).filter((e) => {
      const b = e.getBoundingClientRect();
      return b.width > 0 && b.height > 0 && b.left < box.right && b.right > box.left && b.top < box.bottom &&
        b.bottom > box.top;
    }).map(name);
    const middle = (box.top + box.bottom) / 2;
    const hidden = [box.left + 2, (box.left + box.right) / 2, box.right - 2].map((x) => {
      const hit = document.elementFromPoint(x, middle);
      return hit && (hit === line || line.contains(hit)) ? null : (hit ? name(hit) : "nothing");
    }).filter(Boolean);
    view[key] = { text: line.innerText, top: box.top, bottom: box.bottom, left: box.left, right: box.right,
                  inside: box.top >= 0 && box.left >= 0 && box.bottom <= height && box.right <= width,
                  covered_by: covered, hidden_by: hidden };
  }
  return view;
}"""


SHOWN = "(ipp) => location.hash === '#p-' + ipp"


def plain(text: str) -> str:
    """The binder's search normalisation: accents dropped, lower case."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).lower()


def busy_query(binder: Path, wanted: int = 47) -> tuple[str, int]:
    """A two-letter query matching about ``wanted`` patients (at most 50, the list's length), as in the
    3 a.m. case: a long result list, then a click on one of the last results."""
    words = [re.split(r"[\s'-]+", plain(f"{row[1]} {row[2]}")) for row in search_index(binder)]
    counts: dict[str, int] = {}
    for prefix in {word[:2] for row in words for word in row if len(word) >= 2}:
        counts[prefix] = sum(any(word.startswith(prefix) for word in row) for row in words)
    return min(((prefix, count) for prefix, count in counts.items() if count <= 50),
               key=lambda item: (abs(item[1] - wanted), item[0]))  # fmt: skip


@dataclass
class CardInView:
    size: str
    query: str = ""
    results: int = 0
    after_click: dict = field(default_factory=dict)  # CARD_IN_VIEW after a click on a result (stale copy)
    after_stale: dict = field(default_factory=dict)  # on a fresh copy, once the staleness banner appeared
    after_escape: dict = field(default_factory=dict)  # Escape: back to the results, focus in the search
    after_keyboard: dict = field(default_factory=dict)  # ArrowDown, ArrowDown, Enter: the second result
    after_list_link: dict = field(default_factory=dict)  # a name clicked in a unit's list (a plain link)
    keyboard_ipp: str = ""
    screenshot: Path | None = None


def check_card_in_view(binder: Path, meta: dict, out: Path, width: int, height: int,
                       extra_css: str = "") -> CardInView:  # fmt: skip
    """At ``width`` x ``height``, on a stale copy (red banner shown): a busy search, a click on one of the
    last results, the keyboard (Escape, arrows, Enter), a name link of a unit's list; then on a fresh copy, a
    click on a result and the clock past the staleness limit (the banner appears over the card's page).
    ``extra_css`` is added to the page first (the tests break the layout on purpose to see this fail)."""
    result = CardInView(size=f"{width}x{height}")
    result.query, _ = busy_query(binder)
    cutoff = dt.datetime.fromisoformat(meta["cutoff_iso"].replace("Z", "+00:00"))
    limit = dt.timedelta(hours=int(meta["staleness_limit_hours"]))
    out.mkdir(parents=True, exist_ok=True)
    with chromium(viewport={"width": width, "height": height}) as context:

        def search_and_click(clock: dt.datetime) -> tuple[Any, str]:
            page = context.new_page()
            page.clock.install(time=clock)
            page.goto(binder.resolve().as_uri())
            if extra_css:
                page.add_style_tag(content=extra_css)
            page.fill("#recherche", result.query)
            page.wait_for_selector("#resultats a")
            links = page.locator("#resultats a")
            result.results = links.count()
            chosen = links.nth(result.results - 2)
            ipp = chosen.get_attribute("data-ipp") or ""
            chosen.click()
            page.wait_for_function(SHOWN, arg=ipp)
            return page, ipp

        page, ipp = search_and_click(cutoff + limit + dt.timedelta(hours=2))
        assert page.locator("#perime").is_visible()
        result.after_click = page.evaluate(CARD_IN_VIEW, ipp)
        result.screenshot = out / f"fiche-{result.size}.png"
        page.screenshot(path=str(result.screenshot))
        page.keyboard.press("Escape")
        result.after_escape = page.evaluate(CARD_IN_VIEW, ipp)
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        result.keyboard_ipp = page.evaluate("document.activeElement.getAttribute('data-ipp')") or ""
        page.keyboard.press("Enter")
        page.wait_for_function(SHOWN, arg=result.keyboard_ipp)
        result.after_keyboard = page.evaluate(CARD_IN_VIEW, result.keyboard_ipp)
        listed = page.locator(".recensement-unite tbody a").nth(5)
        listed_ipp = (listed.get_attribute("href") or "").removeprefix("#p-")
        listed.click()
        page.wait_for_function(SHOWN, arg=listed_ipp)
        result.after_list_link = page.evaluate(CARD_IN_VIEW, listed_ipp)

        page, ipp = search_and_click(cutoff + limit - dt.timedelta(minutes=30))
        assert page.locator("#perime").is_hidden()
        page.clock.fast_forward(3_600_000)  # past the limit: the red banner appears while the card is read
        page.locator("#perime").wait_for(state="visible")
        page.wait_for_timeout(100)
        result.after_stale = page.evaluate(CARD_IN_VIEW, ipp)
        assert not context.refused, context.refused
    return result


def assert_card_in_view(view: CardInView) -> CardInView:
    assert view.results >= 20, f"the query {view.query!r} found only {view.results} patients"
    for moment in (view.after_click, view.after_stale, view.after_keyboard, view.after_list_link):
        assert moment["sticky"] <= 0.5 * moment["height"], f"sticky top area {moment['sticky']} px high"
        for line in ("name", "allergies"):
            box = moment[line]
            assert box["inside"], f"{view.size}: {line} line {box['text']!r} out of view: {box}"
            assert not box["covered_by"], f"{view.size}: {line} line covered by {box['covered_by']}"
            assert not box["hidden_by"], f"{view.size}: {line} line hidden by {box['hidden_by']}"
    for moment in (view.after_click, view.after_stale, view.after_keyboard):
        assert not moment["results_shown"], "the results did not collapse once a patient was chosen"
        assert ".nom-ipp" in moment["focused"], f"focus on {moment['focused']}, not on the card's name"
    assert view.after_escape["results_shown"] and view.after_escape["focused"] == "input#recherche"
    assert view.keyboard_ipp and view.after_keyboard["hash"] == f"#p-{view.keyboard_ipp}"
    return view
