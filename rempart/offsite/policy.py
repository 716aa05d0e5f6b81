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


def bucket_policy(
    bucket_arn: str, break_glass_role_arn: str, retention_cap_days: int, deployer_role_arn: str | None = None
) -> Policy:
    """Bucket policy: TLS only; version deletion, legal holds and protection changes for break-glass only;
    day-2 changes for the deployer (and break-glass) only; nobody may lock an object for more than
    ``retention_cap_days`` from now."""
    not_break_glass = {"ArnNotEquals": {"aws:PrincipalArn": break_glass_role_arn}}
    deployers = [a for a in (deployer_role_arn, break_glass_role_arn) if a]
    both = [bucket_arn, _objects(bucket_arn)]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": both,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOutdatedTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": both,
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
            },
            {
                "Sid": "DenyVersionDeletionExceptBreakGlass",
                "Effect": "Deny",
                "Principal": "*",
                "Action": [*VERSION_DESTRUCTION_ACTIONS, *LEGAL_HOLD_ACTIONS],
                "Resource": _objects(bucket_arn),
                "Condition": not_break_glass,
            },
            {
                "Sid": "DenyProtectionChangesExceptBreakGlass",
                "Effect": "Deny",
                "Principal": "*",
                "Action": list(PROTECTED_CONFIGURATION_ACTIONS),
                "Resource": bucket_arn,
                "Condition": not_break_glass,
            },
            {
                "Sid": "DenyDay2ChangesExceptDeployer",
                "Effect": "Deny",
                "Principal": "*",
                "Action": list(DEPLOYER_BUCKET_ACTIONS),
                "Resource": bucket_arn,
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": deployers}},
            },
            {
                "Sid": "CapObjectLockRetention",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:PutObject", "s3:PutObjectRetention"],
                "Resource": _objects(bucket_arn),
                "Condition": {
                    "NumericGreaterThan": {"s3:object-lock-remaining-retention-days": str(retention_cap_days)}
                },
            },
        ],
    }


def _kms_use(kms_key_arn: str | None, actions: tuple[str, ...]) -> list[Policy]:
    if not kms_key_arn:
        return []
    return [{"Sid": "UseBucketKey", "Effect": "Allow", "Action": list(actions), "Resource": kms_key_arn}]


def writer_policy(bucket_arn: str, kms_key_arn: str | None = None) -> Policy:
    """The backup server's identity: append, mark deleted, extend locks; nothing destructive."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            *_kms_use(kms_key_arn, ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")),
            {
                "Sid": "ListBucket",
                "Effect": "Allow",
                "Action": list(WRITER_ALLOWED_BUCKET),
                "Resource": bucket_arn,
            },
            {
                "Sid": "WriteObjects",
                "Effect": "Allow",
                "Action": list(WRITER_ALLOWED_OBJECTS),
                "Resource": _objects(bucket_arn),
            },
            {
                "Sid": "NeverDestroyOrReconfigure",
                "Effect": "Deny",
                "Action": list(WRITER_DENIED),
                "Resource": [bucket_arn, _objects(bucket_arn)],
            },
        ],
    }


def restore_policy(bucket_arn: str, kms_key_arn: str | None = None) -> Policy:
    """The restore (drill) identity: read every version, write nothing."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            *_kms_use(kms_key_arn, ("kms:Decrypt",)),
            {
                "Sid": "ListBucket",
                "Effect": "Allow",
                "Action": list(RESTORE_ALLOWED_BUCKET),
                "Resource": bucket_arn,
            },
            {
                "Sid": "ReadObjects",
                "Effect": "Allow",
                "Action": list(RESTORE_ALLOWED_OBJECTS),
                "Resource": _objects(bucket_arn),
            },
        ],
    }


def break_glass_trust_policy(account_id: str) -> Policy:
    """Who may assume the break-glass role: principals of the account, with MFA only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            }
        ],
    }


def deployer_statements(
    bucket_arn: str,
    log_bucket_arn: str,
    user_arn_pattern: str,
    kms_key_arn: str | None = None,
    state_bucket: str | None = None,
    other_bucket_arns: Sequence[str] = (),
) -> list[Policy]:
    """What ``pulumi up`` needs for the changes the lock allows: read every resource of the stack, change
    lifecycle/tags/inventory/notifications of the bucket, manage the log bucket, rotate the writer's and
    restore's keys, and read/write the self-managed state (``state_bucket``; none with Pulumi Cloud)."""
    statements: list[Policy] = [
        {"Sid": "ReadBuckets", "Effect": "Allow", "Action": list(PULUMI_BUCKET_READS),
         "Resource": [bucket_arn, log_bucket_arn, *other_bucket_arns]},
        {"Sid": "Day2BucketChanges", "Effect": "Allow", "Action": list(DEPLOYER_BUCKET_ACTIONS),
         "Resource": bucket_arn},
        {"Sid": "ManageLogBucket", "Effect": "Allow", "Action": list(LOG_BUCKET_CHANGES), "Resource": log_bucket_arn},
        {"Sid": "ReadIdentities", "Effect": "Allow", "Action": list(IAM_READS), "Resource": "*"},
        {"Sid": "RotateStackUsers", "Effect": "Allow", "Action": list(IAM_USER_CHANGES), "Resource": user_arn_pattern},
        {"Sid": "ReadKeys", "Effect": "Allow", "Action": list(KMS_READS), "Resource": "*"},
        {"Sid": "ReadDetection", "Effect": "Allow", "Action": list(DETECTION_READS), "Resource": "*"},
        {"Sid": "Day2Detection", "Effect": "Allow", "Action": list(DETECTION_CHANGES), "Resource": "*"},
    ]  # fmt: skip
    if kms_key_arn:
        statements.append(
            {"Sid": "KeyTags", "Effect": "Allow", "Action": ["kms:TagResource", "kms:UntagResource"],
             "Resource": kms_key_arn}
        )  # fmt: skip
    if state_bucket:
        statements += [
            {"Sid": "StateList", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{state_bucket}"},
            {"Sid": "StateFiles", "Effect": "Allow", "Action": list(STATE_OBJECT_ACTIONS),
             "Resource": f"arn:aws:s3:::{state_bucket}/.pulumi/*"},
        ]  # fmt: skip
    return statements


def deployer_permissions(
    bucket_arn: str,
    log_bucket_arn: str,
    user_arn_pattern: str,
    kms_key_arn: str | None = None,
    state_bucket: str | None = None,
    other_bucket_arns: Sequence[str] = (),
) -> Policy:
    return {
        "Version": "2012-10-17",
        "Statement": deployer_statements(
            bucket_arn, log_bucket_arn, user_arn_pattern, kms_key_arn, state_bucket, other_bucket_arns
        ),
    }


def break_glass_permissions(
    bucket_arn: str,
    log_bucket_arn: str,
    user_arn_pattern: str,
    kms_key_arn: str | None = None,
    state_bucket: str | None = None,
    other_bucket_arns: Sequence[str] = (),
) -> Policy:
    """Everything the deployer may do (so break-glass can run ``pulumi up`` itself), plus the protected
    settings and removing delete markers."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            *deployer_statements(
                bucket_arn, log_bucket_arn, user_arn_pattern, kms_key_arn, state_bucket, other_bucket_arns
            ),
            {
                "Sid": "ChangeProtection",
                "Effect": "Allow",
                "Action": list(PROTECTED_CONFIGURATION_ACTIONS),
                "Resource": bucket_arn,
            },
            {
                "Sid": "ChangeDetection",
                "Effect": "Allow",
                "Action": list(DETECTION_PROTECTED),
                "Resource": "*",
            },
            {
                "Sid": "RemoveDeleteMarkers",
                "Effect": "Allow",
                "Action": ["s3:DeleteObjectVersion", "s3:ListBucketVersions"],
                "Resource": [bucket_arn, _objects(bucket_arn)],
            },
        ],
    }


def log_bucket_policy(
    log_bucket_arn: str, source_bucket_arn: str, account_id: str, other_sources: Sequence[str] = ()
) -> Policy:
    """Server access logs: only S3's logging service, for our buckets and account; TLS only. Inventory
    reports of the offsite bucket under ``inventory/``."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3ServerAccessLogs",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{log_bucket_arn}/*",
                "Condition": {
                    "ArnLike": {"aws:SourceArn": [source_bucket_arn, *other_sources]},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            },
            {
                "Sid": "S3InventoryReports",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{log_bucket_arn}/inventory/*",
                "Condition": {
                    "ArnLike": {"aws:SourceArn": source_bucket_arn},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [log_bucket_arn, f"{log_bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def trail_bucket_policy(trail_bucket_arn: str, trail_arn: str, account_id: str) -> Policy:
    """CloudTrail's own writes to the (locked) trail bucket, for our trail only; TLS only."""
    source = {"StringEquals": {"aws:SourceArn": trail_arn, "aws:SourceAccount": account_id}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": trail_bucket_arn, "Condition": source},
            {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": f"{trail_bucket_arn}/cloudtrail/AWSLogs/{account_id}/*",
             "Condition": source},
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [trail_bucket_arn, f"{trail_bucket_arn}/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ],
    }  # fmt: skip


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
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EventBridgeRules", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
             "Action": "sns:Publish", "Resource": topic_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}}},
            {"Sid": "Budgets", "Effect": "Allow", "Principal": {"Service": "budgets.amazonaws.com"},
             "Action": "sns:Publish", "Resource": topic_arn,
             "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}},
        ],
    }  # fmt: skip


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
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "KeyAdministrators",
                "Effect": "Allow",
                "Principal": {"AWS": administrators},
                "Action": list(KMS_ADMINISTRATION_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "DenyKeyDestructionExceptBreakGlass",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": [a for a in KMS_PROTECTED_ACTIONS if a != "kms:PutKeyPolicy"],
                "Resource": "*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": break_glass_role_arn}},
            },
            {
                "Sid": "DenyRepolicingExceptAdministrators",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": ["kms:PutKeyPolicy"],
                "Resource": "*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": administrators}},
            },
        ],
    }


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
