"""``rempart stacks``: preview or update the offsite stack of every establishment of an inventory (a GHT has
one per legal entity) with the Pulumi Automation API, from the inventory itself.

Each establishment gets its own stack of the ``pulumi/`` program (its own bucket, identities and state: nothing
shared between establishments), named ``<inventory>`` for a single-establishment inventory (as
``Pulumi.lab.yaml``) and ``<inventory>-<finess>`` in a GHT, configured with its establishment file
(``rempart:establishmentFile``). Every preview and update runs the policy pack ``pulumi/policy``.
``--up`` needs ``--yes``: COMPLIANCE-mode Object Lock cannot be undone (docs/offsite.md).

The Pulumi CLI and a backend (``pulumi login``) are needed to run it; the tests replace the Automation API
entry point (``select``) and check the stacks and configuration it asks for.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rempart.model.ght import establishment_sources
from rempart.model.inventory import load_establishment_data
from rempart.model.validation import load_valid

PULUMI_DIR = Path(__file__).resolve().parents[2] / "pulumi"
POLICY_PACK = PULUMI_DIR / "policy"
CONFIG_KEY = "rempart:establishmentFile"


@dataclass(frozen=True)
class StackPlan:
    """One establishment's offsite stack: its name and the configuration the Pulumi program reads."""

    name: str
    finess: str
    establishment: str
    config: dict[str, str]


def plan_stacks(inventory: Path, pulumi_dir: Path = PULUMI_DIR) -> list[StackPlan]:
    """One stack per establishment of the inventory, each validated like ``rempart validate``."""
    sources = establishment_sources(inventory)
    single = len(sources) == 1 and sources[0].group == "all"
    plans = []
    for source in sources:
        establishment = load_valid(load_establishment_data(source.path), source.hosts)
        name = inventory.resolve().name + ("" if single else f"-{establishment.finess}")
        relative = os.path.relpath(source.path.resolve(), pulumi_dir.resolve())
        plans.append(StackPlan(name, establishment.finess, establishment.name, {CONFIG_KEY: relative}))
    return plans


Select = Callable[..., Any]


def _automation_select() -> Select:
    from pulumi import automation

    return automation.create_or_select_stack


def _config_values(config: dict[str, str]) -> dict[str, Any]:
    from pulumi.automation import ConfigValue

    return {key: ConfigValue(value=value) for key, value in config.items()}


@dataclass(frozen=True)
class StackResult:
    plan: StackPlan
    ok: bool
    summary: str


def run_stacks(
    plans: Sequence[StackPlan],
    action: str,
    pulumi_dir: Path = PULUMI_DIR,
    select: Select | None = None,
    on_output: Callable[[str], Any] = print,
) -> list[StackResult]:
    """Preview (``action="preview"``) or update (``"up"``) every stack, one after the other; a failing stack
    does not stop the others and is reported."""
    select = select or _automation_select()
    results = []
    for plan in plans:
        try:
            stack = select(stack_name=plan.name, work_dir=str(pulumi_dir))
            stack.set_all_config(_config_values(plan.config))
            options = {"policy_packs": [str(POLICY_PACK)], "on_output": on_output}
            if action == "preview":
                outcome = stack.preview(**options)
                summary = _changes(getattr(outcome, "change_summary", None))
            else:
                outcome = stack.up(**options)
                summary = _changes(getattr(getattr(outcome, "summary", None), "resource_changes", None))
            results.append(StackResult(plan, True, summary))
        except Exception as error:  # one establishment's failure must not hide the others'
            results.append(StackResult(plan, False, f"{type(error).__name__}: {error}"))
    return results


def _changes(changes: Any) -> str:
    if not changes:
        return "no change"
    return ", ".join(f"{kind}={count}" for kind, count in sorted(dict(changes).items()))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stacks", help="preview or update the offsite stack of every establishment (Pulumi Automation API)"
    )
    parser.add_argument("inventory", type=Path, help="inventories/<name> (one establishment or a GHT)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--preview", dest="action", action="store_const", const="preview", help="default")
    action.add_argument("--up", dest="action", action="store_const", const="up", help="create/update")
    action.add_argument(
        "--list", dest="action", action="store_const", const="list", help="stacks and config only"
    )
    parser.add_argument("--yes", action="store_true", help="confirm --up (COMPLIANCE locks cannot be undone)")
    parser.set_defaults(handler=_run, action="preview")


def _run(args: argparse.Namespace) -> int:
    plans = plan_stacks(args.inventory)
    if args.action == "list":
        for plan in plans:
            print(f"{plan.name}\t{plan.finess}\t{plan.config[CONFIG_KEY]}")
        return 0
    if args.action == "up" and not args.yes:
        print(
            "refusing --up without --yes: Object Lock COMPLIANCE retention cannot be shortened",
            file=sys.stderr,
        )
        return 2
    results = run_stacks(plans, args.action)
    for result in results:
        status = "ok" if result.ok else "FAILED"
        print(f"{result.plan.name} ({result.plan.finess}): {args.action} {status}: {result.summary}")
    return 0 if all(r.ok for r in results) else 1
