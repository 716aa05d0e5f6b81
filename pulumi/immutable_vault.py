"""``ImmutableBackupVault``: the offsite bucket of one establishment, immutable even to the backup server.

What it creates, and the requirement each piece serves (docs/offsite.md has the operator's view):

* a bucket with Object Lock in COMPLIANCE mode, default retention ``offsite.retention_days``, versioning
  (BP100-EXT-03);
* default encryption (BP100-DATA-04). **SSE-S3 by default**: restic already encrypts client-side with the
  establishment's keys (HDS-03), and a KMS key that someone can disable or schedule for deletion is itself
  a way to destroy every backup (crypto-shredding). ``offsite.encryption: sse-kms`` adds a dedicated key
  with rotation on and a key policy that denies disabling, deleting or re-policing it to all but
  break-glass;
* all four public access blocks, ``BucketOwnerEnforced`` (no ACLs);
* a bucket policy (:func:`rempart.offsite.policy.bucket_policy`): TLS only, version deletion and changes to
  lock/lifecycle/versioning/policy for break-glass only, retention capped by
  ``s3:object-lock-remaining-retention-days``;
* lifecycle: noncurrent versions expire only after the longest possible lock, restic packs move to a
  colder but immediately readable class;
* server access logs to a separate log bucket (a bucket with Object Lock cannot receive them);
* a writer identity (backup server), a restore identity (read only), a break-glass role (MFA) unless the
  establishment names one; tags with the FINESS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi_aws as aws
from offsite_detection import build_detection

import pulumi
from rempart.model.establishment import Establishment
from rempart.offsite.policy import (
    OPERATORS,
    break_glass_trust_policy,
    bucket_policy,
    kms_key_policy,
    lifecycle_rules,
    log_bucket_policy,
    operator_permissions,
    restore_policy,
    writer_policy,
)

REQUIREMENTS = "HDS-02 HDS-03 BP100-EXT-01 BP100-EXT-03 BP100-DATA-04"
LOG_RETENTION_DAYS = 400


@dataclass(frozen=True)
class VaultSettings:
    finess: str
    name: str
    region: str
    retention_days: int
    retention_cap_days: int
    encryption: str
    break_glass_role_arn: str | None
    cold_storage_class: str
    cold_after_days: int
    datasets: tuple[str, ...] = ()
    state_bucket: str | None = None  # self-managed Pulumi state (`pulumi login s3://...`); None: Pulumi Cloud
    # sse-kms: who runs the first `up` (AWS's key-policy lockout rule)
    key_administrator_arn: str | None = None
    alert_email: str | None = (
        None  # subscribed to the alert topic (delete markers, protection changes, budget)
    )
    monthly_budget: float = 100.0  # USD, the establishment's tagged resources (offsite_detection.py)
    writer_key_rotation: str | None = None  # `rempart offsite-rotate-writer-key` sets it (a UTC timestamp)

    @classmethod
    def from_establishment(
        cls,
        establishment: Establishment,
        state_bucket: str | None = None,
        key_administrator_arn: str | None = None,
        alert_email: str | None = None,
        monthly_budget: float = 100.0,
        writer_key_rotation: str | None = None,
    ) -> VaultSettings:
        offsite, lock = establishment.offsite, establishment.offsite_plan()
        return cls(
            finess=establishment.finess,
            name=establishment.name,
            region=offsite.region,
            retention_days=lock["retention_days"],
            retention_cap_days=lock["retention_cap_days"],
            encryption=offsite.encryption,
            break_glass_role_arn=offsite.break_glass_role_arn,
            cold_storage_class=offsite.cold_storage_class,
            cold_after_days=offsite.cold_after_days,
            datasets=tuple(d.name for d in establishment.datasets),
            state_bucket=state_bucket,
            key_administrator_arn=key_administrator_arn,
            alert_email=alert_email,
            monthly_budget=monthly_budget,
            writer_key_rotation=writer_key_rotation,
        )

    @property
    def tags(self) -> dict[str, str]:
        return {
            "rempart:finess": self.finess,
            "rempart:component": "offsite",
            "rempart:requirements": REQUIREMENTS,
        }


def snake_case(value: Any) -> Any:
    """S3 API shapes (``NoncurrentDays``) -> Pulumi argument names (``noncurrent_days``)."""
    if isinstance(value, dict):
        return {re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", k).lower(): snake_case(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_case(v) for v in value]
    return value


def _json(document: pulumi.Output[Any]) -> pulumi.Output[str]:
    return document.apply(lambda d: json.dumps(d, sort_keys=True))


class ImmutableBackupVault(pulumi.ComponentResource):
    """The offsite Object-Lock bucket, its log bucket and its identities."""

    def __init__(
        self, name: str, settings: VaultSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rempart:offsite:ImmutableBackupVault", name, None, opts)
        self.settings = settings
        self.resources: list[pulumi.Resource] = []
        self.break_glass_role: aws.iam.Role | None = None
        tags = settings.tags
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        if settings.encryption == "sse-kms" and not settings.key_administrator_arn:
            raise ValueError(
                "offsite.encryption is sse-kms: AWS creates a key only if its policy lets the creator re-police "
                "it; run `pulumi config set rempart:keyAdministratorArn <ARN of the user or role running this "
                "first pulumi up>` (docs/offsite.md, KMS)"
            )
        self.break_glass_role_arn = self._break_glass(name, account_id, tags)
        self.deployer_role = self._operator_role(name, "deployer", account_id, tags)
        self.kms_key = self._kms_key(name, account_id, tags) if settings.encryption == "sse-kms" else None
        kms_arn = self.kms_key.arn if self.kms_key else None

        self.bucket = self._add(
            aws.s3.Bucket(
                name,
                bucket_prefix=f"rempart-{settings.finess}-offsite-",
                object_lock_enabled=True,
                force_destroy=False,
                tags={**tags, "rempart:role": "offsite-repository"},
                opts=self._child(protect=True),
            )
        )
        bucket = self.bucket.id
        first_setting = len(self.resources)
        self._add(
            aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=bucket,
                versioning_configuration={"status": "Enabled"},
                opts=self._child(),
            )
        )
        self._add(
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=bucket,
                object_lock_enabled="Enabled",
                rule={"default_retention": {"mode": "COMPLIANCE", "days": settings.retention_days}},
                opts=self._child(),
            )
        )
        by_default: dict[str, Any] = {"sse_algorithm": "AES256"}
        if self.kms_key is not None:
            by_default = {"sse_algorithm": "aws:kms", "kms_master_key_id": self.kms_key.arn}
        self._add(
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption",
                bucket=bucket,
                rules=[
                    {
                        "apply_server_side_encryption_by_default": by_default,
                        "bucket_key_enabled": self.kms_key is not None,
                    }
                ],
                opts=self._child(),
            )
        )
        self._block_public_access(name, bucket)
        self._add(
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle",
                bucket=bucket,
                rules=snake_case(
                    lifecycle_rules(
                        settings.retention_cap_days,
                        settings.cold_storage_class,
                        settings.cold_after_days,
                        settings.datasets,
                    )
                ),
                opts=self._child(),
            )
        )
        bucket_settings = self.resources[first_setting:]
        self.log_bucket, log_policy = self._log_bucket(name, account_id, tags)
        bucket_settings.append(
            aws.s3.BucketLogging(
                f"{name}-logging",
                bucket=bucket,
                target_bucket=self.log_bucket.id,
                target_prefix="access/",
                opts=self._child(depends_on=[log_policy]),  # S3 checks the log bucket lets it write
            )
        )
        self._add(bucket_settings[-1])
        self.detection = build_detection(
            self, name, settings, self.bucket, self.log_bucket, log_policy, account_id, tags
        )
        self.resources += self.detection.resources
        bucket_settings += self.detection.bucket_settings
        self._operator_policy(name, "deployer", self.deployer_role, account_id, kms_arn)
        if self.break_glass_role is not None:
            self._operator_policy(name, "break-glass", self.break_glass_role, account_id, kms_arn)
        self.bucket_policy = self._add(
            aws.s3.BucketPolicy(
                f"{name}-policy",
                bucket=bucket,
                policy=_json(
                    pulumi.Output.all(
                        self.bucket.arn, self.break_glass_role_arn, self.deployer_role.arn
                    ).apply(lambda a: bucket_policy(a[0], a[1], settings.retention_cap_days, a[2]))
                ),
                # last: it denies changes to every other setting to all but break-glass (deployer included)
                opts=self._child(depends_on=bucket_settings),
            )
        )
        self.writer_user, self.writer_key = self._identity(
            name,
            "writer",
            pulumi.Output.all(self.bucket.arn, kms_arn).apply(lambda a: writer_policy(a[0], a[1])),
            tags,
        )
        self.restore_user, self.restore_key = self._identity(
            name,
            "restore",
            pulumi.Output.all(self.bucket.arn, kms_arn).apply(lambda a: restore_policy(a[0], a[1])),
            tags,
        )
        self.register_outputs(
            {
                "bucket": self.bucket.id,
                "log_bucket": self.log_bucket.id,
                "writer_user": self.writer_user.name,
                "restore_user": self.restore_user.name,
                "break_glass_role_arn": self.break_glass_role_arn,
                "deployer_role_arn": self.deployer_role.arn,
                "alert_topic_arn": self.detection.topic.arn,
            }
        )

    # -- helpers -------------------------------------------------------------------------------------------

    def _child(self, **options: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **options)

    def _add(self, resource: Any) -> Any:
        self.resources.append(resource)
        return resource

    def _block_public_access(self, name: str, bucket: pulumi.Input[str]) -> None:
        self._add(
            aws.s3.BucketPublicAccessBlock(
                f"{name}-public-access-block",
                bucket=bucket,
                block_public_acls=True,
                ignore_public_acls=True,
                block_public_policy=True,
                restrict_public_buckets=True,
                opts=self._child(),
            )
        )
        self._add(
            aws.s3.BucketOwnershipControls(
                f"{name}-ownership",
                bucket=bucket,
                rule={"object_ownership": "BucketOwnerEnforced"},
                opts=self._child(),
            )
        )

    def _break_glass(
        self, name: str, account_id: pulumi.Output[str], tags: dict[str, str]
    ) -> pulumi.Output[str]:
        if self.settings.break_glass_role_arn:
            return pulumi.Output.from_input(self.settings.break_glass_role_arn)
        self.break_glass_role = self._operator_role(name, "break-glass", account_id, tags)
        return self.break_glass_role.arn

    def _operator_role(
        self, name: str, kind: str, account_id: pulumi.Output[str], tags: dict[str, str]
    ) -> aws.iam.Role:
        """The deployer (runs `pulumi up` for the changes the lock allows, docs/offsite.md, day 2) or
        break-glass (also the protected settings): a role of the account, assumed with MFA only."""
        return self._add(
            aws.iam.Role(
                f"{name}-{kind}",
                name=f"rempart-{self.settings.finess}-offsite-{kind}",
                description=OPERATORS[kind],
                assume_role_policy=_json(account_id.apply(break_glass_trust_policy)),
                max_session_duration=3600,
                tags=tags,
                opts=self._child(),
            )
        )

    def _operator_policy(
        self,
        name: str,
        kind: str,
        role: aws.iam.Role,
        account_id: pulumi.Output[str],
        kms_arn: pulumi.Output[str] | None,
    ) -> None:
        finess, state_bucket = self.settings.finess, self.settings.state_bucket
        trail_bucket_arn = self.detection.trail_bucket.arn
        document = pulumi.Output.all(
            self.bucket.arn, self.log_bucket.arn, account_id, kms_arn, trail_bucket_arn
        ).apply(
            lambda a: operator_permissions(
                kind,
                a[0],
                a[1],
                f"arn:aws:iam::{a[2]}:user/rempart/rempart-{finess}-offsite-*",
                a[3],
                state_bucket,
                [a[4]],
            )
        )
        self._add(
            aws.iam.RolePolicy(
                f"{name}-{kind}-policy", role=role.id, policy=_json(document), opts=self._child()
            )
        )

    def _kms_key(self, name: str, account_id: pulumi.Output[str], tags: dict[str, str]) -> aws.kms.Key:
        return self._add(
            aws.kms.Key(
                f"{name}-key",
                description=f"Offsite backups of FINESS {self.settings.finess} (rempart)",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=_json(
                    pulumi.Output.all(account_id, self.break_glass_role_arn).apply(
                        lambda a: kms_key_policy(a[0], a[1], self.settings.key_administrator_arn)
                    )
                ),
                tags=tags,
                opts=self._child(protect=True),
            )
        )

    def _log_bucket(
        self, name: str, account_id: pulumi.Output[str], tags: dict[str, str]
    ) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        log_bucket = self._add(
            aws.s3.Bucket(
                f"{name}-logs",
                bucket_prefix=f"rempart-{self.settings.finess}-offsite-logs-",
                force_destroy=False,
                tags={**tags, "rempart:role": "offsite-access-logs"},
                opts=self._child(),
            )
        )
        self._add(
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-logs-encryption",
                bucket=log_bucket.id,
                rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
                opts=self._child(),
            )
        )
        self._block_public_access(f"{name}-logs", log_bucket.id)
        policy = self._add(
            aws.s3.BucketPolicy(
                f"{name}-logs-policy",
                bucket=log_bucket.id,
                policy=_json(
                    pulumi.Output.all(log_bucket.arn, self.bucket.arn, account_id).apply(
                        lambda a: log_bucket_policy(
                            a[0], a[1], a[2], [f"arn:aws:s3:::rempart-{self.settings.finess}-offsite-trail-*"]
                        )
                    )
                ),
                opts=self._child(depends_on=self.resources[-2:]),
            )
        )
        self._add(
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-logs-lifecycle",
                bucket=log_bucket.id,
                rules=[
                    {
                        "id": "expire-access-logs",
                        "status": "Enabled",
                        "filter": {"prefix": ""},
                        "expiration": {"days": LOG_RETENTION_DAYS},
                    }
                ],
                opts=self._child(),
            )
        )
        return log_bucket, policy

    def _identity(
        self, name: str, role: str, policy: pulumi.Output[Any], tags: dict[str, str]
    ) -> tuple[aws.iam.User, aws.iam.AccessKey]:
        rotate = role == "writer" and bool(self.settings.writer_key_rotation)
        user = self._add(
            aws.iam.User(
                f"{name}-{role}",
                name=f"rempart-{self.settings.finess}-offsite-{role}",
                path="/rempart/",
                force_destroy=False,
                tags={**tags, "rempart:identity": role},
                opts=self._child(),
            )
        )
        self._add(
            aws.iam.UserPolicy(
                f"{name}-{role}-policy",
                name=f"rempart-offsite-{role}",
                user=user.name,
                policy=_json(policy),
                opts=self._child(),
            )
        )
        key = self._add(
            aws.iam.AccessKey(
                # a new rotation is a new logical name: `pulumi up` makes the new key, then deletes the old one
                f"{name}-{role}-key" + (f"-{self.settings.writer_key_rotation}" if rotate else ""),
                user=user.name,
                opts=self._child(additional_secret_outputs=["secret"]),
            )
        )
        return user, key
