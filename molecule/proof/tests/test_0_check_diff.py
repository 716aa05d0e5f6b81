"""`ansible-playbook --check --diff` on the converged scenario (the converge playbook: validate, base, the backup
core, the offsite copy, the drill and red button roles), one run: nothing would change but the one file made to
drift (a secrets file, so that the run also shows a secret's diff is never printed), nothing fails."""

from __future__ import annotations

import re

import yaml
from conftest import INVENTORY, PROJECT

CONVERGE = PROJECT / "molecule" / "proof" / "converge.yml"
CHECK = ("--check", "--diff")
SECRETS = "/etc/rempart/secrets/partages.json"
DRIFTED = '{"http_password": "drifted-http-1", "repository_password": "drifted-repo-2"}'


def _recap(out: str) -> dict[str, tuple[int, int, int]]:
    found = re.findall(
        r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.MULTILINE
    )
    return {
        host: (int(changed), int(unreachable), int(failed)) for host, changed, unreachable, failed in found
    }


def _changed_tasks(out: str) -> list[str]:
    """The header of each task that reported a change."""
    blocks = re.split(r"^TASK \[", out, flags=re.MULTILINE)[1:]
    return [b.split("]", 1)[0] for b in blocks if re.search(r"^changed: ", b, re.MULTILINE)]


def test_check_diff_on_a_converged_lab_reports_only_the_drift_and_no_secret(proof):
    vault = yaml.safe_load((INVENTORY / "group_vars" / "all" / "vault.yml").read_text(encoding="utf-8"))
    secrets = [value for mapping in vault.values() if isinstance(mapping, dict) for value in mapping.values()]
    assert len(secrets) >= 4
    proof.server.run(f"cp -p {SECRETS} /root/partages.json.keep && printf '%s\\n' '{DRIFTED}' > {SECRETS}")
    try:
        result = proof.playbook(CONVERGE, *CHECK)
    finally:
        proof.server.run(f"cp -p /root/partages.json.keep {SECRETS} && rm /root/partages.json.keep")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert _recap(out) == {
        "localhost": (0, 0, 0),
        "mp-backup-01": (1, 0, 0),
        "mp-dpi-db-01": (0, 0, 0),
        "mp-files-01": (0, 0, 0),
    }, out[-2000:]
    changed = _changed_tasks(out)
    assert len(changed) == 1, changed
    assert changed[0].endswith(
        "backup_server : Write each dataset's secrets (0640, readable by the service user only; one module run)"
    )
    assert "+++ " not in out  # no content diff: no non-secret file differs
    assert not [s for s in [*secrets, "drifted-http-1", "drifted-repo-2"] if s in out]
