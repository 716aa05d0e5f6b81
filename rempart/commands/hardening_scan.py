"""``rempart hardening-scan``: score one host against ANSSI-BP-028 with OpenSCAP, offline, on the control node.

The host's root file tree (an archive playbooks/evidence.yml makes with tar and fetches) is unpacked inside a
scanner chroot holding OpenSCAP >= 1.4 and ssg-debian 0.1.76 from Debian trixie (bookworm's OpenSCAP 1.3.7 fails
offline dpkg probes and its ssg 0.1.65 has no Debian 12 content), its /proc/sys is rebuilt as the host's kernel
would hold it after boot (``sysctl -a`` from the host overlaid with its sysctl.d files), and ``oscap xccdf eval``
runs the profile of the host's declared level with OSCAP_PROBE_ROOT pointing at the tree: nothing runs on the
host, nothing of the scanner touches this machine's kernel settings. The result is written as
``reports/<finess>/hardening/<host>.json`` (rempart.reports.results.HardeningScore), the XCCDF results beside it.
The same method as tests/benchmarks/hardening.sh. Needs root (unpacking with owners, chroot) and debootstrap
the first time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

DATASTREAM = "/usr/share/xml/scap/ssg/content/ssg-debian12-ds.xml"
PROFILE = "xccdf_org.ssgproject.content_profile_anssi_bp28_{level}"
SCANNER_PACKAGES = "openscap-scanner,openscap-utils,ssg-debian"
XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
SYSCTL_DIRS = ("etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d", "lib/sysctl.d")


class ScanError(RuntimeError):
    pass


def ensure_scanner(scanner: Path, mirror: str) -> None:
    """The trixie scanner chroot, built once with debootstrap, then reused."""
    if (scanner / "usr/bin/oscap").exists() and (scanner / DATASTREAM.lstrip("/")).exists():
        return
    if shutil.which("debootstrap") is None:
        raise ScanError("debootstrap is not installed: apt-get install debootstrap (builds the scanner once)")
    if scanner.exists():
        mounted = [p for p in (scanner / "proc", scanner / "sys", scanner / "dev") if os.path.ismount(p)]
        if mounted:
            raise ScanError(f"{', '.join(map(str, mounted))} still mounted: umount, then run again")
        shutil.rmtree(scanner)  # a half-built scanner (interrupted debootstrap)
    scanner.parent.mkdir(parents=True, exist_ok=True)
    built = subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={SCANNER_PACKAGES}", "trixie", str(scanner), mirror],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise ScanError(f"debootstrap of the scanner failed ({built.returncode}): {built.stderr[-800:]}")


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


def _inside(root: Path, path: Path) -> Path:
    """A symlink of the tree resolved inside the tree, never on this machine."""
    if path.is_symlink():
        target = Path(os.readlink(path))
        return root / str(target).lstrip("/") if target.is_absolute() else path.parent / target
    return path


def write_procsys(root: Path, sysctl_a: str) -> None:
    """root/proc/sys as the host's kernel would hold it right after boot (an empty /proc/sys would fail every
    sysctl rule): the host's ``sysctl -a`` overlaid with its own sysctl.d files."""
    values: dict[str, str] = {}
    for line in sysctl_a.splitlines():
        if " = " in line:
            key, value = line.split(" = ", 1)
            values[key.strip()] = value.strip()
    for file in _sysctl_files(root):
        source = _inside(root, file)
        if not source.is_file():
            continue
        for raw in source.read_text(errors="replace").splitlines():
            line = raw.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            values[key.lstrip("-").replace("/", ".")] = " ".join(value.split())
    for key, value in values.items():
        target = root / "proc/sys" / key.replace(".", "/")
        if ".." in key.split("."):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value.replace(" ", "\t") + "\n")


def counts(results: Path) -> dict[str, object]:
    """pass / fail / notapplicable / other counts of an XCCDF result, and the failed rules."""
    tally: Counter[str] = Counter()
    failures = []
    for rule in ET.parse(results).getroot().iter(f"{XCCDF}rule-result"):
        outcome = rule.findtext(f"{XCCDF}result") or ""
        tally[outcome] += 1
        if outcome == "fail":
            failures.append(rule.get("idref", "").split("content_rule_")[-1])
    return {
        "pass": tally["pass"],
        "fail": tally["fail"],
        "notapplicable": tally["notapplicable"],
        "other": sum(
            v for k, v in tally.items() if k not in ("pass", "fail", "notapplicable", "notselected")
        ),
        "failures": sorted(failures),
    }


def scan(
    scanner: Path, archive: Path, sysctl_a: str, host: str, level: str, results: Path
) -> dict[str, object]:
    """Unpack ``archive`` inside the scanner, scan it at ``level``, return the HardeningScore document."""
    (scanner / "mnt").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scanner / "mnt", prefix="target-") as tree_dir:
        tree = Path(tree_dir)
        unpacked = subprocess.run(
            ["tar", "--numeric-owner", "--same-permissions", "-xf", str(archive), "-C", str(tree)],
            capture_output=True,
            text=True,
            check=False,
        )
        if unpacked.returncode not in (0, 1):  # 1: a file changed while it was archived
            raise ScanError(f"cannot unpack {archive}: {unpacked.stderr[-500:]}")
        write_procsys(tree, sysctl_a)
        inside = f"/mnt/{tree.name}"
        proc = scanner / "proc"
        proc.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
        try:
            evaluated = subprocess.run(
                ["chroot", str(scanner), "env", f"OSCAP_PROBE_ROOT={inside}", "oscap", "xccdf", "eval",
                 "--profile", PROFILE.format(level=level), "--results", f"/tmp/{host}.xml", DATASTREAM],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            version = subprocess.run(
                ["chroot", str(scanner), "dpkg-query", "-W", "-f", "${Version}", "ssg-debian"],
                capture_output=True, text=True, check=False,
            ).stdout.strip()  # fmt: skip
        finally:
            subprocess.run(["umount", str(proc)], check=False)
    produced = scanner / "tmp" / f"{host}.xml"
    if evaluated.returncode not in (0, 2) or not produced.exists():  # 2: some rules failed
        raise ScanError(f"oscap failed on {host} ({evaluated.returncode}): {evaluated.stderr[-800:]}")
    shutil.move(produced, results)
    return {
        "host": host,
        "profile": PROFILE.format(level=level),
        "level": level,
        "scanned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "content": f"ssg-debian {version}",
        **counts(results),
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hardening-scan", help="score a host's file tree against ANSSI-BP-028 (OpenSCAP, offline; root)"
    )
    parser.add_argument("--archive", type=Path, required=True, help="tar of the host's root file tree")
    parser.add_argument("--sysctl", type=Path, required=True, help="the host's `sysctl -a` output")
    parser.add_argument("--host", required=True)
    parser.add_argument("--level", required=True, choices=("minimal", "intermediary", "enhanced"))
    parser.add_argument("--json", type=Path, required=True, help="reports/<finess>/hardening/<host>.json")
    parser.add_argument("--scanner", type=Path, default=Path("/var/cache/rempart/oscap-trixie"))
    parser.add_argument("--mirror", default="http://deb.debian.org/debian")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("hardening-scan needs root (unpacking with owners, chroot of the scanner)")
        return 2
    try:
        ensure_scanner(args.scanner, args.mirror)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = scan(
            args.scanner, args.archive, args.sysctl.read_text(errors="replace"), args.host, args.level,
            args.json.with_suffix(".xml"),
        )  # fmt: skip
    except (ScanError, OSError, subprocess.CalledProcessError) as error:
        print(f"{args.host}: {error}")
        return 1
    args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    judged = int(document["pass"]) + int(document["fail"])  # type: ignore[call-overload]
    print(f"{args.host}: {document['pass']}/{judged} rules passed at {args.level} ({args.json})")
    return 0
