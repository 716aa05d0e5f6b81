#!/usr/bin/python3
"""Rempart offline copy: rotated LUKS2 removable media with a provable "disconnected" state (BP100-OPS-02).

Installed by the Ansible role ``offline_copy`` on the backup server (python3 of Debian 12, standard library only,
and the library rempart_host: role program_library), run as ``python3 -I /usr/local/lib/rempart/python/rempart_run.py
/usr/local/lib/rempart/rempart_offline_copy.py ACTION``:

  attach KERNEL   (rempart-offline-attach@KERNEL.service, started by udev when a disk appears)
                  identify the medium (declared serial / LUKS2 UUID; anything else is refused, untouched),
                  open it with its key, restic copy the TRUSTED snapshots of every repository (the backup
                  server's rule, rempart_backup_server.trust: admitted, no anomaly, before any open hold), verify (restic check reading a sample of
                  the data, all of it for vital datasets), record medium, contents, checksums and time in the
                  offline ledger, then unmount, close, power off the disk and record when it went offline
  status          (rempart-offline-status.timer) rotation alerts: newest copy older than the policy, unknown
                  medium attached, medium attached longer than a job; Prometheus textfile + journal, exit 1
  enroll ID DEV   (admin, root) format a declared medium with LUKS2 + ext4 (its key from the vault), then copy
  ledger          (admin) print the offline ledger

Requirements: BP100-OPS-02 (offline copy, disconnected state, age alert), BP100-DATA-03/04 (keys held by the
establishment, encryption of every medium), BP100-OPS-01 (3-2-1 evidence), HDS-03.
Keys and repository passwords reach cryptsetup and restic through files and the environment, never argv or logs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rempart_backup_server.admission import server_key
from rempart_backup_server.trust import trusted_ids
from rempart_host import alert as alert_command
from rempart_host import program
from rempart_host.block_devices import disk_of, in_use, partitions_of, power_off, udev_properties
from rempart_host.files import locked, read_json, write_atomic
from rempart_host.journal import log
from rempart_host.ledger import Ledger
from rempart_host.metrics import Sample, write_samples
from rempart_host.restic import Restic
from rempart_host.secrets import repository_password

CONFIG = Path(os.environ.get("REMPART_OFFLINE_CONFIG", "/etc/rempart/offline-copy.json"))
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 64
SPACE_MARGIN = 1.10  # restic writes packs, indexes and a snapshot on top of the raw data


class Refused(Exception):
    """The medium or the situation is refused before anything is written to the medium."""


def state(config: dict[str, Any], *parts: str) -> Path:
    return Path(config["state_dir"]).joinpath(*parts)


def run(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(
            f"{argv[0]} {argv[1]} failed ({result.returncode}): {result.stderr.strip()[-600:]}"
        )
    return result.stdout


@contextlib.contextmanager
def global_lock(config: dict[str, Any]) -> Iterator[None]:
    """One medium at a time: attach jobs and enrolment queue here."""
    with locked(state(config, "offline.lock")):
        yield


# --------------------------------------------------------------------------- ledger and metrics


def ledger(config: dict[str, Any]) -> Ledger:
    return Ledger(state(config, "ledger.jsonl"))


# --------------------------------------------------------------------------- devices


def identify(config: dict[str, Any], props: dict[str, str]) -> dict[str, Any] | None:
    """The declared medium matching the device's serial or LUKS2 UUID (both must match when both are declared)."""
    serial = props.get("ID_SERIAL_SHORT", "")
    luks_uuid = props.get("ID_FS_UUID", "") if props.get("ID_FS_TYPE") == "crypto_LUKS" else ""
    for medium in config["media"]:
        by_serial = bool(medium.get("serial")) and medium["serial"] == serial
        by_uuid = bool(medium.get("uuid")) and medium["uuid"] == luks_uuid
        if by_serial or by_uuid:
            if medium.get("serial") and medium.get("uuid") and luks_uuid and not (by_serial and by_uuid):
                raise Refused(
                    f"device serial {serial!r} / LUKS UUID {luks_uuid!r} matches medium {medium['id']} only in part: "
                    "refused (a swapped disk or a re-formatted medium); check the inventory"
                )
            return medium
    return None


# --------------------------------------------------------------------------- restic


def restic_env(config: dict[str, Any], dataset: str, repository: Path) -> dict[str, str]:
    password = repository_password(config["secrets_dir"], dataset)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(state(config)),
        "RESTIC_REPOSITORY": str(repository),
        "RESTIC_PASSWORD": password,
        "RESTIC_FROM_PASSWORD": password,  # the medium's repository has the on-site password (vault)
    }
    # the on-site repository (--from-repo, or read itself) is opened with the server's own key: a key file a
    # client planted is never tried
    on_site = Path(config["repos_dir"]) / dataset
    key = server_key(config["server_state_dir"], dataset, on_site)
    if key:
        env["RESTIC_FROM_KEY_HINT"] = key
        if Path(repository) == on_site:
            env["RESTIC_KEY_HINT"] = key
    return env


def restic(config: dict[str, Any], dataset: str, repository: Path, *args: str, timeout: float = 21600) -> str:
    runner = Restic(
        "restic", restic_env(config, dataset, repository), options=["--no-cache"], timeout=timeout
    )
    return runner.run(*args).stdout


def raw_size(config: dict[str, Any], dataset: str, repository: Path) -> int:
    if not (repository / "config").exists():
        return 0
    out = restic(config, dataset, repository, "stats", "--no-lock", "--mode", "raw-data", "--json")
    return int(json.loads(out).get("total_size", 0))


def manifest(repository: Path) -> tuple[str, int, int]:
    """sha256 over the sorted ``path size`` lines of the repository (restic names packs, indexes and snapshots
    by the sha256 of their content): two equal manifests are two equal repositories. Also files and bytes."""
    digest, files, size = hashlib.sha256(), 0, 0
    for path in sorted(p for p in repository.rglob("*") if p.is_file() and "locks" not in p.parts):
        length = path.stat().st_size
        digest.update(f"{path.relative_to(repository)} {length}\n".encode())
        files, size = files + 1, size + length
    digest.update(hashlib.sha256((repository / "config").read_bytes()).hexdigest().encode())
    return digest.hexdigest(), files, size


# --------------------------------------------------------------------------- the copy


def mapping_name(medium: dict[str, Any]) -> str:
    return f"rempart-offline-{medium['id']}"


def key_file(config: dict[str, Any], medium: dict[str, Any]) -> Path:
    path = Path(config["keys_dir"]) / f"{medium['id']}.key"
    if not path.exists() or path.stat().st_size == 0:
        raise Refused(
            f"no LUKS key for medium {medium['id']} ({path}): set vault_offline_media_keys.{medium['id']} "
            "(`rempart init-vault`) and converge the offline_copy role"
        )
    return path


@contextlib.contextmanager
def opened(config: dict[str, Any], medium: dict[str, Any], device: str) -> Iterator[Path]:
    """The medium unlocked and mounted; closed and locked again whatever happens."""
    key = key_file(config, medium)
    name = mapping_name(medium)
    mountpoint = Path(config["mount_dir"]) / medium["id"]
    subprocess.run(["modprobe", "-q", "dm_crypt"], check=False)
    opened_ok = subprocess.run(
        ["cryptsetup", "open", "--type", "luks2", "--key-file", str(key), device, name],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    if opened_ok.returncode != 0:
        raise Refused(
            f"the vault key of medium {medium['id']} does not open {device} ({opened_ok.stderr.strip()[-200:]}): "
            "wrong medium or wrong key; nothing was written"
        )
    try:
        mountpoint.mkdir(parents=True, exist_ok=True)
        run(["mount", "-o", "nosuid,nodev,noexec", f"/dev/mapper/{name}", str(mountpoint)])
        try:
            yield mountpoint
        finally:
            subprocess.run(["sync", "-f", str(mountpoint)], check=False)
            run(["umount", str(mountpoint)])
    finally:
        run(["cryptsetup", "close", name])


def datasets(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config["datasets"]


def plan_space(config: dict[str, Any], target: Path) -> None:
    """Refuse before writing when the new data does not fit (the previous copy stays as it is)."""
    needed = 0
    for name in datasets(config):
        source = Path(config["repos_dir"]) / name
        needed += max(0, raw_size(config, name, source) - raw_size(config, name, target / "repos" / name))
    stat = os.statvfs(target)
    free = stat.f_bavail * stat.f_frsize
    if needed * SPACE_MARGIN > free:
        raise Refused(
            f"medium full: the copy needs about {int(needed * SPACE_MARGIN) // 2**20} MiB, the medium has "
            f"{free // 2**20} MiB free; use a larger medium (the previous copy on it is left intact)"
        )


def copy_dataset(config: dict[str, Any], name: str, target: Path) -> dict[str, Any]:
    source = Path(config["repos_dir"]) / name
    destination = target / "repos" / name
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not (destination / "config").exists():
        restic(config, name, destination, "init", "--from-repo", str(source), "--copy-chunker-params")
    chosen = trusted_ids(config["server_state_dir"], name)
    if not chosen:
        raise RuntimeError(f"{name}: no trusted snapshot to copy (none admitted yet, or all after an open prune "
                           "hold: rempart-backup-admin status)")  # fmt: skip
    restic(config, name, destination, "copy", "--from-repo", str(source), *chosen)
    full = datasets(config)[name]["criticality"] == "vital"
    read = "--read-data" if full else f"--read-data-subset={config['read_data_subset']}"
    restic(config, name, destination, "check", read)
    snapshots = json.loads(restic(config, name, destination, "snapshots", "--json", "--no-lock") or "[]")
    digest, files, size = manifest(destination)
    return {
        "dataset": name,
        "snapshots": len(snapshots),
        "latest_snapshot": max(snapshots, key=lambda s: s["time"])["id"] if snapshots else None,
        "snapshot_ids": sorted(s["id"] for s in snapshots),
        "read_data": "100%" if full else config["read_data_subset"],
        "repository_sha256": digest,
        "files": files,
        "bytes": size,
    }


def copy_to_medium(config: dict[str, Any], medium: dict[str, Any], kernel: str) -> int:
    device, disk = f"/dev/{kernel}", disk_of(kernel)
    started = time.time()
    attached = state(config, "attached", f"{medium['id']}.json")  # written by attach(), when it appeared
    entries: list[dict[str, Any]] = []
    problem = ""
    try:
        with opened(config, medium, device) as target:
            plan_space(config, target)
            for name in sorted(datasets(config)):
                log(f"rempart: offline copy of {name} to medium {medium['id']}")
                entries.append(copy_dataset(config, name, target))
    except Refused as refused:
        problem = str(refused)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        problem = f"copy to medium {medium['id']} failed: {error}"
    copied = time.time()
    detach, offline_at = "", None
    try:
        detach = power_off(disk)
        offline_at = time.time() if detach != "unsupported" else None
    except (RuntimeError, OSError) as error:
        problem = problem or f"medium {medium['id']} could not be detached: {error}"
    if offline_at is not None:
        attached.unlink(missing_ok=True)
    common = {"medium": medium["id"], "device": kernel, "started": started, "copied": copied,
              "offline_at": offline_at, "detach": detach}  # fmt: skip
    if problem or not entries:
        ledger(config).append(
            [{"event": "copy-failed", "at": copied, "why": problem or "nothing copied", **common}]
        )
        log(f"rempart: offline copy FAILED: {problem}", 3)
        alert_command.call(config.get("alert_command"), medium["id"], "offline-copy-failed")
        status(config)
        return EXIT_FAILED
    ledger(config).append(
        [{"event": "offline-copy", "at": copied, "verified": True, **common, **e} for e in entries]
    )
    log(
        f"rempart: offline copy to medium {medium['id']} verified ({len(entries)} dataset(s)); "
        f"offline since {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(offline_at)) if offline_at else 'NEVER'} "
        f"({detach})",
        6 if offline_at else 3,
    )
    status(config)
    return EXIT_OK if offline_at else EXIT_FAILED  # a copy still attached is no offline copy


def refuse_unknown(config: dict[str, Any], kernel: str, props: dict[str, str], why: str) -> int:
    now = time.time()
    described = {
        "serial": props.get("ID_SERIAL_SHORT", ""),
        "model": props.get("ID_MODEL", ""),
        "fs_type": props.get("ID_FS_TYPE", ""),
        "uuid": props.get("ID_FS_UUID", ""),
    }
    write_atomic(
        state(config, "unknown", f"{kernel}.json"), json.dumps({"device": kernel, "since": now, **described})
    )
    ledger(config).append([{"event": "refused", "at": now, "device": kernel, "why": why, **described}])
    log(f"rempart: medium on /dev/{kernel} REFUSED, nothing read or written: {why}", 2)
    alert_command.call(config.get("alert_command"), kernel, "offline-medium-refused")
    status(config)
    return EXIT_FAILED


def attach(config: dict[str, Any], kernel: str) -> int:
    if not Path("/sys/class/block", kernel).exists():
        log(f"rempart: /dev/{kernel} is gone, nothing to do")
        return EXIT_OK
    if in_use(kernel):
        log(f"rempart: /dev/{kernel} is in use by the system (opened or mounted): not a removable medium")
        return EXIT_OK
    props = udev_properties(f"/dev/{kernel}")
    if props.get("DEVTYPE") == "disk" and any(
        udev_properties(f"/dev/{p}").get("ID_FS_TYPE") == "crypto_LUKS" for p in partitions_of(kernel)
    ):
        log(f"rempart: /dev/{kernel} has a LUKS partition, handled by that partition's job")
        return EXIT_OK
    try:
        medium = identify(config, props)
    except Refused as refused:
        return refuse_unknown(config, kernel, props, str(refused))
    if medium is None:
        return refuse_unknown(
            config, kernel, props,
            f"serial {props.get('ID_SERIAL_SHORT', '?')!r} / UUID {props.get('ID_FS_UUID', '?')!r} is no declared "
            "medium (establishment.offline_copy.media)",
        )  # fmt: skip
    if props.get("ID_FS_TYPE") != "crypto_LUKS":
        log(
            f"rempart: medium {medium['id']} on /dev/{kernel} is not enrolled (no LUKS2 header): run "
            f"`rempart-offline-admin enroll {medium['id']} /dev/{kernel}`; nothing was written",
            3,
        )
        return EXIT_FAILED
    # online from now on: the rotation check alerts if it stays attached longer than a job (queue included)
    attached = state(config, "attached", f"{medium['id']}.json")
    write_atomic(attached, json.dumps({"medium": medium["id"], "device": kernel, "since": time.time()}))
    with global_lock(config):
        if not Path("/sys/class/block", kernel).exists():
            attached.unlink(missing_ok=True)
            log(f"rempart: /dev/{kernel} was detached while waiting")
            return EXIT_OK
        return copy_to_medium(config, medium, kernel)


def enroll(config: dict[str, Any], medium_id: str, device: str) -> int:
    medium = next((m for m in config["media"] if m["id"] == medium_id), None)
    if medium is None:
        known = ", ".join(m["id"] for m in config["media"])
        raise SystemExit(
            f"unknown medium {medium_id!r}: declare it in establishment.offline_copy.media ({known})"
        )
    kernel = Path(device).resolve().name
    props = udev_properties(device)
    if medium.get("serial") and props.get("ID_SERIAL_SHORT") != medium["serial"]:
        raise SystemExit(
            f"{device} has serial {props.get('ID_SERIAL_SHORT')!r}, medium {medium_id} is declared with serial "
            f"{medium['serial']!r}: wrong disk"
        )
    if props.get("ID_FS_TYPE"):
        raise SystemExit(
            f"{device} already holds {props['ID_FS_TYPE']}: refusing to erase it (wipefs it first)"
        )
    key = key_file(config, medium)
    with global_lock(config):
        run(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--key-file", str(key),
             "--label", f"rempart-{medium_id}", "--iter-time", "1000", device], timeout=600)  # fmt: skip
        name = mapping_name(medium)
        run(["cryptsetup", "open", "--type", "luks2", "--key-file", str(key), device, name], timeout=300)
        try:
            run(["mkfs.ext4", "-q", "-L", f"rempart-{medium_id}"[:16], "-m", "0", f"/dev/mapper/{name}"])
        finally:
            run(["cryptsetup", "close", name])
        luks_uuid = run(["cryptsetup", "luksUUID", device]).strip()
        ledger(config).append(
            [{"event": "enrolled", "at": time.time(), "medium": medium_id, "luks_uuid": luks_uuid}]
        )
        print(f"medium {medium_id} enrolled: LUKS2 UUID {luks_uuid} (may be declared as its uuid)")
        return copy_to_medium(config, medium, kernel)


# --------------------------------------------------------------------------- rotation policy (status)


def status(config: dict[str, Any], now: float | None = None) -> int:
    now = time.time() if now is None else now
    entries = ledger(config).read()
    max_age = float(config["rotation"]["every_days"]) * 86400 + float(config["stale_grace_hours"]) * 3600
    samples: list[Sample] = []
    problems: list[str] = []
    for name in sorted(datasets(config)):
        copies = [e for e in entries if e.get("event") == "offline-copy" and e.get("dataset") == name
                  and e.get("verified") and e.get("offline_at")]  # fmt: skip
        newest = max(copies, key=lambda e: e["offline_at"], default=None)
        age = now - newest["offline_at"] if newest else float("inf")
        stale = age > max_age
        labels = {"dataset": name}
        samples += [
            ("rempart_offline_copy_last_timestamp_seconds", "when the newest verified offline copy went offline",
             labels, newest["offline_at"] if newest else 0),
            ("rempart_offline_copy_stale", "1 if the newest offline copy is older than the rotation policy",
             labels, 1 if stale else 0),
        ]  # fmt: skip
        if stale:
            problems.append(
                f"{name}: newest offline copy {'is ' + str(round(age / 86400, 1)) + ' days old' if newest else 'missing'}"
                f" (policy: every {config['rotation']['every_days']} days)"
            )
    unknown = [p for p in sorted(state(config, "unknown").glob("*.json")) if _still_present(p)]
    samples.append(("rempart_offline_unknown_media_attached", "unknown media attached to the backup server",
                    {}, len(unknown)))  # fmt: skip
    problems += [f"unknown medium attached on /dev/{p.stem}" for p in unknown]
    limit = float(config["max_attached_minutes"]) * 60
    left = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(state(config, "attached").glob("*.json"))
            if _still_present(p)]  # fmt: skip
    for entry in left:
        overdue = now - float(entry["since"]) > limit
        samples.append(("rempart_offline_medium_attached_too_long",
                        "1 if a medium stays attached longer than a copy job", {"medium": entry["medium"]},
                        1 if overdue else 0))  # fmt: skip
        if overdue:
            problems.append(f"medium {entry['medium']} attached on /dev/{entry['device']} for too long")
    samples.append(("rempart_offline_status_timestamp_seconds", "last rotation policy check", {}, now))
    samples.append(("rempart_offline_alerts", "rotation policy alerts", {}, len(problems)))
    write_samples(config["metrics_dir"], "rempart_offline", samples)
    for problem in problems:
        log(f"rempart: offline copy ALERT: {problem}", 2)
    if problems:
        alert_command.call(config.get("alert_command"), "offline-copy", "; ".join(problems))
        return EXIT_FAILED
    log("rempart: offline copy rotation within policy")
    return EXIT_OK


def _still_present(record: Path) -> bool:
    """A state record whose device is gone from the kernel is over: removed, not an alert."""
    device = json.loads(record.read_text(encoding="utf-8"))["device"]
    if Path("/sys/class/block", device).exists():
        return True
    record.unlink(missing_ok=True)
    return False


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rempart-offline-admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("attach").add_argument("kernel", help="kernel name of the block device (sdb, sdb1)")
    sub.add_parser("status")
    enrolment = sub.add_parser("enroll", help="format a declared medium (LUKS2 + ext4) and copy to it")
    enrolment.add_argument("medium")
    enrolment.add_argument("device")
    sub.add_parser("ledger")
    args = parser.parse_args(argv)
    config = read_json(CONFIG)
    if args.action == "ledger":
        print(json.dumps(ledger(config).read(), indent=2))
        return EXIT_OK
    actions = {
        "attach": lambda: attach(config, args.kernel),
        "status": lambda: status(config),
        "enroll": lambda: enroll(config, args.medium, args.device),
    }
    # never silent: a crash leaves a journal line, a metric and an exit status; a copy's crash a ledger entry too
    # (status failing is its own alert: its metrics say why, the ledger is for copies)
    return program.run(
        actions[args.action], program=f"offline-{args.action}", metrics_dir=config["metrics_dir"],
        ledger=None if args.action == "status" else ledger(config),
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
