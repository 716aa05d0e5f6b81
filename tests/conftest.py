"""Shared fixtures: the project root and a valid establishment to mutate."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def project() -> Path:
    return PROJECT


@pytest.fixture(scope="session")
def lab_establishment_data() -> dict[str, Any]:
    path = PROJECT / "inventories/lab/group_vars/all/establishment.yml"
    return yaml.safe_load(path.read_text())["establishment"]


@pytest.fixture
def establishment_data(lab_establishment_data: dict[str, Any]) -> dict[str, Any]:
    """A fresh, valid copy of the lab establishment, free to mutate."""
    return copy.deepcopy(lab_establishment_data)
