"""Policies of the ``rempart-offsite`` pack: the invariants of the immutable offsite storage, enforced at
``pulumi preview``/``up`` whatever the program says. Each validate function takes the pulumi-policy
arguments (``resource_type``, ``props`` in camelCase, ``get_config()``) and a ``report_violation``
callback, so tests call them directly. Old ``…V2`` type tokens (pulumi-aws v6) are accepted too.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from rempart.model.establishment import EEA_REGIONS, OFFSITE_MIN_RETENTION_DAYS
from rempart.offsite.policy import (
    KMS_PROTECTED_ACTIONS,
    LEGAL_HOLD_ACTIONS,
    PROTECTED_CONFIGURATION_ACTIONS,
    VERSION_DESTRUCTION_ACTIONS,
    action_matches,
    allowed_actions,
    as_list,
)

Report = Callable[..., None]


def tokens(module: str, name: str, *, v2: bool = True) -> frozenset[str]:
    """The v7 type token of an aws resource, and its deprecated ``…V2`` twin."""
    lower = name[0].lower() + name[1:]
    found = {f"aws:{module}/{lower}:{name}"}
    if v2:
        found.add(f"aws:{module}/{lower}V2:{name}V2")
    return frozenset(found)


BUCKET = tokens("s3", "Bucket")
VERSIONING = tokens("s3", "BucketVersioning")
OBJECT_LOCK = tokens("s3", "BucketObjectLockConfiguration")
ENCRYPTION = tokens("s3", "BucketServerSideEncryptionConfiguration")
LIFECYCLE = tokens("s3", "BucketLifecycleConfiguration")
PUBLIC_ACCESS_BLOCK = tokens("s3", "BucketPublicAccessBlock", v2=False)
OWNERSHIP = tokens("s3", "BucketOwnershipControls", v2=False)
BUCKET_POLICY = tokens("s3", "BucketPolicy", v2=False)
LOGGING = tokens("s3", "BucketLogging")
KMS_KEY = tokens("kms", "Key", v2=False)
IDENTITY_POLICIES = frozenset(
    {
        "aws:iam/policy:Policy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
AWS_PROVIDER = "pulumi:providers:aws"
ENCRYPTION_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}
WRITER_FORBIDDEN = (*VERSION_DESTRUCTION_ACTIONS, *LEGAL_HOLD_ACTIONS, *PROTECTED_CONFIGURATION_ACTIONS)
DEFAULT_BREAK_GLASS_PATTERN = "*break-glass*"
DEFAULT_WRITER_PATTERN = "*-offsite-writer"
# Ways to give an IAM user rights outside its inline policy (which writer-cannot-destroy reads).
MANAGED_ATTACHMENTS = {
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "user",
    "aws:iam/policyAttachment:PolicyAttachment": "users",
    "aws:iam/userGroupMembership:UserGroupMembership": "user",
    "aws:iam/groupMembership:GroupMembership": "users",
}
# What every Object-Lock bucket of the stack must come with (BP100-EXT-03, HDS, BP100-DATA-04).
REQUIRED_SETTINGS = {
    "object lock configuration": OBJECT_LOCK,
    "versioning": VERSIONING,
    "public access block": PUBLIC_ACCESS_BLOCK,
    "bucket policy": BUCKET_POLICY,
    "access logging": LOGGING,
}
ROLE_TAG = "rempart:role"
LOG_BUCKET_ROLE = "offsite-access-logs"


def _config(args: Any, key: str, default: Any) -> Any:
    return (args.get_config() or {}).get(key, default)


def _document(value: Any) -> Mapping[str, Any] | None:
    """A policy document given as JSON text or as a mapping (None while unknown at preview)."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def _lock_days(retention: Mapping[str, Any]) -> int:
    return int(retention.get("days") or 0) + 365 * int(retention.get("years") or 0)


# -- resource policies ------------------------------------------------------------------------------------


def validate_eea_region(args: Any, report: Report) -> None:
    """HDS-02 / BP100-EXT-01: the provider and every resource that names a region stay in the EEA."""
    if args.resource_type != AWS_PROVIDER and not args.resource_type.startswith("aws:"):
        return
    region = args.props.get("region")
    allowed = EEA_REGIONS["aws"]
    if args.resource_type == AWS_PROVIDER and not region:
        report("the AWS provider has no explicit region: set it to the establishment's EEA region (HDS-02)")
    elif region and region not in allowed:
        report(f"region {region!r} is outside the EEA (HDS-02); allowed: {', '.join(allowed)}")


def validate_bucket(args: Any, report: Report) -> None:
    """Offsite repository buckets: Object Lock on, never force-destroyed, no public ACL."""
    if args.resource_type not in BUCKET:
        return
    props = args.props
    if props.get("acl") in ("public-read", "public-read-write", "authenticated-read"):
        report(f"bucket ACL {props['acl']!r} makes backups readable outside the establishment")
    tags = props.get("tags") or {}
    if tags.get(ROLE_TAG) == LOG_BUCKET_ROLE:
        return  # a log bucket cannot have Object Lock (S3 refuses it as a logging target)
    if not props.get("objectLockEnabled") and not (props.get("objectLockConfiguration") or {}):
        report("the bucket has no Object Lock: backups could be deleted (BP100-EXT-03)")
    if props.get("forceDestroy"):
        report("forceDestroy is on: `pulumi destroy` would empty the backup bucket")
    inline = (props.get("objectLockConfiguration") or {}).get("rule")
    if inline:  # pulumi-aws v6 inline form
        _check_lock_rule(args, inline, report)


def _check_lock_rule(args: Any, rule: Mapping[str, Any], report: Report) -> None:
    retention = rule.get("defaultRetention") or {}
    minimum = int(_config(args, "minRetentionDays", OFFSITE_MIN_RETENTION_DAYS))
    if retention.get("mode") != "COMPLIANCE":
        report(
            f"default retention mode is {retention.get('mode')!r}: COMPLIANCE is required (GOVERNANCE can be bypassed)"
        )
    if _lock_days(retention) < minimum:
        report(
            f"default retention {_lock_days(retention)} days is below the policy minimum of {minimum} days"
        )


def validate_object_lock(args: Any, report: Report) -> None:
    """BP100-EXT-03: COMPLIANCE mode, default retention >= policy."""
    if args.resource_type not in OBJECT_LOCK:
        return
    if args.props.get("objectLockEnabled", "Enabled") != "Enabled":
        report("objectLockEnabled must be 'Enabled'")
    rule = args.props.get("rule")
    if not rule:
        report("no default retention rule: new objects would not be locked")
        return
    _check_lock_rule(args, rule, report)


def validate_versioning(args: Any, report: Report) -> None:
    if args.resource_type not in VERSIONING:
        return
    status = (args.props.get("versioningConfiguration") or {}).get("status")
    if status != "Enabled":
        report(f"versioning status {status!r}: must be 'Enabled' (Object Lock protects versions)")


def validate_public_access_block(args: Any, report: Report) -> None:
    if args.resource_type not in PUBLIC_ACCESS_BLOCK:
        return
    names = ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
    missing = [n for n in names if args.props.get(n) is not True]
    if missing:
        report(f"public access is not fully blocked: {', '.join(missing)} must be true")


def validate_ownership(args: Any, report: Report) -> None:
    if args.resource_type not in OWNERSHIP:
        return
    ownership = (args.props.get("rule") or {}).get("objectOwnership")
    if ownership != "BucketOwnerEnforced":
        report(f"object ownership {ownership!r}: use BucketOwnerEnforced (ACLs disabled)")


def validate_encryption(args: Any, report: Report) -> None:
    """BP100-DATA-04: default server-side encryption on every bucket."""
    if args.resource_type not in ENCRYPTION:
        return
    rules = args.props.get("rules") or []
    algorithms = {(r.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") for r in rules}
    if not rules or not algorithms <= ENCRYPTION_ALGORITHMS or None in algorithms:
        report(
            f"default encryption must be one of {', '.join(sorted(ENCRYPTION_ALGORITHMS))} (got {algorithms or 'none'})"
        )


def validate_kms_key(args: Any, report: Report) -> None:
    """A key that encrypts backups: rotation on, and nobody but break-glass may disable or delete it."""
    if args.resource_type not in KMS_KEY:
        return
    if args.props.get("enableKeyRotation") is not True:
        report("key rotation is off: enableKeyRotation must be true")
    document = _document(args.props.get("policy"))
    if document is None:
        if args.props.get("policy") is None:
            report(
                "the key has the default policy: deny DisableKey/ScheduleKeyDeletion to all but break-glass"
            )
        return
    denied = {
        action
        for statement in as_list(document.get("Statement"))
        if statement.get("Effect") == "Deny"
        for action in KMS_PROTECTED_ACTIONS[:2]
        if any(action_matches(p, action) for p in as_list(statement.get("Action")))
    }
    missing = sorted(set(KMS_PROTECTED_ACTIONS[:2]) - denied)
    if missing:
        report(
            f"the key policy does not deny {', '.join(missing)}: disabling or deleting it destroys every backup"
        )


def validate_tls_only(args: Any, report: Report) -> None:
    """Bucket policies refuse plain HTTP."""
    if args.resource_type not in BUCKET_POLICY:
        return
    document = _document(args.props.get("policy"))
    if document is None:
        return  # unknown until the bucket exists (preview)
    for statement in as_list(document.get("Statement")):
        condition = statement.get("Condition") or {}
        insecure = str((condition.get("Bool") or {}).get("aws:SecureTransport", "")).lower() == "false"
        covers_all = any(
            action_matches(p, "s3:GetObject") and action_matches(p, "s3:PutObject")
            for p in as_list(statement.get("Action"))
        )
        if statement.get("Effect") == "Deny" and insecure and covers_all:
            return
    report("the bucket policy does not deny requests without TLS (aws:SecureTransport = false, Action s3:*)")


def _policy_owner(args: Any) -> str:
    return str(args.props.get("role") or args.props.get("user") or args.props.get("name") or args.name)


def validate_identity_cannot_destroy(args: Any, report: Report) -> None:
    """No identity of the stack (the writer above all) may delete versions, bypass governance, place legal
    holds or change the bucket's protection, except the break-glass role."""
    if args.resource_type not in IDENTITY_POLICIES:
        return
    pattern = str(_config(args, "breakGlassRolePattern", DEFAULT_BREAK_GLASS_PATTERN))
    if args.resource_type == "aws:iam/rolePolicy:RolePolicy" and fnmatch.fnmatchcase(
        _policy_owner(args), pattern
    ):
        return
    document = _document(args.props.get("policy"))
    if document is None:
        return
    granted = allowed_actions(dict(document), WRITER_FORBIDDEN)
    if granted:
        report(f"{_policy_owner(args)} may {', '.join(sorted(granted))}: only break-glass may (BP100-EXT-03)")


def validate_writer_has_no_managed_policy(args: Any, report: Report) -> None:
    """The writer's rights are its inline policy only: a managed policy or a group would add rights that
    writer-cannot-destroy never sees (AdministratorAccess on the backup server's key)."""
    field = MANAGED_ATTACHMENTS.get(args.resource_type)
    if field is None:
        return
    pattern = str(_config(args, "writerUserPattern", DEFAULT_WRITER_PATTERN))
    for user in as_list(args.props.get(field)):
        if isinstance(user, str) and fnmatch.fnmatchcase(user, pattern):
            report(f"{user} gets rights outside its inline policy ({args.resource_type.rsplit(':', 1)[-1]})")


# -- stack policy -----------------------------------------------------------------------------------------


def validate_settings_present(args: Any, report: Report) -> None:
    """Every bucket with Object Lock comes with its lock configuration, versioning, public access block,
    policy and access logging (matched by bucket name; by count while names are unknown at preview)."""
    locked = [
        r for r in args.resources
        if r.resource_type in BUCKET and r.props.get("objectLockEnabled")
    ]  # fmt: skip
    for label, types in REQUIRED_SETTINGS.items():
        settings = [r for r in args.resources if r.resource_type in types]
        named = {r.props.get("bucket") for r in settings}
        for bucket in locked:
            name = bucket.props.get("bucket")
            if isinstance(name, str) and all(isinstance(n, str) for n in named):
                if name not in named:
                    report(f"bucket {name} has no {label}", bucket.urn)
            elif len(settings) < len(locked):
                report(f"{len(locked)} Object-Lock bucket(s) but {len(settings)} {label}(s)", bucket.urn)
                break


def validate_lifecycle_after_lock(args: Any, report: Report) -> None:
    """Noncurrent versions of a locked bucket must not be expired before its default lock ends (a bucket whose
    name is not known yet, at preview, is held to the longest lock of the stack)."""
    locks: dict[Any, int] = {}
    for r in args.resources:
        if r.resource_type in OBJECT_LOCK:
            days = _lock_days((r.props.get("rule") or {}).get("defaultRetention") or {})
            bucket = r.props.get("bucket")
            locks[bucket] = max(days, locks.get(bucket, 0))
    if not locks:
        return
    for resource in args.resources:
        if resource.resource_type not in LIFECYCLE:
            continue
        bucket = resource.props.get("bucket")
        known = isinstance(bucket, str) and all(isinstance(b, str) for b in locks)
        longest = locks.get(bucket) if known else max(locks.values())
        if longest is None:
            continue  # a bucket without Object Lock (the access-log bucket)
        for rule in resource.props.get("rules") or []:
            days = (rule.get("noncurrentVersionExpiration") or {}).get("noncurrentDays")
            if rule.get("status") == "Enabled" and days is not None and int(days) < longest:
                report(
                    f"lifecycle rule {rule.get('id')!r} expires noncurrent versions after {days} days, "
                    f"before the {longest}-day lock ends",
                    resource.urn,
                )


MANDATORY = EnforcementLevel.MANDATORY

RESOURCE_POLICIES: dict[str, tuple[str, Callable[[Any, Report], None]]] = {
    "eea-region": ("Health data stays in the EEA (HDS-02, BP100-EXT-01)", validate_eea_region),
    "offsite-bucket": ("Object Lock on, no force-destroy, no public ACL (BP100-EXT-03)", validate_bucket),
    "object-lock-compliance": ("COMPLIANCE mode, retention >= policy (BP100-EXT-03)", validate_object_lock),
    "versioning-enabled": ("Versioning enabled", validate_versioning),
    "public-access-blocked": ("All four public access blocks", validate_public_access_block),
    "bucket-owner-enforced": ("ACLs disabled", validate_ownership),
    "encryption-at-rest": ("Default server-side encryption (BP100-DATA-04)", validate_encryption),
    "kms-key-protected": ("KMS keys: rotation, no disable/deletion but break-glass", validate_kms_key),
    "tls-only": ("Bucket policies deny non-TLS requests", validate_tls_only),
    "writer-cannot-destroy": (
        "No identity but break-glass may delete versions or change protection",
        validate_identity_cannot_destroy,
    ),
    "writer-inline-only": (
        "No managed policy or group on the writer (its rights stay the inline policy checked above)",
        validate_writer_has_no_managed_policy,
    ),
}
STACK_POLICIES: dict[str, tuple[str, Callable[[Any, Report], None]]] = {
    "lifecycle-after-lock": ("Noncurrent versions expire only after the lock", validate_lifecycle_after_lock),
    "offsite-settings-present": (
        "Lock configuration, versioning, public access block, policy and logging on every locked bucket",
        validate_settings_present,
    ),
}


MIN_RETENTION = {"minRetentionDays": {"type": "integer", "default": OFFSITE_MIN_RETENTION_DAYS}}
CONFIG_SCHEMAS = {
    "offsite-bucket": PolicyConfigSchema(properties=MIN_RETENTION),
    "object-lock-compliance": PolicyConfigSchema(properties=MIN_RETENTION),
    "writer-cannot-destroy": PolicyConfigSchema(
        properties={"breakGlassRolePattern": {"type": "string", "default": DEFAULT_BREAK_GLASS_PATTERN}}
    ),
    "writer-inline-only": PolicyConfigSchema(
        properties={"writerUserPattern": {"type": "string", "default": DEFAULT_WRITER_PATTERN}}
    ),
}


def policies() -> list[Any]:
    built: list[Any] = [
        ResourceValidationPolicy(
            name=name,
            description=description,
            validate=validate,
            enforcement_level=MANDATORY,
            config_schema=CONFIG_SCHEMAS.get(name),
        )
        for name, (description, validate) in RESOURCE_POLICIES.items()
    ]
    built += [
        StackValidationPolicy(
            name=name, description=description, validate=validate, enforcement_level=MANDATORY
        )
        for name, (description, validate) in STACK_POLICIES.items()
    ]
    return built
