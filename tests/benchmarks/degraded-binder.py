#!/usr/bin/env python3
"""Benchmark: render the degraded-mode binder for N fictitious patients with the export program itself
(roles/degraded_export/files, views computed from the lab's rempart_lab/dpi_fictif.py, no database) and time the client-side
search in the host's headless Chromium. Prints the numbers; exits non-zero above the budgets.

    .venv/bin/python tests/benchmarks/degraded-binder.py [--patients 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from degraded_binder import render
from degraded_chromium import CHROMIUM, check_binder

RENDER_BUDGET_SECONDS = 10.0
SEARCH_BUDGET_SECONDS = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder, seconds = render(Path(temporary), patients=args.patients)
        size = (folder / "index.html").stat().st_size
        print(f"render: {args.patients} patients in {seconds:.2f} s, binder {size / 1e6:.1f} MB")
        ok = seconds < RENDER_BUDGET_SECONDS
        if Path(CHROMIUM).exists():
            meta = json.loads((folder / "binder.json").read_text())
            result = check_binder(folder / "index.html", meta, Path(temporary) / "shots")
            print(f"chromium: search {result.search_seconds * 1000:.0f} ms in the page, "
                  f"{result.search_roundtrip_seconds * 1000:.0f} ms seen by Playwright")  # fmt: skip
            ok = ok and result.search_seconds < SEARCH_BUDGET_SECONDS
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
