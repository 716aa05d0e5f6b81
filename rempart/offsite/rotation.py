"""``rempart offsite-rotate-writer-key``: a new access key for the backup server's writer identity.

Run as the deployer role (docs/offsite.md, day 2), from the project. It sets the stack's
``rempart:writerKeyRotation`` to the current UTC time (the writer key's logical name carries it, so
``pulumi up`` makes a new key and then deletes the previous one), runs ``pulumi up`` with the policy pack, and
writes the new outputs into the inventory like ``rempart offsite-outputs`` (the secret into the vault, never
printed). Then converge ``offsite_copy``: until then the copy job fails with the deleted key (the next run
after the converge catches up).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rempart.model.inventory import load_establishment_data
from rempart.offsite.outputs import OutputsError, split_outputs, write_public, write_secrets
from rempart.offsite.s3 import utcnow

ROTATION_KEY = "rempart:writerKeyRotation"


def pulumi(pulumi_dir: Path, *args: str, capture: bool = False) -> str:
    result = subprocess.run(
        ["pulumi", *args, "--non-interactive"],
        cwd=pulumi_dir,
        check=False,
        capture_output=capture,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"pulumi {args[0]} {args[1] if len(args) > 1 else ''} failed ({result.returncode})"
        )
    return result.stdout if capture else ""


def rotate(
    stack: str, inventory: Path, password_file: Path, pulumi_dir: Path, pack_config: Path | None
) -> list[str]:
    finess = str(load_establishment_data(inventory).get("finess", "")).replace(" ", "")
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    pulumi(pulumi_dir, "config", "set", "--stack", stack, ROTATION_KEY, stamp)
    up = ["up", "--stack", stack, "--yes", "--policy-pack", "policy"]
    if pack_config:
        up += ["--policy-pack-config", str(pack_config.resolve())]
    pulumi(pulumi_dir, *up)
    outputs = json.loads(pulumi(pulumi_dir, "stack", "output", "--stack", stack, "--json", "--show-secrets",
                                capture=True))  # fmt: skip
    public, secrets = split_outputs(outputs, finess)
    written = [write_public(inventory, public), write_secrets(inventory, password_file, secrets)]
    return [
        f"writer key rotated ({stamp}): {public['offsite_writer_access_key_id']}",
        *[f"wrote {path}" for path in written],
        "now converge offsite_copy (playbooks/site.yml --tags offsite) so the copy job uses the new key",
    ]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offsite-rotate-writer-key", help="new writer access key (Pulumi + inventory)"
    )
    parser.add_argument("--stack", required=True, help="the establishment's Pulumi stack")
    parser.add_argument("--inventory", type=Path, required=True, help="inventories/<name>")
    parser.add_argument("--vault-password-file", type=Path, required=True)
    parser.add_argument("--pulumi-dir", type=Path, default=Path(__file__).resolve().parents[2] / "pulumi")
    parser.add_argument("--policy-pack-config", type=Path, help="from `rempart offsite-pack-config`")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        lines = rotate(
            args.stack, args.inventory, args.vault_password_file, args.pulumi_dir, args.policy_pack_config
        )
    except (RuntimeError, OSError, ValueError, OutputsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
