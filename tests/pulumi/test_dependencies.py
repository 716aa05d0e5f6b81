"""The offsite program's resource graph, as the SDK sends it to the engine (the edges `pulumi up` and
`pulumi destroy` order by): a mock replays only a fresh `up`, so the order that matters on day 2 is checked on
the edges themselves."""

from __future__ import annotations

import sys

import pytest
from pulumi_harness import PULUMI_DIR, ROOT, STACKS, RecordingMocks

import pulumi

sys.path[:0] = [str(ROOT / "lab"), str(PULUMI_DIR)]
from offsite_replay import RecordingMonitor, name_of  # noqa: E402

BUCKET_SETTINGS = (
    "offsite-versioning",
    "offsite-object-lock",
    "offsite-encryption",
    "offsite-public-access-block",
    "offsite-ownership",
    "offsite-lifecycle",
    "offsite-logging",
)


@pytest.fixture
def graph():
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="rempart", stack="test", preview=False, monitor=monitor)
    return monitor


def edges(monitor: RecordingMonitor) -> dict[str, set[str]]:
    return {name_of(urn): {name_of(d) for d in deps} for urn, deps in monitor.dependencies.items()}


def ancestors(graph: dict[str, set[str]], name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for parent in graph.get(todo.pop(), set()) - seen:
            seen.add(parent)
            todo.append(parent)
    return seen


@pulumi.runtime.test
def test_bucket_policy_is_applied_after_every_other_bucket_setting(graph):
    import program

    vault = program.build(program.load_establishment(STACKS["lab"]))

    def check(_):
        found = edges(graph)
        # it denies changing these to all but break-glass (and the deployer, for lifecycle): made before it
        assert set(BUCKET_SETTINGS) <= found["offsite-policy"]
        # ... and nothing waits for it, so on a first `up` it is the last change to the bucket
        assert not [name for name, deps in found.items() if "offsite-policy" in deps]
        # the deployer it names exists before it (AWS refuses a policy naming a missing principal)
        assert "offsite-deployer" in ancestors(found, "offsite-policy")
        # S3 checks that the log bucket lets the logging service write before it accepts the logging
        assert "offsite-logs-policy" in found["offsite-logging"]
        assert {"offsite-logs-public-access-block", "offsite-logs-ownership"} <= found["offsite-logs-policy"]

    return pulumi.Output.all(*[r.urn for r in vault.resources]).apply(check)
