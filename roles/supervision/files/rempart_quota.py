#!/usr/bin/python3
"""rempart-quota: each dataset's repository quota (establishment: backup.expected_size_gib + growth_margin_percent),
enforced on the backup server (issue 15 item 5).

rest-server's --max-size is one limit for every repository under its path, and it counts the size at start-up only;
a client can only write during its own job (the reverse tunnel exists only then), so the quota is enforced around
the job unit, per dataset, by drop-ins of rempart-backup@.service:

  rempart-quota usage [DATASET...]  metrics rempart_repository_used_bytes / _quota_bytes / _quota_exceeded
                                    (after every job, and on rempart-quota-usage.timer)
  rempart-quota gate DATASET        ExecStartPre of the job: refused (exit 1, alert) when the repository is at or
                                    over its quota, so nothing is pulled
  rempart-quota watch DATASET       beside the job (rempart-quota-watch@.service, root): every interval, the
                                    repository's size; the job is stopped before the next interval's writes at the
                                    current rate would pass the quota (alert, metric)

Sizes are the sum of the files' sizes under the dataset's repository folder. Standard library and the programs'
library rempart_host (run through rempart_run.py, as every Rempart program).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import syslog
import time
from pathlib import Path
from typing import Any

from rempart_host.metrics import write_metrics as write_textfile

CONFIG = Path(os.environ.get("REMPART_SUPERVISION_CONFIG", "/etc/rempart/supervision.json"))
TAG = "rempart-alert"


def repository_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # a temporary file renamed meanwhile
                continue
    return total


def write_metrics(config: dict[str, Any], name: str, used: int, exceeded: bool) -> None:
    dataset = config["datasets"][name]
    metrics = {
        "rempart_repository_used_bytes": ("bytes the dataset's repository holds on the backup server", used),
        "rempart_repository_quota_exceeded": (
            "1 when the last job was refused or cut at the quota",
            int(exceeded),
        ),
    }
    if dataset.get("quota_bytes"):
        metrics["rempart_repository_quota_bytes"] = (
            "the repository's quota (expected size + growth margin)",
            int(dataset["quota_bytes"]),
        )
    write_textfile(
        config["metrics_dir"], f"rempart_quota_{name}", metrics, {"dataset": name, "host": dataset["host"]}
    )


def alert(config: dict[str, Any], name: str, problem: str) -> None:
    """The syslog line rempart-alert mails (roles/supervision, rempart_alert.py's key=value format)."""
    fields = {
        "level": "critical", "source": "quota", "establishment": config.get("establishment", ""),
        "server": config.get("host", ""), "dataset": name, "host": config["datasets"][name]["host"],
        "problem": problem,
        "action": "augmenter backup.expected_size_gib de l'établissement (puis converger) ou purger ; "
                  f"rempart-backup-admin restic {name} stats",
    }  # fmt: skip
    syslog.openlog(TAG, syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_CRIT, " ".join(f"{k}={shlex.quote(str(v))}" for k, v in fields.items() if v))


def cut_marker(config: dict[str, Any], name: str) -> Path:
    """Present from a cut until a later job of the dataset ends uncut (hidden: the exporter reads *.prom only)."""
    return Path(config["metrics_dir"]) / f".rempart_quota_{name}.cut"


def over(config: dict[str, Any], name: str, used: int) -> bool:
    quota = config["datasets"][name].get("quota_bytes")
    return bool(quota) and (used >= quota or cut_marker(config, name).exists())


def usage(config: dict[str, Any], names: list[str]) -> int:
    for name in names:
        used = repository_bytes(Path(config["repos_dir"]) / name)
        write_metrics(config, name, used, over(config, name, used))
    return 0


def gate(config: dict[str, Any], name: str) -> int:
    quota = config["datasets"][name].get("quota_bytes")
    used = repository_bytes(Path(config["repos_dir"]) / name)
    if quota and used >= quota:
        write_metrics(config, name, used, True)
        problem = (f"quota du dépôt atteint ({used / 1024**2:.0f} Mio pour {quota / 1024**2:.0f} Mio) : "
                   "job refusé, aucune sauvegarde tant que le quota n'est pas relevé ou le dépôt purgé")  # fmt: skip
        alert(config, name, problem)
        print(f"rempart-quota: {name}: {problem}", file=sys.stderr)
        return 1
    write_metrics(config, name, used, False)
    return 0


def _job_running(unit: str) -> bool:
    state = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True, check=False)
    return state.stdout.strip() in ("activating", "active", "reloading")


def watch(config: dict[str, Any], name: str, unit: str, interval: float) -> int:
    quota = config["datasets"][name].get("quota_bytes")
    folder = Path(config["repos_dir"]) / name
    if not quota:
        cut_marker(config, name).unlink(missing_ok=True)
        return 0
    previous, previous_at = repository_bytes(folder), time.monotonic()
    while _job_running(unit):
        time.sleep(interval)
        used, now = repository_bytes(folder), time.monotonic()
        rate = max(0.0, (used - previous) / max(now - previous_at, 1e-3))
        previous, previous_at = used, now
        if used + rate * interval >= quota:
            # Recorded before the stop: stopping the job stops this unit too (PartOf=).
            cut_marker(config, name).write_text(f"{time.time():.0f}\n", encoding="utf-8")
            write_metrics(config, name, used, True)
            problem = (f"quota du dépôt atteint pendant le job ({used / 1024**2:.0f} Mio, quota "
                       f"{quota / 1024**2:.0f} Mio, {rate / 1024**2:.1f} Mio/s) : job coupé")  # fmt: skip
            alert(config, name, problem)
            print(f"rempart-quota: {name}: {problem}", file=sys.stderr)
            subprocess.run(["systemctl", "stop", "--no-block", unit], check=False)
            return 0
    cut_marker(config, name).unlink(missing_ok=True)  # this job ended uncut
    used = repository_bytes(folder)
    write_metrics(config, name, used, over(config, name, used))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rempart-quota", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--interval", type=float, default=2.0, help="watch: seconds between two measures")
    parser.add_argument(
        "--unit", default="rempart-backup@{}.service", help="watch: the job unit ({} = dataset)"
    )
    parser.add_argument("action", choices=["usage", "gate", "watch"])
    parser.add_argument("datasets", nargs="*")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    names = args.datasets or sorted(config["datasets"])
    unknown = sorted(set(names) - set(config["datasets"]))
    if unknown:
        print(f"rempart-quota: unknown dataset(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.action == "usage":
        return usage(config, names)
    if len(names) != 1:
        print(f"rempart-quota: {args.action} takes one dataset", file=sys.stderr)
        return 2
    if args.action == "gate":
        return gate(config, names[0])
    return watch(config, names[0], args.unit.format(names[0]), args.interval)


if __name__ == "__main__":
    sys.exit(main())
