"""Per-dataset secrets the backup server's role writes (``<secrets_dir>/<dataset>.json``, 0640, never logged)."""

from __future__ import annotations

import json
from pathlib import Path


def dataset_secrets(secrets_dir: Path | str, dataset: str) -> dict[str, str]:
    """The dataset's secrets: ``repository_password``, ``http_password``."""
    return json.loads((Path(secrets_dir) / f"{dataset}.json").read_text(encoding="utf-8"))


def repository_password(secrets_dir: Path | str, dataset: str) -> str:
    return str(dataset_secrets(secrets_dir, dataset)["repository_password"])
