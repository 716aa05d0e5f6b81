"""playbooks/evidence.yml on the GHT inventory: three reports, each from its own establishment only."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import DATASET, ESTABLISHMENTS, INVENTORY, PROJECT, server  # noqa: F401


def test_evidence_gives_three_separate_reports(tmp_path: Path, server) -> None:  # noqa: F811
    python_bin = Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin"
    subprocess.run(
        [str(python_bin / "ansible-playbook"), "-i", str(INVENTORY), str(PROJECT / "playbooks" / "evidence.yml"),
         "-e", f"rempart_reports_dir={tmp_path}"],
        cwd=PROJECT, check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(e.finess for e in ESTABLISHMENTS)
    ledgers = set()
    for establishment in ESTABLISHMENTS:
        folder = tmp_path / establishment.finess
        report = json.loads((folder / "rapport-care.json").read_text())
        assert report["finess"] == establishment.finess
        assert (folder / "rapport-care.html").exists() and (folder / "plan-sauvegarde.html").exists()
        ledger = (folder / "ledger" / f"{DATASET}.jsonl").read_text()
        on_server = server.file(
            f"/var/lib/rempart{establishment.suffix}/ledger/{DATASET}.jsonl"
        ).content_string
        assert ledger == on_server
        ledgers.add(ledger)
    assert len(ledgers) == len(ESTABLISHMENTS)


def test_no_secret_in_the_converge_output() -> None:
    log = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.log"
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "rempart-backup-admin" in text or "backup_server" in text
    for establishment in ESTABLISHMENTS:
        assert establishment.http_password not in text
        assert establishment.repository_password not in text
