"""The station's copy read in a real headless Chromium with the station's network cut (DEG-05, CARE-D2-02):
the station is disconnected from the lab network, still serves its binder on loopback, and the decrypted
current copy taken out of it opens from file:// with no request leaving the page; a patient is found by
name and by number, the cut-off time is shown, and the staleness banner appears once the clock passes the
limit. On that copy (2,000 patients), at 1366x768 and 1920x1080, a chosen card's name/IPP and allergy lines
stay in view and uncovered; a room range printed from the binder's print panel gives one patient per page,
identity and allergies at the top of every page, the cut-off and staleness lines over nothing.
Screenshots and PDFs: the test's tmp dir."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from degraded_chromium import CHROMIUM, assert_binder_works, assert_card_in_view, check_card_in_view
from degraded_print import assert_print_ok, print_selection

STATION = "md-station-01"
NETWORK = "rempart-molecule-degraded"
ADDRESS = "10.89.63.31"
CURRENT = "/run/rempart-degraded/current"


@pytest.fixture
def station_cut_off():
    subprocess.run(["podman", "network", "disconnect", NETWORK, STATION], check=True)
    try:
        yield testinfra.get_host(f"podman://{STATION}")
    finally:
        subprocess.run(["podman", "network", "connect", "--ip", ADDRESS, NETWORK, STATION], check=True)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs the Debian chromium package on the host")
def test_station_copy_works_in_chromium_with_the_network_cut(station_cut_off, tmp_path: Path):
    station = station_cut_off
    assert "10.89.63." not in station.run("ip -4 addr").stdout
    # the production side is unreachable, the local copy is still served
    assert station.run("systemctl start rempart-degraded-fetch.service").rc != 0
    served = station.run(
        "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1/\", timeout=5).status)'"
    )
    assert served.stdout.strip() == "200"
    copy = tmp_path / "copie-station"
    copy.mkdir()
    for name in ("index.html", "binder.json"):
        content = subprocess.run(["podman", "exec", STATION, "cat", f"{CURRENT}/{name}"], check=True,
                                 capture_output=True).stdout  # fmt: skip
        (copy / name).write_bytes(content)
    meta = json.loads((copy / "binder.json").read_text(encoding="utf-8"))
    assert meta["patients_count"] == 2000
    result = assert_binder_works(copy / "index.html", meta, tmp_path)
    print(f"\nchromium on the station copy ({meta['patients_count']} patients): search answered in "
          f"{result.search_seconds * 1000:.0f} ms in the page ({result.search_roundtrip_seconds * 1000:.0f} ms "
          f"seen by Playwright); screenshots in {tmp_path}")  # fmt: skip
    for width, height in ((1366, 768), (1920, 1080)):
        view = assert_card_in_view(check_card_in_view(copy / "index.html", meta, tmp_path, width, height))
        stale = view.after_stale
        print(f"{view.size}: {view.results} results for {view.query!r}; with the staleness banner the top "
              f"area is {stale['sticky']:.0f} px, the card's name line at {stale['name']['top']:.0f} px")  # fmt: skip
    text = (copy / "index.html").read_text(encoding="utf-8")
    unit_table = text.split('id="u-CARDIO"')[1].split("</table>")[0]
    rooms = list(dict.fromkeys(re.findall(r'<tr data-chambre="([^"]+)">', unit_table)))
    printed = assert_print_ok(
        print_selection(copy / "index.html", meta, tmp_path, unit="CARDIO", rooms=(rooms[0], rooms[4]))
    )
    print(f"print of rooms {rooms[0]} to {rooms[4]}: {len(printed.expected['cards'])} patients on "
          f"{printed.pages} pages, checked from the PDF in {printed.seconds:.1f} s")  # fmt: skip
