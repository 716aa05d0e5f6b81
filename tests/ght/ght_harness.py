"""Shared by the GHT tests: the GHT lab inventory and a YAML editor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

GHT_LAB = Path(__file__).resolve().parents[2] / "inventories" / "ght-lab"


def edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
