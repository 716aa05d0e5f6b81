"""Open a degraded-mode binder in the real headless Chromium of the host (Debian package ``chromium``),
driven by Playwright (never ``playwright install``: executable_path=/usr/bin/chromium), from file:// with
every network request refused and recorded. Shared by tests/test_degraded_binder.py (a binder rendered on
the controller) and molecule/degraded (the station's decrypted copy, network cut)."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
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
    print_header_position: str = ""  # the cut-off header in print: "fixed" = repeated on every page
    print_search_display: str = ""
    pdf: Path | None = None


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
            # print stylesheet: the cut-off header repeats on every page, the search box is not printed
            timing.emulate_media(media="print")
            result.print_header_position = timing.evaluate(
                "getComputedStyle(document.getElementById('bandeau')).position"
            )
            result.print_search_display = timing.evaluate(
                "getComputedStyle(document.querySelector('.recherche')).display"
            )
            result.pdf = out / "binder.pdf"
            timing.pdf(path=str(result.pdf), format="A4", page_ranges="1-3")
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
    assert result.print_header_position == "fixed" and result.print_search_display == "none"
    assert result.pdf and result.pdf.read_bytes().startswith(b"%PDF")
    return result
