"""playbooks/evidence.yml on the GHT inventory: three reports, each from its own establishment only."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
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
        # HDS-03: the establishment's own repository on the shared server, sampled on the server: ciphertext
        sample = json.loads((folder / "encryption" / f"onsite-{DATASET}.json").read_text())
        assert sample["where"] == f"sur site : {DATASET}" and sample["objects_sampled"] >= 3
        assert sample["plaintext_objects"] == [] and sample["repository_encrypted"] is True
        statuses = {r["id"]: r for r in report["requirements"]}
        assert f"sur site : {DATASET}" in statuses["HDS-03"]["evidence"]
        assert statuses["BP028-01"]["status"] == "non mesuré"  # no OpenSCAP score recorded in this scenario
        # printed by headless Chromium, and the plan's contacts come from the establishment's own file
        for document in ("rapport-care.pdf", "plan-sauvegarde.pdf"):
            assert (folder / document).read_bytes().startswith(b"%PDF"), document
        data = yaml.safe_load(
            (INVENTORY / "group_vars" / establishment.group / "establishment.yml").read_text()
        )
        direction = data["establishment"]["crisis"]["contacts"][0]
        assert direction["phone"] in (folder / "plan-sauvegarde.html").read_text()
    assert len(ledgers) == len(ESTABLISHMENTS)


def test_no_secret_in_the_converge_output() -> None:
    log = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.log"
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "rempart-backup-admin" in text or "backup_server" in text
    for establishment in ESTABLISHMENTS:
        assert establishment.http_password not in text
        assert establishment.repository_password not in text
