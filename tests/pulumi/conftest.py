"""Pulumi unit tests without the CLI: mocks are installed before the program is imported."""

from __future__ import annotations

import sys

import pytest
from pulumi_harness import PULUMI_DIR, RecordingMocks

import pulumi


@pytest.fixture
def mocks() -> RecordingMocks:
    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording, project="rempart", stack="test", preview=False)
    if str(PULUMI_DIR) not in sys.path:
        sys.path.insert(0, str(PULUMI_DIR))
    return recording
