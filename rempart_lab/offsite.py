"""``rempart-lab offsite up|down|status``: the lab's stand-in for the offsite bucket.

A strict moto server (``tests/moto_lab.py``: AWS Object Lock rules and IAM action names) bound to the gateway address of the lab
inventory's internal podman network only (the host's side of that network: the containers reach it, nothing
outside the host does). The bucket, its log bucket and the identities are made by the offsite Pulumi program
itself (``pulumi/program.py``), run under Pulumi mocks that replay each declared resource onto the stand-in
(``lab/offsite_replay.py``, lab code). moto enforces IAM once the program has run, so the writer's policy
really refuses version deletion.

``up`` then writes the program's own outputs (with the stand-in's address as endpoint) as the inventory
variables ``rempart offsite-outputs`` writes from the Pulumi stack, so the ``offsite_copy`` role and the
drills read the same variables in the lab and in production. State (pid, keys)
lives in ``.lab/offsite/<network>.json``. moto keeps everything in memory: ``up`` recreates the bucket and the
identities when the server was restarted (new keys: converge ``offsite_copy`` again).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from rempart.model.establishment import Establishment
from rempart.model.inventory import inventory_hosts, load_establishment_data
from rempart.model.validation import load_valid
from rempart.offsite.outputs import OUTPUTS_FILE, split_outputs, write_public, write_secrets
from rempart.vault.secrets import VAULT_FILE
from rempart_lab.containers import PROJECT, STATE, Lab, load_lab

DEFAULT_PORT = 9000
CLEAR_SECRETS_FILE = Path("group_vars/all/vault_offsite.yml")
SERVER_SCRIPT = PROJECT / "tests" / "moto_lab.py"  # moto_strict + AWS action names
REPLAY_DIR = PROJECT / "lab"  # offsite_replay.py: the Pulumi program replayed onto the stand-in
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class StandInError(Exception):
    """The stand-in cannot be brought up as asked."""


def gateway(lab: Lab) -> str:
    """The host's address on the lab network (podman gives the network's first address to the bridge)."""
    return str(next(ipaddress.ip_network(lab.subnet).hosts()))


def state_path(lab: Lab) -> Path:
    return STATE / "offsite" / f"{lab.network}.json"


def _read_state(lab: Lab) -> dict[str, Any]:
    path = state_path(lab)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _write_state(lab: Lab, state: dict[str, Any]) -> None:
    path = state_path(lab)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return cmdline.exists() and b"moto_lab" in cmdline.read_bytes()


def _answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _start_server(lab: Lab, address: str, port: int) -> int:
    if not _address_on_host(address):
        raise StandInError(
            f"{address} (gateway of {lab.network}) is not on this host: run `rempart-lab up` first "
            "(podman creates the network's bridge with its first container)"
        )
    if _answers(address, port):
        raise StandInError(f"{address}:{port} is already taken by another program: choose --port")
    log = STATE / "offsite" / f"{lab.network}.log"
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "-H", address, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env=env,
            start_new_session=True,  # survives the command (and molecule's create step)
        )
    deadline = time.monotonic() + 30
    while not _answers(address, port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise StandInError(f"moto did not start on {address}:{port}; see {log}")
        time.sleep(0.2)
    return process.pid


def _address_on_host(address: str) -> bool:
    try:
        with socket.socket() as probe:
            probe.bind((address, 0))
        return True
    except OSError:
        return False


def _set_auth(endpoint: str, enforce: bool) -> None:
    """moto's own switch: IAM is enforced after this many unauthenticated requests (0: now; inf: never)."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0" if enforce else b"inf",
        method="POST",
        headers={"Content-Type": "text/plain"},  # a form body would reach moto empty
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # our own lab endpoint
        response.read()


def _client(service: str, endpoint: str, region: str, keys: dict[str, str] | None) -> Any:
    import boto3
    from botocore.config import Config

    credentials = keys or {"id": "lab-setup", "secret": "lab-setup"}  # ignored while auth is off
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=credentials["id"],
        aws_secret_access_key=credentials["secret"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def _replay() -> Any:
    """The lab's runner of the Pulumi program on the stand-in (lab/offsite_replay.py: lab code, not shipped)."""
    if str(REPLAY_DIR) not in sys.path:
        sys.path.insert(0, str(REPLAY_DIR))
    import offsite_replay

    return offsite_replay


def _user(iam: Any, name: str, policy: dict[str, Any]) -> dict[str, str]:
    iam.create_user(UserName=name, Tags=[{"Key": "rempart:component", "Value": "offsite"}])
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"user": name, "id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def provision(endpoint: str, establishment: Establishment) -> dict[str, Any]:
    """The stand-in's administrator, then the Pulumi program's first ``up`` (pulumi/program.py, replayed
    onto the stand-in), then IAM enforced. The state keeps the program's own outputs."""
    region, finess = establishment.offsite.region, establishment.finess
    _set_auth(endpoint, enforce=False)
    admin = _user(_client("iam", endpoint, region, None), f"rempart-{finess}-lab-admin", ADMIN_POLICY)
    outputs = _replay().deploy(establishment, endpoint).outputs
    _set_auth(endpoint, enforce=True)
    identities = {
        "admin": admin,
        **{
            role: {
                "user": outputs[f"{role}_user"],
                "id": outputs[f"{role}_access_key_id"],
                "secret": outputs[f"{role}_secret_access_key"],
            }
            for role in ("writer", "restore")
        },
    }
    return {"bucket": outputs["bucket"], "identities": identities, "outputs": outputs}


def _bucket_ok(endpoint: str, region: str, state: dict[str, Any]) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3 = _client("s3", endpoint, region, state["identities"]["admin"])
        lock = s3.get_object_lock_configuration(Bucket=state["bucket"])["ObjectLockConfiguration"]
    except (KeyError, ClientError, BotoCoreError):
        return False
    return "outputs" in state and lock.get("Rule", {}).get("DefaultRetention", {}).get("Mode") == "COMPLIANCE"


def stack_outputs(establishment: Establishment, endpoint: str, state: dict[str, Any]) -> dict[str, Any]:
    """The Pulumi program's outputs (what ``pulumi stack output --json --show-secrets`` gives), with the
    stand-in's address as S3 endpoint."""
    if str(state["outputs"]["finess"]) != establishment.finess:
        raise StandInError(
            f"the stand-in holds FINESS {state['outputs']['finess']}, not {establishment.finess}"
        )
    return _replay().lab_outputs(state["outputs"], endpoint)


def _vault_is_encrypted(inventory: Path) -> bool:
    path = inventory / VAULT_FILE
    return path.exists() and path.read_bytes().startswith(b"$ANSIBLE_VAULT")


def write_inventory(
    inventory: Path, outputs: dict[str, Any], finess: str, password_file: Path | None
) -> list[Path]:
    """Same split and files as ``rempart offsite-outputs``; a clear-text lab vault gets a clear side file."""
    public, secrets = split_outputs(outputs, finess)
    written = []
    current = inventory / OUTPUTS_FILE
    if not current.exists() or yaml.safe_load(current.read_text(encoding="utf-8")) != public:
        written.append(write_public(inventory, public))
    if _vault_is_encrypted(inventory):
        if password_file is None:
            raise StandInError(f"{inventory / VAULT_FILE} is encrypted: give --vault-password-file")
        from rempart.vault.secrets import _vault

        held = yaml.safe_load(_vault(password_file).decrypt((inventory / VAULT_FILE).read_bytes())) or {}
        if any(held.get(k) != v for k, v in secrets.items()):
            written.append(write_secrets(inventory, password_file, secrets))
    else:
        path = inventory / CLEAR_SECRETS_FILE
        text = (
            "---\n# Generated by `rempart-lab offsite up` (lab stand-in keys, clear-text lab vault): do not edit.\n"
            + yaml.safe_dump(secrets, sort_keys=True)
        )
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def up(inventory: Path, port: int | None, password_file: Path | None) -> list[str]:
    lab = load_lab(inventory)
    establishment = load_valid(load_establishment_data(inventory), inventory_hosts(inventory))
    address = gateway(lab)
    state = _read_state(lab)
    port = port or int(state.get("port") or DEFAULT_PORT)
    endpoint = f"http://{address}:{port}"
    messages = []
    running = _alive(state.get("pid")) and state.get("port") == port and _answers(address, port)
    if running and not _bucket_ok(endpoint, establishment.offsite.region, state):
        running = False  # a server without the program's bucket (older state): start it afresh (in memory)
    if not running:
        if _alive(state.get("pid")):
            _stop(state["pid"])
        state = {"pid": _start_server(lab, address, port), "port": port, "address": address}
        _write_state(lab, state)  # from now on `down` can stop it, whatever happens next
        messages.append(f"moto (strict) started on {endpoint} (pid {state['pid']})")
        state.update(provision(endpoint, establishment))
        messages.append(
            f"bucket {state['bucket']} created (COMPLIANCE {establishment.offsite.retention_days} days)"
        )
    _write_state(lab, state)
    outputs = stack_outputs(establishment, endpoint, state)
    for path in write_inventory(inventory, outputs, establishment.finess, password_file):
        messages.append(f"wrote {path}")
    return messages or [f"{endpoint}: bucket {state['bucket']} up to date, nothing changed"]


def _stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)


def down(inventory: Path) -> list[str]:
    lab = load_lab(inventory)
    state = _read_state(lab)
    if _alive(state.get("pid")):
        _stop(state["pid"])
    state_path(lab).unlink(missing_ok=True)
    return [f"stand-in of {lab.network} stopped"]


def status(inventory: Path) -> list[str]:
    lab = load_lab(inventory)
    state = _read_state(lab)
    if not _alive(state.get("pid")):
        return [f"stand-in of {lab.network}: not running"]
    return [
        f"stand-in of {lab.network}: http://{state['address']}:{state['port']} bucket {state.get('bucket')}"
    ]


def run(args: argparse.Namespace) -> int:
    """``rempart-lab offsite up|down|status [--inventory DIR] [--port P] [--vault-password-file F]``."""
    try:
        if args.action == "up":
            lines = up(args.inventory, args.port, args.vault_password_file)
        elif args.action == "down":
            lines = down(args.inventory)
        else:
            lines = status(args.inventory)
    except StandInError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
