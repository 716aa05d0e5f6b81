"""Prometheus textfile metrics (node-exporter's textfile collector): one file per concern, replaced atomically."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from rempart_host.files import write_atomic

Sample = tuple[str, str, Mapping[str, str], float]  # metric, help, labels, value
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})? (\S+)$")


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(samples: Iterable[Sample]) -> str:
    """The text exposition format: HELP and TYPE once per metric, then one line per sample (labels sorted)."""
    lines: list[str] = []
    described: set[str] = set()
    for metric, help_text, labels, value in samples:
        if metric not in described:
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
            described.add(metric)
        rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        lines.append(
            f"{metric}{{{rendered}}} {float(value):.15g}" if rendered else f"{metric} {float(value):.15g}"
        )
    return "\n".join(lines) + "\n"


def write_samples(metrics_dir: Path | str, stem: str, samples: Iterable[Sample]) -> Path:
    """Replace ``<metrics_dir>/<stem>.prom`` with these samples (several label sets per metric allowed)."""
    path = Path(metrics_dir) / f"{stem}.prom"
    write_atomic(path, render(samples))
    return path


def write_metrics(
    metrics_dir: Path | str,
    stem: str,
    metrics: Mapping[str, tuple[str, float]],
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Replace ``<metrics_dir>/<stem>.prom`` with ``{metric: (help, value)}``, all with the same labels."""
    labels = labels or {}
    return write_samples(
        metrics_dir,
        stem,
        [(metric, help_text, labels, value) for metric, (help_text, value) in sorted(metrics.items())],
    )


def read_values(metrics_dir: Path | str, stem: str) -> dict[str, float]:
    """``{metric: value}`` of an unlabelled metrics file this program wrote before (empty when there is none)."""
    path = Path(metrics_dir) / f"{stem}.prom"
    values: dict[str, float] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _SAMPLE.match(line)
        if match and not match.group(2):
            values[match.group(1)] = float(match.group(3))
    return values


def write_prefixed(path: Path | str, prefix: str, values: Mapping[str, float], subject: str) -> None:
    """Unlabelled metrics ``<prefix><name>`` of one program in the file ``path`` (``<dir>/<stem>.prom``), each
    described as ``<subject>: <name in words>``."""
    path = Path(path)
    metrics = {
        prefix + name: (f"{subject}: {name.replace('_', ' ')}", value) for name, value in values.items()
    }
    write_metrics(path.parent, path.stem, metrics)


def read_prefixed(path: Path | str, prefix: str) -> dict[str, float]:
    """What ``write_prefixed`` wrote before: ``{name without the prefix: value}`` (empty when there is no file)."""
    path = Path(path)
    values = read_values(path.parent, path.stem)
    return {name.removeprefix(prefix): value for name, value in values.items() if name.startswith(prefix)}
