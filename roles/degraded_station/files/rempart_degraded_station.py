#!/usr/bin/python3
"""Rempart degraded-mode station (role degraded_station): fetch the latest binder from the export host
(read-only SFTP, initiated by the station), verify its signature and checksums BEFORE anything else,
store it encrypted as a new generation (keep N), and publish the decrypted copy in RAM (/run) for the
local read-only web server. Standard library + openssh-client + openssl.

    rempart_degraded_station.py --config /etc/rempart/degraded-station.json fetch     # timer
    rempart_degraded_station.py --config ... restore     # boot: publish the newest stored good generation
    rempart_degraded_station.py --config ... list        # stored generations

A failed fetch or a rejected binder leaves the current copy untouched, logs an error to the journal,
sets rempart_degraded_station_fetch_success 0 and exits non-zero (the unit fails). Runs with the library
rempart_host (role program_library): ``python3 -I /usr/local/lib/rempart/python/rempart_run.py
/usr/local/lib/rempart-degraded/rempart_degraded_station.py --config ... fetch``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from rempart_host import program
from rempart_host.files import write_atomic
from rempart_host.journal import log
from rempart_host.metrics import read_prefixed, write_prefixed

GENERATION = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
BINDER_FILES = ("index.html", "binder.json")
MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sha256.sig"
ALL_FILES = {*BINDER_FILES, MANIFEST, SIGNATURE}
MAX_FILE_BYTES = 256 * 1024 * 1024


class Rejected(Exception):
    """The fetched binder failed verification: it must not replace the current copy."""


def remove_tree(path: Path) -> None:
    """Remove a published (read-only, 0555) folder: its owner must make it writable first."""
    if path.is_dir() and not path.is_symlink():
        path.chmod(0o755)
    shutil.rmtree(path)


class Station:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.state = Path(config["state_dir"])
        self.stored = self.state / "generations"
        self.serve = Path(config["serve_dir"])
        self.current = self.serve / "current"
        self.passphrase = Path(config["passphrase_file"])

    # ---------- verification -------------------------------------------------------------------------
    def verify(self, folder: Path, expected: str | None = None) -> dict[str, Any]:
        """Signature first, then every checksum, then the metadata. Raises Rejected."""
        present = {p.name for p in folder.iterdir()}
        if present != ALL_FILES:
            raise Rejected(f"unexpected file set {sorted(present)}; expected {sorted(ALL_FILES)}")
        for name in ALL_FILES:
            path = folder / name
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                raise Rejected(f"{name}: not a regular file of sane size")
        signature = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", self.config["public_key"], "-rawin",
             "-in", str(folder / MANIFEST), "-sigfile", str(folder / SIGNATURE)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if signature.returncode != 0 or "Signature Verified Successfully" not in signature.stdout:
            raise Rejected("manifest signature does not verify with the establishment's public key")
        listed: dict[str, str] = {}
        for line in (folder / MANIFEST).read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition("  ")
            listed[name] = digest
        if set(listed) != set(BINDER_FILES):
            raise Rejected(f"manifest lists {sorted(listed)}; expected {sorted(BINDER_FILES)}")
        for name, digest in listed.items():
            actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
            if actual != digest:
                raise Rejected(
                    f"{name}: checksum {actual[:16]}… differs from the signed manifest {digest[:16]}…"
                )
        meta = json.loads((folder / "binder.json").read_text(encoding="utf-8"))
        if expected is not None and meta.get("generation") != expected:
            raise Rejected(
                f"binder.json says generation {meta.get('generation')!r}, the outbox said {expected!r}"
            )
        if str(meta.get("finess")) != str(self.config["finess"]):
            raise Rejected(
                f"binder of FINESS {meta.get('finess')}, this station belongs to {self.config['finess']}"
            )
        return meta

    # ---------- encrypted storage ----------------------------------------------------------------------
    def stored_generations(self) -> list[str]:
        if not self.stored.is_dir():
            return []
        names = [p.name.removesuffix(".tar.enc") for p in self.stored.glob("*.tar.enc")]
        return sorted(n for n in names if GENERATION.match(n))

    def store(self, folder: Path, generation: str) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name in sorted(ALL_FILES):
                archive.add(folder / name, arcname=name)
        self.stored.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.stored / f"{generation}.tar.enc"
        temporary = self.stored / f".{generation}.tar.enc.tmp"
        subprocess.run(
            ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", "200000", "-md", "sha256", "-salt",
             "-pass", f"file:{self.passphrase}", "-out", str(temporary)],
            input=buffer.getvalue(), check=True, capture_output=True,
        )  # fmt: skip
        temporary.chmod(0o600)
        temporary.rename(target)
        keep = int(self.config["generations"])
        for old in self.stored_generations()[:-keep]:
            (self.stored / f"{old}.tar.enc").unlink()

    def unpack(self, generation: str, into: Path) -> None:
        decrypted = subprocess.run(
            ["openssl", "enc", "-d", "-aes-256-cbc", "-pbkdf2", "-iter", "200000", "-md", "sha256",
             "-pass", f"file:{self.passphrase}", "-in", str(self.stored / f"{generation}.tar.enc")],
            check=False, capture_output=True,
        )  # fmt: skip
        if decrypted.returncode != 0:
            raise Rejected(f"stored generation {generation} does not decrypt")
        with tarfile.open(fileobj=io.BytesIO(decrypted.stdout)) as archive:
            for member in archive.getmembers():
                if member.name not in ALL_FILES or not member.isfile():
                    raise Rejected(f"stored generation {generation}: unexpected member {member.name!r}")
                data = archive.extractfile(member)
                assert data is not None
                (into / member.name).write_bytes(data.read())

    # ---------- publication (RAM, read by the web server) ----------------------------------------------
    def current_generation(self) -> str | None:
        try:
            meta = json.loads((self.current / "binder.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta.get("generation")

    def install(self, folder: Path, generation: str) -> None:
        """Copy a VERIFIED generation into RAM, read-only: serve/gen-<id>/."""
        self.serve.mkdir(parents=True, exist_ok=True)
        target = self.serve / f"gen-{generation}"
        if target.exists():
            return
        staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=self.serve))
        for name in ALL_FILES:
            shutil.copyfile(folder / name, staging / name)
            (staging / name).chmod(0o444)
        staging.chmod(0o555)
        staging.rename(target)

    def switch(self, generation: str) -> None:
        """Point serve/current at gen-<id> (atomic rename of a symlink)."""
        link = self.serve / ".current.tmp"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f"gen-{generation}")
        link.rename(self.current)

    def tidy(self) -> None:
        """Drop RAM copies of generations no longer stored, then rewrite the history page."""
        keep = {f"gen-{g}" for g in self.stored_generations()}
        target = os.readlink(self.current) if self.current.is_symlink() else None
        for entry in self.serve.iterdir():
            if entry.is_dir() and not entry.is_symlink() and entry.name not in keep and entry.name != target:
                try:
                    remove_tree(entry)
                except OSError as error:  # the new copy is published; say so, do not fail the fetch
                    log(f"rempart-degraded-station: could not remove the RAM copy {entry.name}: {error}", 4)
        self.write_history()

    def write_history(self) -> None:
        """serve/index.html (served as /generations/): the generations held, in French, no script."""
        current = self.current_generation()
        rows = []
        for folder in sorted(self.serve.glob("gen-*"), reverse=True):
            try:
                meta = json.loads((folder / "binder.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            mark = " (copie courante)" if meta.get("generation") == current else ""
            rows.append(
                f'<li><a href="{html.escape(folder.name)}/index.html">État au '
                f"{html.escape(str(meta.get('cutoff_local')))}</a> — {int(meta.get('patients_count', 0))} "
                f"patients — génération {html.escape(str(meta.get('generation')))}{mark}</li>"
            )
        page = (
            '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
            "<title>Générations du classeur mode dégradé</title></head><body>"
            "<h1>Générations du classeur mode dégradé conservées sur ce poste</h1>"
            "<p>Chaque génération a été vérifiée (signature et empreintes) avant d'être conservée, chiffrée. "
            "Consulter une génération plus ancienne seulement si la plus récente paraît erronée.</p>"
            f'<ul>{"".join(rows)}</ul><p><a href="/">Retour au classeur courant</a></p></body></html>\n'
        )
        write_atomic(self.serve / "index.html", page, mode=0o444)

    def publish(self, folder: Path, generation: str) -> None:
        self.install(folder, generation)
        self.switch(generation)
        self.tidy()

    def restore(self) -> str | None:
        """Republish every stored generation that decrypts and verifies, the newest as current (boot)."""
        newest = None
        for generation in self.stored_generations():
            with tempfile.TemporaryDirectory(dir=self.state) as temporary:
                folder = Path(temporary)
                try:
                    self.unpack(generation, folder)
                    self.verify(folder, generation)
                except (Rejected, OSError, tarfile.TarError) as error:
                    log(f"rempart-degraded-station: stored generation {generation} skipped: {error}", 3)
                    continue
                self.install(folder, generation)
                newest = generation
        if newest is not None:
            self.switch(newest)
            self.tidy()
            log(f"rempart-degraded-station: published stored generations, current {newest}", 6)
        return newest

    # ---------- fetch ----------------------------------------------------------------------------------
    def sftp(self, commands: str) -> None:
        config = self.config
        result = subprocess.run(
            ["sftp", "-q", "-b", "-", "-i", config["ssh_key"], "-P", str(config["export_port"]),
             "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
             "-o", f"UserKnownHostsFile={config['known_hosts']}", "-o", "ConnectTimeout=15",
             "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3",
             f"{config['fetch_user']}@{config['export_address']}"],
            input=commands, text=True, capture_output=True, check=False, timeout=600,
        )  # fmt: skip
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise ConnectionError(f"sftp to {config['export_address']} failed: {' / '.join(detail[-3:])}")

    def fetch(self) -> tuple[str, str]:
        """Returns (status, generation): status is 'new' or 'unchanged'. Raises on failure/rejection."""
        incoming = self.state / "incoming"
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir(mode=0o700)
        self.sftp(f"get generations/LATEST {incoming}/LATEST\n")
        generation = (incoming / "LATEST").read_text(encoding="utf-8").strip()
        if not GENERATION.match(generation):
            raise Rejected(f"LATEST names {generation!r}, not a generation")
        current = self.current_generation()
        stored = self.stored_generations()
        if current == generation or (stored and stored[-1] == generation):
            return "unchanged", generation
        newest = max(filter(None, [current, *(stored[-1:])]), default=None)
        if newest and generation < newest:
            raise Rejected(f"outbox offers {generation}, older than {newest} already held (replay refused)")
        folder = incoming / generation
        folder.mkdir()
        self.sftp(
            "".join(f"get generations/{generation}/{name} {folder}/{name}\n" for name in sorted(ALL_FILES))
        )
        self.verify(folder, generation)  # before anything replaces the current copy
        self.store(folder, generation)
        self.publish(folder, generation)
        shutil.rmtree(incoming, ignore_errors=True)
        return "new", generation


PREFIX = "rempart_degraded_station_"


def cutoff_of(station: Station) -> float | None:
    try:
        meta = json.loads((station.current / "binder.json").read_text(encoding="utf-8"))
        return dt.datetime.fromisoformat(meta["cutoff_iso"].replace("Z", "+00:00")).timestamp()
    except (OSError, ValueError, KeyError):
        return None


def command_fetch(station: Station) -> int:
    config = station.config
    metrics = read_prefixed(config["metrics_file"], PREFIX) if config.get("metrics_file") else {}
    status = 0
    if station.current_generation() is None:
        station.restore()
    try:
        outcome, generation = station.fetch()
        log(f"rempart-degraded-station: fetch ok: generation {generation} ({outcome})", 6)
        metrics |= {"fetch_success": 1, "last_success_timestamp_seconds": int(time.time())}
    except Rejected as error:
        log(f"rempart-degraded-station: ALERT binder REJECTED, current copy kept: {error}", 3)
        metrics |= {"fetch_success": 0, "rejected": 1, "last_failure_timestamp_seconds": int(time.time())}
        status = 2
    except (ConnectionError, OSError, subprocess.SubprocessError) as error:
        log(f"rempart-degraded-station: ALERT fetch FAILED, current copy kept: {error}", 3)
        metrics |= {"fetch_success": 0, "last_failure_timestamp_seconds": int(time.time())}
        status = 1
    else:
        metrics["rejected"] = 0
    cutoff = cutoff_of(station)
    limit = float(config["staleness_limit_hours"]) * 3600
    stale = cutoff is None or time.time() - cutoff > limit
    metrics |= {
        "current_cutoff_timestamp_seconds": int(cutoff or 0),
        "stale": int(stale),
        "generations_stored": len(station.stored_generations()),
    }
    if stale:
        log(
            "rempart-degraded-station: ALERT the current binder is older than the staleness limit (or absent)",
            3,
        )
    if config.get("metrics_file"):
        write_prefixed(config["metrics_file"], PREFIX, metrics, "degraded-mode station")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rempart degraded-mode station")
    parser.add_argument("--config", required=True)
    parser.add_argument("action", choices=("fetch", "restore", "list"))
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    metrics_dir = Path(config["metrics_file"]).parent if config.get("metrics_file") else None
    return program.run(lambda: act(Station(config), args.action), program=f"degraded-station-{args.action}",
                       metrics_dir=metrics_dir)  # fmt: skip


def act(station: Station, action: str) -> int:
    if action == "fetch":
        return command_fetch(station)
    if action == "restore":
        return 0 if station.restore() else 1
    current = station.current_generation()
    for generation in station.stored_generations():
        print(f"{generation}{'  (current)' if generation == current else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
