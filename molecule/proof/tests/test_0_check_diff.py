"""`ansible-playbook --check --diff` on the converged scenario (the converge playbook: validate, base, the backup
core, the offsite copy, the drill and red button roles): nothing would change, nothing fails, no secret printed."""

from __future__ import annotations

import re

import yaml
from conftest import INVENTORY, PROJECT, SERVER

CONVERGE = PROJECT / "molecule" / "proof" / "converge.yml"
# roles/red_button reads the controller's address (SSH_CLIENT) with a command that check mode skips, then refuses
# for want of an admin path; until that task runs in check mode too (check_mode: false: it only reads), check mode
# is given the admin source explicitly (the lab network's gateway, where the controller is).
CHECK = ("--check", "--diff", "-e", '{"red_button_admin_sources": ["10.89.66.1"]}')
SECRETS = "/etc/rempart/secrets/partages.json"


def _recap(out: str) -> dict[str, tuple[int, int, int]]:
    found = re.findall(
        r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.MULTILINE
    )
    return {
        host: (int(changed), int(unreachable), int(failed)) for host, changed, unreachable, failed in found
    }


def test_check_diff_on_a_converged_lab_changes_nothing(proof):
    result = proof.playbook(CONVERGE, *CHECK)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    recap = _recap(out)
    assert sorted(recap) == ["localhost", "mp-backup-01", "mp-dpi-db-01", "mp-files-01"], out[-2000:]
    assert set(recap.values()) == {(0, 0, 0)}, [
        line for line in out.splitlines() if line.startswith("changed:")
    ]
    assert "+++ " not in out  # no content diff: nothing differs


def test_check_diff_names_a_drifted_secrets_file_without_its_content(proof):
    vault = yaml.safe_load((INVENTORY / "group_vars" / "all" / "vault.yml").read_text(encoding="utf-8"))
    secrets = [value for mapping in vault.values() if isinstance(mapping, dict) for value in mapping.values()]
    assert len(secrets) >= 4
    drifted = '{"http_password": "drifted-http-1", "repository_password": "drifted-repo-2"}'
    proof.server.run(f"cp -p {SECRETS} /root/partages.json.keep && printf '%s\\n' '{drifted}' > {SECRETS}")
    try:
        result = proof.playbook(CONVERGE, *CHECK, "--limit", SERVER)
    finally:
        proof.server.run(f"cp -p /root/partages.json.keep {SECRETS} && rm /root/partages.json.keep")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert _recap(out)[SERVER] == (1, 0, 0), out[-2000:]  # the secrets file, and nothing else, would change
    assert not [s for s in [*secrets, "drifted-http-1", "drifted-repo-2"] if s in out]
