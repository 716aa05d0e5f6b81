"""The offsite stack of one establishment: read and validate its establishment file (the same code as
Ansible), create the vault in the establishment's EEA region, export what Ansible needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi_aws as aws
from immutable_vault import ImmutableBackupVault, VaultSettings

import pulumi
from rempart.model.establishment import Establishment
from rempart.model.inventory import (
    ESTABLISHMENT_FILE,
    inventory_groups,
    inventory_hosts,
    load_establishment_data,
)
from rempart.model.validation import load_valid

PROJECT_DIR = Path(__file__).resolve().parent
CONFIG_KEY = "establishmentFile"
STATE_BUCKET_KEY = "stateBucket"  # optional: the S3 bucket of a self-managed state (deployer access)
KEY_ADMINISTRATOR_KEY = "keyAdministratorArn"  # sse-kms: the identity running the first `up`
ALERT_EMAIL_KEY = "alertEmail"  # optional: mailed on delete markers, protection changes, budget
MONTHLY_BUDGET_KEY = "monthlyBudgetUsd"  # optional, default 100
WRITER_KEY_ROTATION_KEY = "writerKeyRotation"  # set by `rempart offsite-rotate-writer-key`


def establishment_path(config: pulumi.Config) -> Path:
    path = Path(config.require(CONFIG_KEY))
    return path if path.is_absolute() else (PROJECT_DIR / path).resolve()


def load_establishment(path: Path) -> Establishment:
    """Validated like `rempart validate`; the inventory's hosts are checked when the file sits in one
    (group_vars/all/ of an establishment's inventory, or group_vars/<group>/ of a GHT: that group's hosts)."""
    in_group_vars = (
        len(path.parts) >= 3 and path.parts[-3] == "group_vars" and path.name == ESTABLISHMENT_FILE.name
    )
    inventory = path.parents[2] if in_group_vars else None
    hosts = None
    if inventory and (inventory / "hosts.yml").exists():
        group = path.parts[-2]
        hosts = (
            inventory_hosts(inventory) if group == "all" else inventory_groups(inventory).get(group, set())
        )
    return load_valid(load_establishment_data(path), hosts)


def restic_repositories(
    establishment: Establishment, bucket: pulumi.Output[str]
) -> pulumi.Output[dict[str, str]]:
    endpoint = f"s3.{establishment.offsite.region}.amazonaws.com"
    return bucket.apply(lambda b: {d.name: f"s3:{endpoint}/{b}/{d.name}" for d in establishment.datasets})


def build(establishment: Establishment, **stack_config: Any) -> ImmutableBackupVault:
    """The offsite stack of ``establishment``; ``stack_config``: the keyword arguments of
    :meth:`VaultSettings.from_establishment` (state bucket, key administrator, alert e-mail, budget, writer key
    rotation), all optional."""
    region = establishment.offsite.region
    provider = aws.Provider(
        "offsite-region",
        region=region,
        default_tags={"tags": {"rempart:finess": establishment.finess}},
    )
    vault = ImmutableBackupVault(
        "offsite",
        VaultSettings.from_establishment(establishment, **stack_config),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )
    for key, value in stack_outputs(establishment, vault).items():
        pulumi.export(key, value)
    return vault


def stack_outputs(establishment: Establishment, vault: ImmutableBackupVault) -> dict[str, object]:
    """What `rempart offsite-outputs` writes into the inventory (secrets stay secret)."""
    offsite, region = establishment.offsite, establishment.offsite.region
    return {
        "finess": establishment.finess,
        "region": region,
        "endpoint": f"https://s3.{region}.amazonaws.com",
        "bucket": vault.bucket.id,
        "bucket_arn": vault.bucket.arn,
        "log_bucket": vault.log_bucket.id,
        # repeated from the plan (Establishment.offsite_plan): roles/offsite_copy checks the inventory's copy
        **establishment.offsite_plan(),
        "object_lock_mode": "COMPLIANCE",
        "encryption": offsite.encryption,
        "kms_key_arn": vault.kms_key.arn if vault.kms_key else None,
        "break_glass_role_arn": vault.break_glass_role_arn,
        "deployer_role_arn": vault.deployer_role.arn,
        "alert_topic_arn": vault.detection.topic.arn,
        "trail_bucket": vault.detection.trail_bucket.id,
        "restic_repositories": restic_repositories(establishment, vault.bucket.id),
        "writer_user": vault.writer_user.name,
        "writer_access_key_id": vault.writer_key.id,
        "writer_secret_access_key": pulumi.Output.secret(vault.writer_key.secret),
        "restore_user": vault.restore_user.name,
        "restore_access_key_id": vault.restore_key.id,
        "restore_secret_access_key": pulumi.Output.secret(vault.restore_key.secret),
    }


def main() -> ImmutableBackupVault:
    config = pulumi.Config("rempart")
    return build(
        load_establishment(establishment_path(config)),
        state_bucket=config.get(STATE_BUCKET_KEY) or None,
        key_administrator_arn=config.get(KEY_ADMINISTRATOR_KEY) or None,
        alert_email=config.get(ALERT_EMAIL_KEY) or None,
        monthly_budget=float(config.get(MONTHLY_BUDGET_KEY) or 100),
        writer_key_rotation=config.get(WRITER_KEY_ROTATION_KEY) or None,
    )
