"""`ansible-playbook --check --diff` on the converged scenario (the converge playbook: validate, base, the backup
core, the offsite copy, the drill and red button roles): nothing would change, nothing fails, no secret printed."""

from __future__ import annotations

import re

import yaml
from conftest import PROJECT, SERVER


def test_check_diff_on_a_converged_lab_changes_nothing(proof):
    result = proof.playbook(PROJECT / "molecule" / "proof" / "converge.yml", "--check", "--diff")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    recap = re.findall(
        r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.MULTILINE
    )
    assert len(recap) == 4, out[-2000:]  # localhost (validation) and the three hosts
    assert all(
        changed == "0" and unreachable == "0" and failed == "0" for _, changed, unreachable, failed in recap
    ), [line for line in out.splitlines() if line.startswith(("changed:", "fatal:"))]
    assert "+++ " not in out  # no content diff: nothing differs


def test_check_diff_never_prints_a_secret(proof):
    vault = yaml.safe_load(
        (PROJECT / "molecule" / "proof" / "inventory" / "group_vars" / "all" / "vault.yml").read_text()
    )
    secrets = [value for mapping in vault.values() if isinstance(mapping, dict) for value in mapping.values()]
    assert len(secrets) >= 4
    # a secrets file missing on the server: check mode reports it would be written, without showing its content
    proof.server.run("mv /etc/rempart/secrets/partages.json /root/partages.json.keep")
    try:
        result = proof.playbook(
            PROJECT / "molecule" / "proof" / "converge.yml", "--check", "--diff", "--limit", SERVER
        )
    finally:
        proof.server.run("mv /root/partages.json.keep /etc/rempart/secrets/partages.json")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert re.search(rf"^{SERVER}\s+: ok=\d+\s+changed=1\s", out, re.MULTILINE), out[-2000:]
    assert not [s for s in secrets if s in out]
