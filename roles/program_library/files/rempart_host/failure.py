"""The OnFailure= handler of every Rempart unit (``rempart-failure@UNIT.service``): a journal line tagged
``rempart-alert``, a metric per failed unit, and the configured alert command.

    python3 -I rempart_run.py rempart_host.failure UNIT [--config /etc/rempart/program-library.json]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rempart_host import alert
from rempart_host.journal import CRIT, log
from rempart_host.metrics import write_metrics

CONFIG = "/etc/rempart/program-library.json"
TAG = "rempart-alert"


def metrics_stem(unit: str) -> str:
    return "rempart_unit_failure_" + re.sub(r"[^A-Za-z0-9_]", "_", unit)


def record(config: dict[str, Any], unit: str, now: float | None = None) -> int:
    """Record one failure of ``unit``; 0 when everything was recorded (the alert command included)."""
    now = time.time() if now is None else now
    log(f"{TAG}: unit {unit} FAILED (journalctl -u {unit})", CRIT)
    metrics_dir = config.get("metrics_dir")
    status = 0
    if metrics_dir:
        stem = metrics_stem(unit)
        failures = _previous_failures(Path(metrics_dir) / f"{stem}.prom")
        write_metrics(
            metrics_dir, stem,
            {
                "rempart_unit_last_failure_timestamp_seconds": ("when the unit last failed (OnFailure=)", now),
                "rempart_unit_failures": ("failures of the unit recorded since the file was created", failures + 1),
            },
            {"unit": unit},
        )  # fmt: skip
    command = config.get("alert_command")
    if command and not alert.call(command, unit, "unit-failed"):
        log(f"{TAG}: the alert command for {unit} failed", CRIT)
        status = 1
    return status


def _previous_failures(path: Path) -> float:
    if not path.exists():
        return 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("rempart_unit_failures{"):
            return float(line.rsplit(" ", 1)[1])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rempart-failure", description=__doc__)
    parser.add_argument("unit")
    parser.add_argument("--config", default=CONFIG)
    args = parser.parse_args(argv)
    path = Path(args.config)
    config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return record(config, args.unit)


if __name__ == "__main__":
    raise SystemExit(main())
