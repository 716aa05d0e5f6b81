"""Bad role input fails before any change with the field named; no secret in the Ansible log nor the journal."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import SCENARIO, vault

PROJECT = SCENARIO.parents[1]


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


def test_missing_key_in_the_vault_is_refused_before_any_change(vm):
    before = vm.check("stat -c %Y /etc/rempart/offline-copy.json")
    result = subprocess.run(
        ["ansible-playbook", "-i", str(SCENARIO / "inventory"), str(SCENARIO / "converge.yml"), "--tags",
         "offline_copy", "-e", '{"offline_copy_media_keys": {"lab-disque-a": "k' + "x" * 20 + '"}}'],
        capture_output=True, text=True, check=False, timeout=900,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
             "ANSIBLE_ACTION_PLUGINS": str(PROJECT / "playbooks/action_plugins"),
             "ANSIBLE_FILTER_PLUGINS": str(PROJECT / "playbooks/filter_plugins")},
    )  # fmt: skip
    assert result.returncode != 0
    printed = " ".join(result.stdout.split())  # the callback may fold long messages (YAML result format)
    assert "missing LUKS key for medium lab-disque-b: vault_offline_media_keys.lab-disque-b" in printed
    assert vm.check("stat -c %Y /etc/rempart/offline-copy.json") == before
