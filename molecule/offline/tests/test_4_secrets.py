"""Bad role input fails before any change with the field named; no secret in the Ansible log nor the journal."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import SCENARIO, vault
from refusal import assert_refused, converge


def secret_values() -> list[str]:
    return [value for group in vault().values() for value in group.values()]


def test_no_secret_in_the_ansible_log():
    log = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.log"
    text = log.read_text()
    assert "offline_copy" in text
    assert [s for s in secret_values() if s in text] == []


def test_no_secret_in_the_vm_journal(vm):
    journal = vm.check("journalctl -q -o cat --no-pager")
    assert [s for s in secret_values() if s in journal] == []


def test_missing_key_in_the_vault_is_refused_before_any_change(vm, tmp_path):
    before = vm.check("stat -c %Y /etc/rempart/offline-copy.json")
    extra = {"offline_copy_media_keys": {"lab-disque-a": "k" + "x" * 20}}
    refusal = converge(
        SCENARIO / "converge.yml", SCENARIO / "inventory", extra, tmp_path, tags="offline_copy"
    )
    assert_refused(refusal, "missing LUKS key for medium lab-disque-b: vault_offline_media_keys.lab-disque-b")
    assert vm.check("stat -c %Y /etc/rempart/offline-copy.json") == before
