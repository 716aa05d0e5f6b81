#!/usr/bin/env python3
"""What admission (issue 15, item 1) and the server's own measures (item 4) cost, next to the restic backup they
judge: one local repository, the same data, one process at a time (no lab needed).

  .venv/bin/python tests/benchmarks/admission.py [MiB] [restic binary]      # default 500 MiB, /usr/bin/restic

Prints, for a full backup then an incremental one after a 2 % change: restic backup's wall/CPU time, the
admission judgement (pack sha256, index decryption and checks, snapshot tree walk), the server's file digests
of a 16-file sample, and a dump's rows/row-sample pass; and each as a share of the backup's time.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "roles/program_library/files"), str(ROOT / "roles/backup_server/files")]

from rempart_backup_server.admission import Admission, Expected  # noqa: E402
from rempart_backup_server.evidence import choose_files, dump_evidence, file_digests  # noqa: E402
from rempart_host.restic import Restic  # noqa: E402


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(step):
    wall, used = time.monotonic(), cpu()
    result = step()
    return result, time.monotonic() - wall, cpu() - used


def generate(source: Path, mib: int) -> None:
    """Half compressible documents (64 KiB), half incompressible images (4 MiB), like the backup benchmark."""
    docs, images = source / "docs", source / "images"
    docs.mkdir(parents=True)
    images.mkdir()
    line = b"Compte rendu d'hospitalisation, patient fictif, service de cardiologie. " * 8 + b"\n"
    for i in range(mib * 8):  # mib/2 MiB of 64 KiB documents
        (docs / f"doc-{i:05d}.txt").write_bytes(line * 110 + os.urandom(512))
    for i in range(mib // 8):  # mib/2 MiB of 4 MiB images
        (images / f"img-{i:04d}.dcm").write_bytes(os.urandom(4 << 20))


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    binary = sys.argv[2] if len(sys.argv) > 2 else "/usr/bin/restic"
    work = Path(tempfile.mkdtemp(prefix="rempart-admission-bench-"))
    try:
        source, repo = work / "src", work / "repo"
        generate(source, mib)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "RESTIC_PASSWORD": "bench-password",
               "RESTIC_REPOSITORY": str(repo), "RESTIC_CACHE_DIR": str(work / "cache")}  # fmt: skip
        restic = Restic(binary, env)
        restic.run("init")
        gate = Admission(
            repo, work / "state/admission.sqlite", work / "state/quarantine", Restic(binary, env)
        )
        _, sweep_s, _ = timed(gate.sweep)
        print(f"{mib} MiB, {sum(1 for _ in source.rglob('*'))} entries, {binary} ({os.cpu_count()} cores)")
        print(f"first sweep (record the repository, list its blobs): {sweep_s:.2f} s")
        print(f"{'step':44} {'wall s':>8} {'CPU s':>8} {'share of backup':>16}")
        for label in ("full", "incremental (2 % changed)"):
            if label.startswith("incremental"):
                for path in sorted(source.rglob("doc-*"))[::50]:
                    path.write_bytes(path.read_bytes()[:-512] + os.urandom(512))
            started = time.time()
            _, backup_s, backup_cpu = timed(
                lambda: restic.run("backup", "--host", "bench", "-q", str(source))
            )
            expected = Expected("bench", [str(source)], started - 1, time.time())
            verdict, judge_s, judge_cpu = timed(lambda e=expected: gate.judge(e, True))
            assert verdict.snapshot and not verdict.rejected, verdict
            files = [str(p) for p in source.rglob("*") if p.is_file()]
            chosen = choose_files(files, {f: os.path.getsize(f) for f in files}, 16, 256 << 20)
            _, digest_s, digest_cpu = timed(
                lambda v=verdict, c=chosen: file_digests(restic, v.snapshot, c, work / "scratch")
            )
            print(f"{label + ': restic backup':44} {backup_s:8.2f} {backup_cpu:8.2f} {'':>16}")
            print(f"{'  admission (judge)':44} {judge_s:8.2f} {judge_cpu:8.2f} {judge_s / backup_s:15.0%}")
            print(f"{'  server digests (16 files, <= 256 MiB)':44} {digest_s:8.2f} {digest_cpu:8.2f} "
                  f"{digest_s / backup_s:15.0%}")  # fmt: skip
        dump = b"COPY public.actes (id, body) FROM stdin;\n" + b"".join(
            b"%d\tacte %d du patient fictif, note clinique\n" % (i, i) for i in range(2_000_000)
        ) + b"\\.\n"  # fmt: skip
        started = time.time()
        _, dump_backup_s, _ = timed(lambda: subprocess.run([binary, "backup", "--host", "bench", "-q", "--stdin",
                                    "--stdin-filename", "dpi.sql"], input=dump, env=env, check=True))  # fmt: skip
        verdict = gate.judge(Expected("bench", ["/dpi.sql"], started - 1, time.time()), True)
        evidence, dump_s, dump_cpu = timed(lambda: dump_evidence(restic, verdict.snapshot, "/dpi.sql"))
        print(
            f"{'dump of ' + str(len(dump) >> 20) + ' MiB, 2,000,000 rows: restic backup':44} {dump_backup_s:8.2f}"
        )
        print(f"{'  server rows + row sample (restic dump)':44} {dump_s:8.2f} {dump_cpu:8.2f} "
              f"{dump_s / dump_backup_s:15.0%}")  # fmt: skip
        assert evidence["rows"] == {"public.actes": 2_000_000}
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
