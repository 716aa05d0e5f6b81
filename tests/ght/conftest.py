"""A writable copy of the GHT lab inventory (inventories/ght-lab), per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ght_harness import GHT_LAB


@pytest.fixture
def ght(tmp_path: Path) -> Path:
    folder = tmp_path / "ght-test"
    shutil.copytree(GHT_LAB, folder)
    return folder
