"""Flow 3: restic check of a dataset's repository (and a subset of its data)."""

from __future__ import annotations

import time
from typing import Any

from rempart_host.journal import log

from rempart_backup_server.config import (
    EXIT_FAILED,
    EXIT_OK,
    alert,
    dataset_config,
    dataset_lock,
    publish_metrics,
    remove_stale_locks,
    restic,
)


def check(config: dict[str, Any], name: str) -> int:
    dataset = dataset_config(config, name)
    started = time.time()
    with dataset_lock(config, name):
        remove_stale_locks(config, name)
        args = ["check", "--no-cache"]
        subset = str(config.get("check_read_data_subset") or "")
        if subset:
            args.append(f"--read-data-subset={subset}")
        result = restic(config, name).run(*args, check=False)
    ok = result.returncode == 0
    metrics = {
        "rempart_check_last_run_timestamp_seconds": ("last restic check", time.time()),
        "rempart_check_success": ("1 if the last restic check found no error", 1 if ok else 0),
        "rempart_check_duration_seconds": ("duration of the last check", time.time() - started),
    }
    publish_metrics(config, f"rempart_check_{name}", metrics, {"dataset": name, "host": dataset["host"]})
    if not ok:
        log(f"rempart: check of {name} FAILED: {(result.stdout + result.stderr).strip()[-1500:]}", 3)
        alert(config, name, ["check-failed"])
        return EXIT_FAILED
    log(f"rempart: check of {name} passed (read data subset {subset or 'none'})")
    return EXIT_OK
