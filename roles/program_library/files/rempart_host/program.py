"""Never silent: whatever way a program ends, its failure leaves a journal line, a metric, a ledger entry (when
it has a ledger) and a non-zero exit status (the unit fails: OnFailure= raises the alert)."""

from __future__ import annotations

import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

from rempart_host.journal import ERR, log
from rempart_host.ledger import Ledger
from rempart_host.metrics import write_metrics

EXIT_FAILED = 1
EXIT_TERMINATED = 128 + signal.SIGTERM
RUNNER = Path(__file__).resolve().parent.parent / "rempart_run.py"  # the entry script beside the library


def command(target: str, *args: str) -> list[str]:
    """The argv that runs a Rempart program (module name or program file path) as the units do (python3 -I)."""
    return [sys.executable, "-I", str(RUNNER), target, *args]


def _exit_code(code: object) -> tuple[int, str]:
    """SystemExit's code as an exit status and, for a message, the message (what ``sys.exit`` would print)."""
    if code is None:
        return 0, ""
    if isinstance(code, int):
        return code, ""
    return EXIT_FAILED, str(code)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def metrics_stem(program: str, labels: Mapping[str, str]) -> str:
    return "_".join(["rempart_program", program, *(labels[k] for k in sorted(labels))]).replace("-", "_")


def run(
    main: Callable[[], int | None],
    *,
    program: str,
    metrics_dir: Path | str | None,
    ledger: Ledger | None = None,
    labels: Mapping[str, str] | None = None,
    meanings: Mapping[int, str] | None = None,
) -> int:
    """Run ``main()`` and return its exit status; never raises (KeyboardInterrupt aside).

    An exception, a ``SystemExit`` with a message or a non-zero status are failures: ``{"event": "program-failed",
    ...}`` goes to the ledger and the status is non-zero; the journal gets the traceback's last lines (a crash) or
    the message (a ``SystemExit``); a plain non-zero status was explained by the program's own lines.
    ``rempart_program_last_run_success{program=...}`` (1/0) and ``rempart_program_last_run_timestamp_seconds``
    are written in every case (``metrics_dir`` None: no metric, for commands run by hand). ``meanings`` explain
    the program's own exit statuses in the ledger entry and the journal line (2: "anomaly: ...")."""
    labels = dict(labels or {})
    meanings = {EXIT_TERMINATED: "terminated: the unit was stopped or timed out", **(meanings or {})}
    started = time.time()
    error, crashed = "", False
    # SIGTERM (systemctl stop, TimeoutStartSec=) unwinds the program like an exit, so that it is recorded too
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        code, error = _exit_code(main())
    except SystemExit as stop:
        code, error = _exit_code(stop.code)
    except Exception as failure:
        code, crashed = EXIT_FAILED, True
        error = f"{type(failure).__name__}: {failure}"
        lines = traceback.format_exc().strip().splitlines()
        log(f"rempart: {program} crashed: {error} | {' | '.join(line.strip() for line in lines[-6:])}", ERR)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    finished = time.time()
    if code != 0:
        why = error or f"exit status {code}"
        if code in meanings:
            why += f" ({meanings[code]})"
        if ledger is not None:
            try:
                ledger.append([{"event": "program-failed", "program": program, "at": finished,
                                "started": started, "exit_code": code, "error": why[:1000], **labels}])  # fmt: skip
            except OSError as unwritable:
                log(f"rempart: {program}: the ledger {ledger.path} cannot be written: {unwritable}", ERR)
        if error and not crashed:  # a crash has its line; a plain non-zero status, the program's own lines
            log(f"rempart: {program} FAILED (exit {code}): {why[:500]}", ERR)
    if metrics_dir is not None:
        try:
            write_metrics(
                metrics_dir, metrics_stem(program, labels),
                {
                    "rempart_program_last_run_success": ("1 if the program's last run exited 0", 1 if code == 0 else 0),
                    "rempart_program_last_run_timestamp_seconds": ("end of the program's last run", finished),
                    "rempart_program_last_run_exit_code": ("exit status of the program's last run", code),
                },
                {"program": program, **labels},
            )  # fmt: skip
        except OSError as unwritable:
            log(f"rempart: {program}: metrics cannot be written to {metrics_dir}: {unwritable}", ERR)
            code = code or EXIT_FAILED
    return code
