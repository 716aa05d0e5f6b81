"""Helpers of tests/benchmarks/hardening.sh: boot-equivalent /proc/sys, XCCDF counts, the table and JSON.

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
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
SYSCTL_DIRS = ("etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d", "lib/sysctl.d")


def _sysctl_files(root: Path) -> list[Path]:
    """systemd-sysctl order: files sorted by name across folders, the first folder shadowing the others."""
    chosen: dict[str, Path] = {}
    for folder in SYSCTL_DIRS:
        directory = root / folder
        if directory.is_dir():
            for file in directory.glob("*.conf"):
                chosen.setdefault(file.name, file)
    files = [chosen[name] for name in sorted(chosen)]
    legacy = root / "etc/sysctl.conf"
    if legacy.exists() and "99-sysctl.conf" not in chosen:
        files.append(legacy)
    return files


def _resolve(root: Path, path: Path) -> Path:
    if path.is_symlink():
        target = Path(path.readlink())
        return root / str(target).lstrip("/") if target.is_absolute() else path.parent / target
    return path


def procsys(root: Path, sysctl_a: Path) -> int:
    values: dict[str, str] = {}
    for line in sysctl_a.read_text().splitlines():
        if " = " in line:
            key, value = line.split(" = ", 1)
            values[key.strip()] = value.strip()
    for file in _sysctl_files(root):
        for raw in _resolve(root, file).read_text(errors="replace").splitlines():
            line = raw.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            key = key.lstrip("-").replace("/", ".")
            # Keys the container cannot read (hidden from its namespaces) are still set at boot by the
            # Debian kernel the target would run: a key from the target's own files is always written.
            values[key] = " ".join(value.split())
    for key, value in values.items():
        target = root / "proc/sys" / key.replace(".", "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value.replace(" ", "\t") + "\n")
    return 0


def counts(results: Path) -> dict:
    tree = ET.parse(results)
    tally: Counter[str] = Counter()
    failures: list[str] = []
    for rule in tree.getroot().iter(f"{XCCDF}rule-result"):
        outcome = rule.findtext(f"{XCCDF}result")
        tally[outcome] += 1
        if outcome == "fail":
            failures.append(rule.get("idref", "").split("content_rule_")[-1])
    scored = tally["pass"] + tally["fail"]
    return {
        "pass": tally["pass"],
        "fail": tally["fail"],
        "notapplicable": tally["notapplicable"],
        "other": sum(
            v for k, v in tally.items() if k not in ("pass", "fail", "notapplicable", "notselected")
        ),
        "rate": round(100.0 * tally["pass"] / scored, 1) if scored else 0.0,
        "failures": sorted(failures),
    }


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
