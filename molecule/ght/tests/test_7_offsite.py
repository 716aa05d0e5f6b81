"""offsite_copy on the GHT: each establishment's copy unit sends its own repositories to its own Object-Lock bucket
with its own writer identity (strict moto on the lab network's gateway, one bucket and stack per establishment, as
`rempart-lab offsite up` makes one); one establishment's keys open nothing of another's bucket (BP100-EXT-01/03).

The stand-in is started here, not by create: `rempart-lab offsite` serves one establishment. Each establishment's
outputs go to its own group_vars/<group>/ of a second inventory source (as `rempart offsite-outputs` would write
them into the GHT inventory), then molecule/ght/offsite.yml converges the three views at once."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import DATASET, ESTABLISHMENTS, INVENTORY, PROJECT, playbook, view

from rempart.model.establishment import Establishment as Model
from rempart.model.inventory import load_establishment_data
from rempart.model.validation import load_valid
from rempart.offsite.outputs import split_outputs
from rempart_lab.offsite import provision, stack_outputs

GATEWAY, PORT = "10.89.69.1", 9000
ENDPOINT = f"http://{GATEWAY}:{PORT}"


def s3_as(stack: dict, role: str):
    """An S3 client of the stand-in with one of an establishment's identities (writer or restore)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=ENDPOINT, region_name=stack["region"],
        aws_access_key_id=stack[f"{role}_access_key_id"], aws_secret_access_key=stack[f"{role}_secret_access_key"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )  # fmt: skip


def _answers() -> bool:
    try:
        with socket.create_connection((GATEWAY, PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """Strict moto on the gateway; one bucket + admin/writer/restore identities per establishment."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    python = Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(python), str(PROJECT / "tests" / "moto_lab.py"), "-H", GATEWAY, "-p", str(PORT)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _answers():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        stacks = {}
        for establishment in ESTABLISHMENTS:
            model: Model = load_valid(
                load_establishment_data(INVENTORY / "group_vars" / establishment.group / "establishment.yml")
            )
            stacks[establishment.finess] = stack_outputs(model, ENDPOINT, provision(ENDPOINT, model))
        yield stacks
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def converged(stand_in, tmp_path_factory) -> dict:
    """offsite_copy with each establishment's outputs in its own group_vars, then each copy unit once."""
    extra = tmp_path_factory.mktemp("offsite-inventory")
    groups = {}
    for establishment in ESTABLISHMENTS:
        public, secrets = split_outputs(stand_in[establishment.finess], establishment.finess)
        folder = extra / "group_vars" / establishment.group
        folder.mkdir(parents=True)
        (folder / "offsite_outputs.yml").write_text(yaml.safe_dump(public))
        (folder / "vault_offsite.yml").write_text(yaml.safe_dump(secrets))
        groups[establishment.group] = {"hosts": {view(establishment): None}}
    (extra / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": groups}}))
    result = playbook(str(Path(__file__).parents[1] / "offsite.yml"), "-i", str(extra))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for stack in stand_in.values():  # no_log: the writer secret is never printed
        assert stack["writer_secret_access_key"] not in result.stdout + result.stderr
    return stand_in


@pytest.mark.parametrize("establishment", ESTABLISHMENTS, ids=lambda e: e.group)
def test_each_copy_goes_to_its_own_bucket_with_its_own_key(converged, server, establishment) -> None:
    stack = converged[establishment.finess]
    suffix = establishment.suffix
    writer = server.file(f"/etc/rempart{suffix}/offsite/writer.env")
    assert writer.user == "root" and writer.mode == 0o600
    assert f"AWS_ACCESS_KEY_ID={stack['writer_access_key_id']}\n" in writer.content_string
    assert server.run(f"systemctl start rempart-offsite-copy{suffix}.service").rc == 0
    metrics = server.file(
        f"/var/lib/prometheus/node-exporter/rempart-{establishment.finess}/rempart_offsite_{DATASET}.prom"
    ).content_string
    assert (
        f'rempart_offsite_last_run_success{{dataset="{DATASET}",host="{view(establishment)}"}} 1' in metrics
    )
    # the bucket holds the establishment's own data: its finess.txt, read back with its restore identity
    restore = stack["restore_access_key_id"], stack["restore_secret_access_key"]
    dumped = server.run(
        f"AWS_ACCESS_KEY_ID={restore[0]} AWS_SECRET_ACCESS_KEY={restore[1]} "
        f"RESTIC_PASSWORD='{establishment.repository_password}' RESTIC_CACHE_DIR=/tmp/ght-offsite-cache "
        f"restic --no-lock -r {stack['restic_repositories'][DATASET]} dump latest /srv/partages/finess.txt"
    )
    assert dumped.rc == 0 and dumped.stdout.strip() == establishment.finess, dumped.stderr


def test_one_establishments_keys_open_nothing_of_anothers_bucket(converged) -> None:
    from botocore.exceptions import ClientError

    a, b = (converged[e.finess] for e in ESTABLISHMENTS[:2])
    for role in ("writer", "restore"):
        with pytest.raises(ClientError) as denied:
            s3_as(a, role).list_objects_v2(Bucket=b["bucket"])
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        s3_as(a, "writer").put_object(Bucket=b["bucket"], Key=f"{DATASET}/intrus", Body=b"x")
    assert s3_as(b, "restore").list_objects_v2(Bucket=b["bucket"], Prefix=f"{DATASET}/")["KeyCount"] > 0
    buckets = {converged[e.finess]["bucket"] for e in ESTABLISHMENTS}
    assert len(buckets) == len(ESTABLISHMENTS)
