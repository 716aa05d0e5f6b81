"""rempart stacks: one offsite stack per establishment, from the inventory, through the Automation API.

The Automation API entry point (create_or_select_stack) is replaced by a recorder: no Pulumi CLI here. The
Pulumi program itself is then run with mocks on each establishment file the stacks point at."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_harness import PULUMI_DIR, ROOT

import pulumi
from rempart.commands.cli import main
from rempart.commands.stacks import CONFIG_KEY, POLICY_PACK, plan_stacks, run_stacks

GHT_LAB = ROOT / "inventories" / "ght-lab"
FINESS = ["340999911", "340999929", "340999937"]


@dataclass
class FakeStack:
    name: str
    work_dir: str
    config: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail: bool = False

    def set_all_config(self, values: dict[str, Any]) -> None:
        self.config.update({key: value.value for key, value in values.items()})

    def preview(self, **options: Any) -> Any:
        self.calls.append(("preview", options))
        if self.fail:
            raise RuntimeError("backend unreachable")
        return type("Preview", (), {"change_summary": {"create": 12}})()

    def up(self, **options: Any) -> Any:
        self.calls.append(("up", options))
        if self.fail:
            raise RuntimeError("backend unreachable")
        return type("Up", (), {"summary": type("Summary", (), {"resource_changes": {"same": 12}})()})()


@dataclass
class FakeAutomation:
    failing: set[str] = field(default_factory=set)
    stacks: dict[str, FakeStack] = field(default_factory=dict)

    def select(self, *, stack_name: str, work_dir: str) -> FakeStack:
        stack = self.stacks.setdefault(
            stack_name, FakeStack(stack_name, work_dir, fail=stack_name in self.failing)
        )
        return stack


def test_one_stack_per_establishment_of_the_ght() -> None:
    plans = plan_stacks(GHT_LAB)
    assert [p.name for p in plans] == [f"ght-lab-{f}" for f in FINESS]
    for plan, group in zip(plans, ["ch_nord", "ch_centre", "ch_sud"], strict=True):
        expected = GHT_LAB / "group_vars" / group / "establishment.yml"
        assert (PULUMI_DIR / plan.config[CONFIG_KEY]).resolve() == expected.resolve()


def test_a_single_establishment_keeps_its_stack_and_config() -> None:
    (plan,) = plan_stacks(ROOT / "inventories" / "lab")
    committed = yaml.safe_load((PULUMI_DIR / "Pulumi.lab.yaml").read_text())["config"]
    assert plan.name == "lab" and plan.config == committed


def test_preview_selects_configures_and_previews_every_stack_with_the_policy_pack() -> None:
    automation = FakeAutomation()
    results = run_stacks(plan_stacks(GHT_LAB), "preview", select=automation.select, on_output=lambda _: None)
    assert [r.ok for r in results] == [True, True, True] and results[0].summary == "create=12"
    assert sorted(automation.stacks) == [f"ght-lab-{f}" for f in FINESS]
    for stack in automation.stacks.values():
        assert stack.work_dir == str(PULUMI_DIR)
        assert stack.config[CONFIG_KEY].endswith("/establishment.yml")
        ((action, options),) = stack.calls
        assert action == "preview" and options["policy_packs"] == [str(POLICY_PACK)]
    configs = {s.config[CONFIG_KEY] for s in automation.stacks.values()}
    assert len(configs) == 3  # never two establishments on one stack


def test_a_failing_stack_does_not_hide_the_others() -> None:
    automation = FakeAutomation(failing={f"ght-lab-{FINESS[0]}"})
    results = run_stacks(plan_stacks(GHT_LAB), "up", select=automation.select, on_output=lambda _: None)
    assert [r.ok for r in results] == [False, True, True]
    assert "backend unreachable" not in results[1].summary and "RuntimeError" in results[0].summary
    assert automation.stacks[f"ght-lab-{FINESS[2]}"].calls[0][0] == "up"


def test_up_needs_yes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stacks", str(GHT_LAB), "--up"]) == 2
    assert "--yes" in capsys.readouterr().err


def test_list_prints_each_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stacks", str(GHT_LAB), "--list"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [
        f"ght-lab-{f}" for f in FINESS
    ]


@pulumi.runtime.test
def test_program_builds_each_ght_establishment_in_its_own_stack(mocks) -> None:
    import program

    plan = plan_stacks(GHT_LAB)[1]
    establishment = program.load_establishment((PULUMI_DIR / plan.config[CONFIG_KEY]).resolve())
    assert establishment.finess == plan.finess
    vault = program.build(establishment)

    def check(_: Any) -> None:
        providers = mocks.of_type("pulumi:providers:aws")
        assert providers and all(plan.finess in str(p.inputs.get("defaultTags")) for p in providers)
        recorded = str([r.inputs for r in mocks.resources])
        assert not [
            f for f in FINESS if f != plan.finess and f in recorded
        ]  # nothing of another establishment

    return pulumi.Output.all(*[r.urn for r in vault.resources]).apply(check)


def test_program_refuses_a_dataset_on_another_establishments_host(tmp_path: Path) -> None:
    import shutil
    import sys

    sys.path.insert(0, str(PULUMI_DIR))
    import program

    from rempart.model.validation import EstablishmentInvalid

    folder = tmp_path / "ght"
    shutil.copytree(GHT_LAB, folder)
    path = folder / "group_vars/ch_nord/establishment.yml"
    path.write_text(path.read_text().replace("host: mg-nord-files-01", "host: mg-sud-files-01"))
    with pytest.raises(EstablishmentInvalid, match="mg-sud-files-01"):
        program.load_establishment(path)
