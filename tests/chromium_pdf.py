"""The host's headless Chromium (Debian package ``chromium``, driven by Playwright, never
``playwright install``) as the tests use it: open a local HTML file offline, print it to PDF as a user would
(A4, the page's own ``@page`` rules, backgrounds), then read the PDF's text WITH POSITIONS (pdfminer.six) to
check a layout: what is at the top of each page, and whether any text is printed over other text.

    from chromium_pdf import chromium, html_to_pdf, read_pdf, overprinted

    pdf = html_to_pdf(Path("report.html"), tmp_path / "report.pdf")     # one call, offline, A4
    for page in read_pdf(pdf):
        assert not overprinted(page), overprinted(page)[:3]
        assert page.top_lines(2)[0].text.startswith("Rapport")
        assert page.find("Synthèse")                                      # TextBox lines, in points

    with chromium() as context:                                          # to drive the page first
        page = context.new_page()
        page.goto(Path("index.html").resolve().as_uri())
        ...
        print_pdf(page, tmp_path / "out.pdf")

Coordinates are PDF points (1/72 in), origin at the TOP-left corner of the page, ``top`` < ``bottom``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@contextmanager
def chromium(
    profile: Path | None = None, *, viewport: dict[str, int] | None = None, **options: Any
) -> Iterator[Any]:
    """A Playwright persistent context, offline, fr-FR, Europe/Paris, on the browser profile ``profile``
    (default: a temporary folder, removed afterwards); any request that is not a file:// URL is refused and
    recorded in ``context.refused``."""
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="chromium-profile-") as temporary,
        sync_playwright() as playwright,
    ):
        profile = profile or Path(temporary)
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS, offline=True,
            locale="fr-FR", timezone_id="Europe/Paris", viewport=viewport or {"width": 1366, "height": 768},
            **options,
        )  # fmt: skip
        refused: list[str] = []

        def refuse(route: Any) -> None:
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort()

        context.route("**/*", refuse)
        context.refused = refused
        try:
            yield context
        finally:
            context.close()


def print_pdf(page: Any, path: Path) -> Path:
    """Print the page as the browser's print dialog would: print media, the page's @page size and margins."""
    page.pdf(path=str(path), print_background=True, prefer_css_page_size=True, format="A4")
    return path


def html_to_pdf(html: Path, pdf: Path, *, profile: Path | None = None) -> Path:
    """One local HTML file → PDF, offline (raises if the page asked for anything but local files)."""
    with chromium(profile) as context:
        page = context.new_page()
        page.goto(html.resolve().as_uri(), wait_until="load")
        print_pdf(page, pdf)
        if context.refused:
            raise AssertionError(f"{html} asked for external resources: {context.refused}")
    return pdf


@dataclass(frozen=True)
class TextBox:
    """A line (or one character) of text and its box, in points from the page's top-left corner."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    where: tuple[int, int] = field(default=(-1, -1), compare=False)  # a character's (line, position in line)

    def intersection(self, other: TextBox) -> float:
        width = min(self.x1, other.x1) - max(self.x0, other.x0)
        height = min(self.bottom, other.bottom) - max(self.top, other.top)
        return width * height if width > 0 and height > 0 else 0.0

    @property
    def area(self) -> float:
        return max(self.x1 - self.x0, 0.0) * max(self.bottom - self.top, 0.0)

    def overlaps(self, other: TextBox) -> bool:
        return self.intersection(other) > 0


@dataclass
class PdfPage:
    number: int  # from 1
    width: float
    height: float
    lines: list[TextBox] = field(default_factory=list)  # top to bottom, then left to right
    chars: list[TextBox] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def find(self, fragment: str) -> list[TextBox]:
        return [line for line in self.lines if fragment in line.text]

    def top_lines(self, count: int) -> list[TextBox]:
        return self.lines[:count]


def read_pdf(path: Path) -> list[PdfPage]:
    """Every page's text lines and characters with their boxes (pdfminer.six layout analysis)."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTContainer, LTTextLine

    def lines(container: Any) -> Iterator[Any]:
        for item in container:
            if isinstance(item, LTTextLine):
                yield item
            elif isinstance(item, LTContainer):
                yield from lines(item)

    pages = []
    # boxes_flow=None: lines in reading order by position; line_margin small: a header line is its own line
    parameters = LAParams(line_margin=0.2, char_margin=2.0, boxes_flow=None)
    for number, layout in enumerate(extract_pages(str(path), laparams=parameters), start=1):
        height = layout.height
        page = PdfPage(number=number, width=layout.width, height=height)
        for number_in_page, line in enumerate(lines(layout)):
            text = line.get_text().strip()
            if text:
                page.lines.append(TextBox(text, line.x0, height - line.y1, line.x1, height - line.y0))
            for position, char in enumerate(line):
                if isinstance(char, LTChar) and char.get_text().strip():
                    box = (char.x0, height - char.y1, char.x1, height - char.y0)
                    page.chars.append(TextBox(char.get_text(), *box, where=(number_in_page, position)))
        page.lines.sort(key=lambda box: (round(box.top, 1), box.x0))
        pages.append(page)
    return pages


def overprinted(page: PdfPage, share: float = 0.3, enough: int = 20) -> list[tuple[TextBox, TextBox]]:
    """Pairs of characters printed over each other: boxes sharing more than ``share`` of the smaller one's
    area. Neighbouring letters of one line are left out (kerning: "Tr", "AV"); lines set with a normal line
    height share far less. Stops once ``enough`` pairs are found."""
    chars = sorted(page.chars, key=lambda box: box.top)
    found = []
    for index, char in enumerate(chars):
        for other in chars[index + 1 :]:
            if other.top >= char.bottom:
                break
            line, position = char.where
            if other.where[0] == line and abs(other.where[1] - position) == 1:
                continue
            smaller = min(char.area, other.area)
            if smaller > 0 and char.intersection(other) > share * smaller:
                found.append((char, other))
                if len(found) >= enough:
                    return found
    return found
