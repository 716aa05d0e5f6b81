"""Helpers of tests/benchmarks/hardening.sh (run by `make bench-hardening`: the venv's python3, which has rempart):
boot-equivalent /proc/sys and XCCDF counts (rempart.commands.hardening_scan's, the scan evidence.yml runs), the table.

Subcommands:
  procsys ROOT SYSCTL_A         write ROOT/proc/sys/... from `sysctl -a` output (the kernel the target
                                runs on, as its namespaces show it) overlaid with the target's own sysctl.d
                                files in systemd-sysctl's order: what the kernel would hold right after this
                                system boots. An empty /proc/sys would fail every sysctl rule on every target.
  counts RESULTS.xml            pass/fail/notapplicable/... counts of one `oscap xccdf eval` result.
  table RESULTS.json            print the table.
  markdown RESULTS.json         the same table in Markdown, then every remaining failure per Rempart target
                                (for roles/hardening/README.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rempart.commands.hardening_scan import counts as scan_counts
from rempart.commands.hardening_scan import write_procsys


def procsys(root: Path, sysctl_a: Path) -> int:
    write_procsys(root, sysctl_a.read_text())
    return 0


def counts(results: Path) -> dict:
    """The scan's counts (rempart hardening-scan computes them the same way) and the pass rate of the table."""
    tally = scan_counts(results)
    scored = int(tally["pass"]) + int(tally["fail"])
    return {**tally, "rate": round(100.0 * int(tally["pass"]) / scored, 1) if scored else 0.0}


def _failed_cell(target: dict) -> str:
    """Failed/unreachable tasks of the first run (a row whose remediation stopped early is not a score),
    then the tasks ComplianceAsCode's copy ran past with ignore_errors."""
    failed = target.get("first_run_failed")
    if failed is None:
        return "-"
    ignored = target.get("first_run_ignored") or 0
    return f"{failed}{' INVALID' if failed else ''}{f' ({ignored} ignored)' if ignored else ''}"


def table(path: Path) -> int:
    data = json.loads(path.read_text())
    profiles = ["minimal", "intermediary", "enhanced"]
    header = f"{'target':<26}" + "".join(f"{p + ' p/f/na  %':>26}" for p in profiles)
    header += f"{'Lynis':>7}{'converge s':>12}{'1st run failed':>22}{'2nd run changed':>17}"
    print(header)
    print("-" * len(header))
    for target in data["targets"]:
        row = f"{target['label']:<26}"
        for profile in profiles:
            score = target["scores"].get(profile)
            cell = (
                f"{score['pass']}/{score['fail']}/{score['notapplicable']}  {score['rate']:5.1f}"
                if score
                else "-"
            )
            row += f"{cell:>26}"
        converge = target.get("converge_seconds")
        changed = target.get("second_run_changed")
        row += f"{target.get('lynis', '-')!s:>7}{'-' if converge is None else converge:>12}"
        row += f"{_failed_cell(target):>22}{'-' if changed is None else changed:>17}"
        print(row)
    return 0


def markdown(path: Path) -> int:
    data = json.loads(path.read_text())
    profiles = ["minimal", "intermediary", "enhanced"]
    print(
        f"{data['scanner']}, {data['content']}, {data['date']}; cells: pass / fail / not applicable, "
        "pass ÷ (pass + fail).\n"
    )
    print(
        "| target | " + " | ".join(profiles) + " | Lynis | converge (s) | 1st run failed | 2nd run changed |"
    )
    print("|---|" + "---|" * (len(profiles) + 4))
    for target in data["targets"]:
        cells = []
        for profile in profiles:
            score = target["scores"].get(profile)
            cells.append(
                f"{score['pass']}/{score['fail']}/{score['notapplicable']} **{score['rate']} %**"
                if score
                else "-"
            )
        converge = target.get("converge_seconds")
        changed = target.get("second_run_changed")
        print(
            f"| {target['label']} | "
            + " | ".join(cells)
            + f" | {target.get('lynis')} | {'-' if converge is None else converge}"
            + f" | {_failed_cell(target)} | {'-' if changed is None else changed} |"
        )
    for target in data["targets"]:
        if not target["label"].startswith("Rempart"):
            continue
        level = target["label"].split()[-1]
        print(
            f"\nRemaining failures, {target['label']} (profile anssi_bp28_{level}): "
            + ", ".join(f"`{rule}`" for rule in target["scores"][level]["failures"])
        )
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["procsys"]:
        return procsys(Path(argv[1]), Path(argv[2]))
    if argv[:1] == ["counts"]:
        print(json.dumps(counts(Path(argv[1]))))
        return 0
    if argv[:1] == ["table"]:
        return table(Path(argv[1]))
    if argv[:1] == ["markdown"]:
        return markdown(Path(argv[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
