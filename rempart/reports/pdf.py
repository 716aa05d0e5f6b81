"""Print an HTML document to PDF with Debian's headless Chromium (its print stylesheet applies), offline."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser")


class PdfError(RuntimeError):
    pass


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise PdfError("chromium is not installed: apt-get install chromium (Debian's package)")


def print_to_pdf(html: Path, pdf: Path | None = None, timeout: float = 120) -> Path:
    """``html`` printed to ``pdf`` (default: same name, .pdf). A throw-away profile, no network, no header or
    footer added by the browser (the document carries its own)."""
    target = pdf or html.with_suffix(".pdf")
    with tempfile.TemporaryDirectory(prefix="rempart-pdf-") as profile:
        command = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--proxy-server=127.0.0.1:9",  # nothing may be fetched: the documents are self-contained
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            html.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        raise PdfError(f"chromium could not print {html} (exit {done.returncode}): {done.stderr[-500:]}")
    return target
