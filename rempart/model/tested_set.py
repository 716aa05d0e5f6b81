"""The tested set of Debian packages: the exact versions and checksums the project's tests ran against.

``rempart/model/tested-packages.txt`` lists every package of the lab's apt mirror (``lab/packages.txt`` and their
dependencies, restic and rest-server among them) as ``name version architecture sha256``. Debian removes superseded
versions from its archive and security updates move them, so a build never fails on drift: it reports every
difference from the tested set (``rempart tested-set compare``, printed by ``lab/build-image.sh`` and ``make demo``),
and the evidence report lists each host's installed versions against it.

    rempart tested-set compare --mirror .lab/repo        # what the lab mirror holds today
    rempart tested-set compare --installed host.json     # {"package": "version"} of one host
    rempart tested-set record --mirror .lab/repo         # after make test passed with that mirror
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Literal

TESTED_SET = Path(str(files("rempart.model") / "tested-packages.txt"))

Kind = Literal["version", "checksum", "missing", "untested"]


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    architecture: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Difference:
    name: str
    kind: Kind
    tested: str  # version in the tested set ("" when untested)
    found: str  # version found ("" when missing)

    def describe(self) -> str:
        return {
            "version": f"{self.name}: {self.found} (testé : {self.tested})",
            "checksum": f"{self.name}: {self.found}, somme de contrôle différente de celle testée",
            "missing": f"{self.name}: absent (testé : {self.tested})",
            "untested": f"{self.name}: {self.found}, hors du jeu testé",
        }[self.kind]


def read_tested(path: Path = TESTED_SET) -> dict[str, Package]:
    packages = {}
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            name, version, architecture, sha256 = fields
            packages[name] = Package(name, version, architecture, sha256)
    return packages


def read_mirror(folder: Path) -> dict[str, Package]:
    """The packages of a flat apt repository, from its ``Packages`` index (dpkg-scanpackages)."""
    packages: dict[str, Package] = {}
    for stanza in (folder / "Packages").read_text().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" ")
        )
        if "Package" in fields:
            name = fields["Package"]
            packages[name] = Package(
                name, fields["Version"], fields.get("Architecture", ""), fields["SHA256"]
            )
    return packages


def write_tested(packages: dict[str, Package], path: Path = TESTED_SET) -> None:
    lines = [
        "# The tested set: every package of the lab's apt mirror when make test last passed (rempart/model/tested_set.py).",
        "# name version architecture sha256 — rewritten by `rempart tested-set record --mirror .lab/repo`.",
        *(f"{p.name} {p.version} {p.architecture} {p.sha256}" for _, p in sorted(packages.items())),
    ]
    path.write_text("\n".join(lines) + "\n")


def compare_mirror(tested: dict[str, Package], mirror: dict[str, Package]) -> list[Difference]:
    """Every difference between a mirror and the tested set, both ways."""
    differences = []
    for name in sorted(set(tested) | set(mirror)):
        was, now = tested.get(name), mirror.get(name)
        if now is None:
            differences.append(Difference(name, "missing", was.version if was else "", ""))
        elif was is None:
            differences.append(Difference(name, "untested", "", now.version))
        elif was.version != now.version:
            differences.append(Difference(name, "version", was.version, now.version))
        elif was.sha256 != now.sha256:
            differences.append(Difference(name, "checksum", was.version, now.version))
    return differences


def compare_installed(tested: dict[str, Package], installed: dict[str, str]) -> list[Difference]:
    """A host's installed versions of the tested packages (packages the project does not bring are not judged)."""
    return [
        Difference(name, "version", tested[name].version, version)
        for name, version in sorted(installed.items())
        if name in tested and tested[name].version != version
    ]


def _compare(args: argparse.Namespace) -> int:
    tested = read_tested(args.tested)
    if args.mirror:
        differences = compare_mirror(tested, read_mirror(args.mirror))
        what = f"mirror {args.mirror} ({len(tested)} packages tested)"
    else:
        installed = json.loads(args.installed.read_text())
        differences = compare_installed(tested, installed)
        what = f"{args.installed} ({len([n for n in installed if n in tested])} tested packages installed)"
    if not differences:
        print(f"tested set: {what}: no difference")
        return 0
    print(f"tested set: {what}: {len(differences)} difference(s) (reported, not refused)")
    for difference in differences:
        print(f"  {difference.describe()}")
    return 1 if args.strict else 0


def _record(args: argparse.Namespace) -> int:
    packages = read_mirror(args.mirror)
    write_tested(packages, args.tested)
    print(f"tested set: {len(packages)} packages recorded from {args.mirror} into {args.tested}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tested-set", help="compare packages with the tested set, or record it")
    actions = parser.add_subparsers(dest="action", required=True)
    compare = actions.add_parser("compare", help="print every difference from the tested set")
    source = compare.add_mutually_exclusive_group(required=True)
    source.add_argument("--mirror", type=Path, help="a flat apt repository (its Packages index)")
    source.add_argument("--installed", type=Path, help='JSON {"package": "version"} of one host')
    compare.add_argument("--strict", action="store_true", help="exit 1 when anything differs")
    compare.add_argument("--tested", type=Path, default=TESTED_SET, help=argparse.SUPPRESS)
    compare.set_defaults(handler=_compare)
    record = actions.add_parser("record", help="make a mirror's packages the tested set")
    record.add_argument("--mirror", type=Path, required=True)
    record.add_argument("--tested", type=Path, default=TESTED_SET, help=argparse.SUPPRESS)
    record.set_defaults(handler=_record)
