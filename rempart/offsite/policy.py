"""IAM and bucket policy documents of the immutable offsite bucket, as plain data.

One source for the Pulumi component (which deploys them), the policy pack and ``rempart verify-offsite``
(which check them), and the moto tests. Requirements: BP100-EXT-03 (distinct write and read identities,
delete/overwrite refused within retention), HDS-02/BP100-EXT-01 (EEA), BP100-DATA-04 (encryption).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Policy = dict[str, Any]

# What nobody but break-glass may do to the bucket's protection (the writer never, see WRITER_DENIED): each
# could leave new objects unlocked or unreadable (lock, versioning, encryption), open the bucket (policy,
# public access, ownership, ACL, replication) or blind the audit trail (logging).
PROTECTED_CONFIGURATION_ACTIONS = (
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketLogging",
    "s3:PutBucketAcl",
    "s3:PutReplicationConfiguration",
    "s3:DeleteBucket",
)
# Day-2 changes the lock allows: the deployer's `pulumi up` may make them (nobody else, the writer never).
# None can shorten a lock or remove a locked version: lifecycle never deletes a version before its lock ends
# (and the policy pack refuses expiries under the cap and unreadable storage classes at preview).
DEPLOYER_BUCKET_ACTIONS = (
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketTagging",
    "s3:PutInventoryConfiguration",
    "s3:PutBucketNotification",
)
# What `pulumi refresh`/`up` reads of the bucket (pulumi-aws reads every sub-resource of a bucket).
PULUMI_BUCKET_READS = (
    "s3:ListBucket",
    "s3:GetBucket*",
    "s3:GetLifecycleConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:GetAccelerateConfiguration",
    "s3:GetInventoryConfiguration",
    "s3:GetAnalyticsConfiguration",
    "s3:GetMetricsConfiguration",
    "s3:GetIntelligentTieringConfiguration",
)
# The log bucket: its retention and tags; its policy and protections are break-glass's, as the bucket's (the
# audit trail must not be switched off by the identity that deploys).
LOG_BUCKET_CHANGES = ("s3:PutLifecycleConfiguration", "s3:PutBucketTagging")
# Identities: reads anywhere (harmless), key rotation and policy updates only on the stack's own users.
IAM_READS = ("iam:GetUser", "iam:GetUserPolicy", "iam:ListAccessKeys", "iam:ListUserPolicies",
             "iam:ListAttachedUserPolicies", "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies",
             "iam:ListAttachedRolePolicies", "iam:ListUserTags", "iam:ListRoleTags")  # fmt: skip
IAM_USER_CHANGES = ("iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:PutUserPolicy",
                    "iam:TagUser", "iam:UntagUser")  # fmt: skip
DETECTION_READS = ("cloudtrail:GetTrail", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors",
                   "cloudtrail:DescribeTrails", "cloudtrail:ListTags", "sns:GetTopicAttributes",
                   "sns:GetSubscriptionAttributes", "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource",
                   "events:DescribeRule", "events:ListTargetsByRule", "events:ListTagsForResource",
                   "budgets:ViewBudget")  # fmt: skip
# Who is mailed and the budget's amount are day-2 settings; the trail, the rules and the topic's policy are
# break-glass's (switching them off blinds the detection).
DETECTION_CHANGES = ("sns:Subscribe", "sns:Unsubscribe", "budgets:ModifyBudget")
DETECTION_PROTECTED = ("cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors", "cloudtrail:StartLogging",
                       "events:PutRule", "events:PutTargets", "events:RemoveTargets", "sns:SetTopicAttributes")  # fmt: skip
KMS_READS = ("kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags")
# Pulumi's self-managed state backend (`pulumi login s3://<bucket>`): its files live under .pulumi/.
STATE_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
# Version deletion: the lock refuses it for locked versions anyway; outside break-glass (which may remove an
# attacker's delete markers) nobody needs it: lifecycle expires old versions, and is not subject to policies.
VERSION_DESTRUCTION_ACTIONS = ("s3:DeleteObjectVersion", "s3:BypassGovernanceRetention")
# A legal hold has no end date: in the writer's hands, an unbounded storage-cost attack.
LEGAL_HOLD_ACTIONS = ("s3:PutObjectLegalHold",)

# Reading the bucket's settings is harmless and lets `rempart verify-offsite` audit with either identity.
READ_BUCKET_SETTINGS = (
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketLocation",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketVersioning",
    "s3:GetBucketPolicy",
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetLifecycleConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketLogging",
)
WRITER_ALLOWED_BUCKET = READ_BUCKET_SETTINGS
WRITER_ALLOWED_OBJECTS = (
    "s3:PutObject",  # new versions (restic, copy); never replaces a locked version
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:DeleteObject",  # without a version id: a delete marker only (restic's lock files, prune)
    "s3:GetObjectRetention",
    "s3:PutObjectRetention",  # extend only (COMPLIANCE), capped by the bucket policy
)
WRITER_DENIED = (
    *VERSION_DESTRUCTION_ACTIONS,
    *LEGAL_HOLD_ACTIONS,
    *PROTECTED_CONFIGURATION_ACTIONS,
    *DEPLOYER_BUCKET_ACTIONS,
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
)
RESTORE_ALLOWED_BUCKET = READ_BUCKET_SETTINGS
RESTORE_ALLOWED_OBJECTS = ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention")
KMS_PROTECTED_ACTIONS = (
    "kms:DisableKey",
    "kms:ScheduleKeyDeletion",
    "kms:PutKeyPolicy",
    "kms:DisableKeyRotation",
    "kms:CreateGrant",
)


def _objects(bucket_arn: str) -> str:
    return f"{bucket_arn}/*"


def _document(*statements: Policy) -> Policy:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _statement(
    sid: str | None,
    effect: str,
    action: str | Sequence[str],
    resource: Any = None,
    *,
    principal: Any = None,
    condition: Policy | None = None,
) -> Policy:
    """One IAM statement, keys in the order AWS shows them (Sid, Effect, Principal, Action, Resource,
    Condition); a tuple of actions becomes a list."""
    statement: Policy = {"Sid": sid} if sid else {}
    statement["Effect"] = effect
    if principal is not None:
        statement["Principal"] = principal
    statement["Action"] = action if isinstance(action, str) else list(action)
    if resource is not None:
        statement["Resource"] = resource
    if condition is not None:
        statement["Condition"] = condition
    return statement


def _deny_insecure_transport(resources: list[str]) -> Policy:
    return _statement("DenyInsecureTransport", "Deny", "s3:*", resources, principal="*",
                      condition={"Bool": {"aws:SecureTransport": "false"}})  # fmt: skip


def bucket_policy(
    bucket_arn: str, break_glass_role_arn: str, retention_cap_days: int, deployer_role_arn: str | None = None
) -> Policy:
    """Bucket policy: TLS only; version deletion, legal holds and protection changes for break-glass only;
    day-2 changes for the deployer (and break-glass) only; nobody may lock an object for more than
    ``retention_cap_days`` from now."""
    not_break_glass = {"ArnNotEquals": {"aws:PrincipalArn": break_glass_role_arn}}
    deployers = [a for a in (deployer_role_arn, break_glass_role_arn) if a]
    objects = _objects(bucket_arn)
    return _document(
        _deny_insecure_transport([bucket_arn, objects]),
        _statement("DenyOutdatedTls", "Deny", "s3:*", [bucket_arn, objects], principal="*",
                   condition={"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
        _statement("DenyVersionDeletionExceptBreakGlass", "Deny",
                   [*VERSION_DESTRUCTION_ACTIONS, *LEGAL_HOLD_ACTIONS], objects,
                   principal="*", condition=not_break_glass),
        _statement("DenyProtectionChangesExceptBreakGlass", "Deny", PROTECTED_CONFIGURATION_ACTIONS,
                   bucket_arn, principal="*", condition=not_break_glass),
        _statement("DenyDay2ChangesExceptDeployer", "Deny", DEPLOYER_BUCKET_ACTIONS, bucket_arn,
                   principal="*", condition={"ArnNotEquals": {"aws:PrincipalArn": deployers}}),
        _statement("CapObjectLockRetention", "Deny", ["s3:PutObject", "s3:PutObjectRetention"], objects,
                   principal="*", condition={"NumericGreaterThan": {
                       "s3:object-lock-remaining-retention-days": str(retention_cap_days)}}),
    )  # fmt: skip


def _kms_use(kms_key_arn: str | None, actions: tuple[str, ...]) -> list[Policy]:
    return [_statement("UseBucketKey", "Allow", actions, kms_key_arn)] if kms_key_arn else []


def writer_policy(bucket_arn: str, kms_key_arn: str | None = None) -> Policy:
    """The backup server's identity: append, mark deleted, extend locks; nothing destructive."""
    return _document(
        *_kms_use(kms_key_arn, ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")),
        _statement("ListBucket", "Allow", WRITER_ALLOWED_BUCKET, bucket_arn),
        _statement("WriteObjects", "Allow", WRITER_ALLOWED_OBJECTS, _objects(bucket_arn)),
        _statement("NeverDestroyOrReconfigure", "Deny", WRITER_DENIED, [bucket_arn, _objects(bucket_arn)]),
    )


def restore_policy(bucket_arn: str, kms_key_arn: str | None = None) -> Policy:
    """The restore (drill) identity: read every version, write nothing."""
    return _document(
        *_kms_use(kms_key_arn, ("kms:Decrypt",)),
        _statement("ListBucket", "Allow", RESTORE_ALLOWED_BUCKET, bucket_arn),
        _statement("ReadObjects", "Allow", RESTORE_ALLOWED_OBJECTS, _objects(bucket_arn)),
    )


def break_glass_trust_policy(account_id: str) -> Policy:
    """Who may assume the break-glass role: principals of the account, with MFA only."""
    return _document(
        _statement(None, "Allow", "sts:AssumeRole", principal={"AWS": f"arn:aws:iam::{account_id}:root"},
                   condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
    )  # fmt: skip


# the two operator roles (assumed with MFA) and their IAM descriptions; operator_permissions says what each may do
OPERATORS = {
    "deployer": "Runs `pulumi up` of the offsite stack for changes the lock allows. MFA only.",
    "break-glass": "Changes offsite bucket settings (never shortens a COMPLIANCE lock). MFA only.",
}


def operator_permissions(
    operator: str,
    bucket_arn: str,
    log_bucket_arn: str,
    user_arn_pattern: str,
    kms_key_arn: str | None = None,
    state_bucket: str | None = None,
    other_bucket_arns: Sequence[str] = (),
) -> Policy:
    """The ``deployer``: what ``pulumi up`` needs for the changes the lock allows — read every resource of the
    stack, change lifecycle/tags/inventory/notifications of the bucket, manage the log bucket, rotate the
    writer's and restore's keys, read/write the self-managed state (``state_bucket``; none with Pulumi Cloud).
    ``break-glass``: everything the deployer may do (so it can run ``pulumi up`` itself), plus the protected
    settings and removing delete markers."""
    if operator not in OPERATORS:
        raise ValueError(f"operator {operator!r}: one of {', '.join(OPERATORS)}")
    statements: list[Policy] = [
        _statement(
            "ReadBuckets", "Allow", PULUMI_BUCKET_READS, [bucket_arn, log_bucket_arn, *other_bucket_arns]
        ),
        _statement("Day2BucketChanges", "Allow", DEPLOYER_BUCKET_ACTIONS, bucket_arn),
        _statement("ManageLogBucket", "Allow", LOG_BUCKET_CHANGES, log_bucket_arn),
        _statement("ReadIdentities", "Allow", IAM_READS, "*"),
        _statement("RotateStackUsers", "Allow", IAM_USER_CHANGES, user_arn_pattern),
        _statement("ReadKeys", "Allow", KMS_READS, "*"),
        _statement("ReadDetection", "Allow", DETECTION_READS, "*"),
        _statement("Day2Detection", "Allow", DETECTION_CHANGES, "*"),
    ]
    if kms_key_arn:
        statements.append(
            _statement("KeyTags", "Allow", ["kms:TagResource", "kms:UntagResource"], kms_key_arn)
        )
    if state_bucket:
        statements += [
            _statement("StateList", "Allow", ["s3:ListBucket"], f"arn:aws:s3:::{state_bucket}"),
            _statement("StateFiles", "Allow", STATE_OBJECT_ACTIONS, f"arn:aws:s3:::{state_bucket}/.pulumi/*"),
        ]
    if operator == "break-glass":
        statements += [
            _statement("ChangeProtection", "Allow", PROTECTED_CONFIGURATION_ACTIONS, bucket_arn),
            _statement("ChangeDetection", "Allow", DETECTION_PROTECTED, "*"),
            _statement("RemoveDeleteMarkers", "Allow", ["s3:DeleteObjectVersion", "s3:ListBucketVersions"],
                       [bucket_arn, _objects(bucket_arn)]),
        ]  # fmt: skip
    return _document(*statements)


def log_bucket_policy(
    log_bucket_arn: str, source_bucket_arn: str, account_id: str, other_sources: Sequence[str] = ()
) -> Policy:
    """Server access logs: only S3's logging service, for our buckets and account; TLS only. Inventory
    reports of the offsite bucket under ``inventory/``."""
    account = {"aws:SourceAccount": account_id}
    return _document(
        _statement("S3ServerAccessLogs", "Allow", "s3:PutObject", f"{log_bucket_arn}/*",
                   principal={"Service": "logging.s3.amazonaws.com"},
                   condition={"ArnLike": {"aws:SourceArn": [source_bucket_arn, *other_sources]},
                              "StringEquals": account}),
        _statement("S3InventoryReports", "Allow", "s3:PutObject", f"{log_bucket_arn}/inventory/*",
                   principal={"Service": "s3.amazonaws.com"},
                   condition={"ArnLike": {"aws:SourceArn": source_bucket_arn}, "StringEquals": account}),
        _deny_insecure_transport([log_bucket_arn, f"{log_bucket_arn}/*"]),
    )  # fmt: skip


def trail_bucket_policy(trail_bucket_arn: str, trail_arn: str, account_id: str) -> Policy:
    """CloudTrail's own writes to the (locked) trail bucket, for our trail only; TLS only."""
    source = {"StringEquals": {"aws:SourceArn": trail_arn, "aws:SourceAccount": account_id}}
    cloudtrail = {"Service": "cloudtrail.amazonaws.com"}
    return _document(
        _statement("CloudTrailAclCheck", "Allow", "s3:GetBucketAcl", trail_bucket_arn,
                   principal=cloudtrail, condition=source),
        _statement("CloudTrailWrite", "Allow", "s3:PutObject",
                   f"{trail_bucket_arn}/cloudtrail/AWSLogs/{account_id}/*",
                   principal=cloudtrail, condition=source),
        _deny_insecure_transport([trail_bucket_arn, f"{trail_bucket_arn}/*"]),
    )  # fmt: skip


# What the alarm watches: a delete marker (a writer key hiding data) and changes to protection or retention.
WATCHED_API_CALLS = (
    "PutBucketPolicy",
    "DeleteBucketPolicy",
    "PutObjectLockConfiguration",
    "PutBucketLifecycle",
    "PutBucketVersioning",
    "PutBucketEncryption",
    "PutBucketLogging",
    "PutObjectRetention",
    "PutObjectLegalHold",
    "DeleteObjects",
)


def delete_marker_event_pattern(bucket: str) -> Policy:
    """S3's own EventBridge event for a delete marker on the bucket."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Deleted"],
        "detail": {"bucket": {"name": [bucket]}, "deletion-type": ["Delete Marker Created"]},
    }


def protection_change_event_pattern(bucket: str) -> Policy:
    """CloudTrail's record of a policy, lock, lifecycle, versioning or retention change on the bucket."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["s3.amazonaws.com"],
            "eventName": list(WATCHED_API_CALLS),
            "requestParameters": {"bucketName": [bucket]},
        },
    }


def alert_topic_policy(topic_arn: str, account_id: str, rule_arns: list[str]) -> Policy:
    """Who may publish to the alert topic: our EventBridge rules and AWS Budgets for our account."""
    return _document(
        _statement("EventBridgeRules", "Allow", "sns:Publish", topic_arn,
                   principal={"Service": "events.amazonaws.com"},
                   condition={"ArnEquals": {"aws:SourceArn": rule_arns}}),
        _statement("Budgets", "Allow", "sns:Publish", topic_arn,
                   principal={"Service": "budgets.amazonaws.com"},
                   condition={"StringEquals": {"aws:SourceAccount": account_id}}),
    )  # fmt: skip


INVENTORY_FIELDS = (
    "Size",
    "LastModifiedDate",
    "StorageClass",
    "IsLatest",
    "ObjectLockMode",
    "ObjectLockRetainUntilDate",
    "ObjectLockLegalHoldStatus",
)


KMS_ADMINISTRATION_ACTIONS = (
    "kms:PutKeyPolicy",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:EnableKeyRotation",
)


def kms_key_policy(
    account_id: str, break_glass_role_arn: str, administrator_arn: str | None = None
) -> Policy:
    """A dedicated key that nobody but break-glass can disable, schedule for deletion or stop rotating
    (a disabled or deleted key crypto-shreds every backup), and that only its administrators may re-police.

    AWS refuses a key policy that would not let the principal making CreateKey/PutKeyPolicy call
    PutKeyPolicy again (the lockout safety check): ``administrator_arn`` is that principal for the first
    ``pulumi up`` (later ones that change the policy run as break-glass, always an administrator). The
    administrators are named as principals, so they must exist before the key (AWS refuses unknown ones)."""
    administrators = [a for a in dict.fromkeys((break_glass_role_arn, administrator_arn)) if a]
    return _document(
        _statement("AccountAdministersKeyThroughIam", "Allow", "kms:*", "*",
                   principal={"AWS": f"arn:aws:iam::{account_id}:root"}),
        _statement("KeyAdministrators", "Allow", KMS_ADMINISTRATION_ACTIONS, "*",
                   principal={"AWS": administrators}),
        _statement("DenyKeyDestructionExceptBreakGlass", "Deny",
                   [a for a in KMS_PROTECTED_ACTIONS if a != "kms:PutKeyPolicy"], "*", principal={"AWS": "*"},
                   condition={"ArnNotEquals": {"aws:PrincipalArn": break_glass_role_arn}}),
        _statement("DenyRepolicingExceptAdministrators", "Deny", ["kms:PutKeyPolicy"], "*",
                   principal={"AWS": "*"}, condition={"ArnNotEquals": {"aws:PrincipalArn": administrators}}),
    )  # fmt: skip


def as_list(value: Any) -> list[Any]:
    """An IAM field that may be a single value or a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def action_matches(pattern: str, action: str) -> bool:
    """Does an IAM action pattern (``s3:*``, ``s3:Delete*``, ``*``) cover ``action``?"""
    import fnmatch

    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def allowed_actions(policy: Policy, candidates: tuple[str, ...]) -> set[str]:
    """Which of ``candidates`` an identity policy allows without a matching explicit deny."""
    allowed: set[str] = set()
    denied: set[str] = set()
    for statement in as_list(policy.get("Statement")):
        if not isinstance(statement, dict):
            continue
        patterns = as_list(statement.get("Action"))
        covered = {c for c in candidates if any(action_matches(p, c) for p in patterns)}
        if "NotAction" in statement:
            excluded = as_list(statement["NotAction"])
            covered = {c for c in candidates if not any(action_matches(p, c) for p in excluded)}
        if statement.get("Effect") == "Allow":
            allowed |= covered
        elif statement.get("Effect") == "Deny" and "Condition" not in statement:
            denied |= covered
    return allowed - denied


def pack_prefix(dataset: str) -> str:
    """Where restic writes a dataset's packs: its repository is ``<bucket>/<dataset>`` (see
    ``restic_repositories``), and restic keeps packs under ``data/`` of the repository."""
    return f"{dataset}/data/"


def lifecycle_rules(
    noncurrent_days: int, cold_storage_class: str, cold_after_days: int, datasets: Sequence[str]
) -> list[Policy]:
    """Lifecycle (S3 API shape): noncurrent versions go only after ``noncurrent_days`` (at least the
    longest lock, see ``retention_cap_days``); each dataset's restic packs (``<dataset>/data/``: S3 filters
    take a literal prefix, no wildcard) move to a colder, still readable class."""
    return [
        {
            "ID": "expire-noncurrent-after-lock",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
            "Expiration": {"ExpiredObjectDeleteMarker": True},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
        *(
            {
                "ID": f"packs-to-colder-storage-{dataset}",
                "Status": "Enabled",
                "Filter": {"Prefix": pack_prefix(dataset)},
                "Transitions": [{"Days": cold_after_days, "StorageClass": cold_storage_class}],
                "NoncurrentVersionTransitions": [
                    {"NoncurrentDays": cold_after_days, "StorageClass": cold_storage_class}
                ],
            }
            for dataset in sorted(datasets)
        ),
    ]


def lifecycle_rules_for_key(rules: list[Policy], key: str) -> list[str]:
    """IDs of the enabled rules whose prefix filter selects ``key`` (S3 API or Pulumi shape)."""
    selected = []
    for rule in rules:
        if (rule.get("Status") or rule.get("status")) != "Enabled":
            continue
        filter_ = rule.get("Filter") or rule.get("filter") or {}
        prefix = filter_.get("Prefix", filter_.get("prefix", rule.get("Prefix", "")))
        if key.startswith(prefix or ""):
            selected.append(str(rule.get("ID") or rule.get("id")))
    return selected
