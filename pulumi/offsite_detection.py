"""Detection around the offsite bucket, none of which depends on the backup server (issue 19):

* CloudTrail: management events and S3 **data events** (writes and deletions of objects) of the bucket, to a
  separate trail bucket under its own COMPLIANCE lock (log file validation on);
* EventBridge: S3's own event for a **delete marker** on the bucket, and CloudTrail's record of a change to its
  policy, lock, lifecycle, versioning, encryption, logging or object retention, both to an SNS topic (mail);
* AWS Budgets: a monthly cost budget of the establishment's tagged resources (a storage-cost attack shows);
* S3 Inventory: a daily list of every version with its lock fields, in the access-log bucket (``inventory/``),
  for audits of millions of objects without a HEAD each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi_aws as aws

import pulumi
from rempart.offsite.policy import (
    INVENTORY_FIELDS,
    alert_topic_policy,
    delete_marker_event_pattern,
    protection_change_event_pattern,
    trail_bucket_policy,
)

TRAIL_LOCK_DAYS = 400
BUDGET_THRESHOLDS = (("ACTUAL", 80), ("FORECASTED", 100))


@dataclass
class Detection:
    resources: list[Any] = field(default_factory=list)
    bucket_settings: list[Any] = field(default_factory=list)  # on the offsite bucket: before its policy
    topic: aws.sns.Topic | None = None
    trail: aws.cloudtrail.Trail | None = None
    trail_bucket: aws.s3.Bucket | None = None


def _json(value: pulumi.Output[Any]) -> pulumi.Output[str]:
    return value.apply(lambda v: json.dumps(v, sort_keys=True))


def build_detection(
    parent: pulumi.Resource,
    name: str,
    settings: Any,
    bucket: aws.s3.Bucket,
    log_bucket: aws.s3.Bucket,
    log_policy: aws.s3.BucketPolicy,
    account_id: pulumi.Output[str],
    tags: dict[str, str],
) -> Detection:
    found = Detection()
    finess = settings.finess

    def add(resource: Any) -> Any:
        found.resources.append(resource)
        return resource

    def child(**options: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, **options)

    # -- the trail and its locked bucket ------------------------------------------------------------------
    trail_bucket = add(aws.s3.Bucket(
        f"{name}-trail", bucket_prefix=f"rempart-{finess}-offsite-trail-", object_lock_enabled=True,
        force_destroy=False, tags={**tags, "rempart:role": "offsite-trail"}, opts=child(protect=True),
    ))  # fmt: skip
    trail_settings = [
        add(aws.s3.BucketVersioning(f"{name}-trail-versioning", bucket=trail_bucket.id,
                                    versioning_configuration={"status": "Enabled"}, opts=child())),
        add(aws.s3.BucketObjectLockConfiguration(
            f"{name}-trail-object-lock", bucket=trail_bucket.id, object_lock_enabled="Enabled",
            rule={"default_retention": {"mode": "COMPLIANCE", "days": TRAIL_LOCK_DAYS}}, opts=child())),
        add(aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-trail-encryption", bucket=trail_bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}], opts=child())),
        add(aws.s3.BucketPublicAccessBlock(
            f"{name}-trail-public-access-block", bucket=trail_bucket.id, block_public_acls=True,
            ignore_public_acls=True, block_public_policy=True, restrict_public_buckets=True, opts=child())),
        add(aws.s3.BucketOwnershipControls(f"{name}-trail-ownership", bucket=trail_bucket.id,
                                           rule={"object_ownership": "BucketOwnerEnforced"}, opts=child())),
    ]  # fmt: skip
    trail_settings.append(add(aws.s3.BucketLogging(
        f"{name}-trail-logging", bucket=trail_bucket.id, target_bucket=log_bucket.id, target_prefix="trail-access/",
        opts=child(depends_on=[log_policy]),
    )))  # fmt: skip
    trail_name = f"rempart-{finess}-offsite"
    region = settings.region
    trail_arn = account_id.apply(lambda a: f"arn:aws:cloudtrail:{region}:{a}:trail/{trail_name}")
    trail_policy = add(aws.s3.BucketPolicy(
        f"{name}-trail-policy", bucket=trail_bucket.id,
        policy=_json(pulumi.Output.all(trail_bucket.arn, trail_arn, account_id).apply(
            lambda a: trail_bucket_policy(a[0], a[1], a[2]))),
        opts=child(depends_on=trail_settings),
    ))  # fmt: skip
    found.trail = add(aws.cloudtrail.Trail(
        f"{name}-trail-events", name=trail_name, s3_bucket_name=trail_bucket.id, s3_key_prefix="cloudtrail",
        enable_log_file_validation=True, include_global_service_events=False, is_multi_region_trail=False,
        event_selectors=[{
            "read_write_type": "WriteOnly",
            "include_management_events": True,
            "data_resources": [{"type": "AWS::S3::Object", "values": [bucket.arn.apply(lambda a: f"{a}/")]}],
        }],
        tags=tags, opts=child(depends_on=[trail_policy]),  # CloudTrail checks it may write
    ))  # fmt: skip
    found.trail_bucket = trail_bucket

    # -- alerts -------------------------------------------------------------------------------------------
    topic = found.topic = add(aws.sns.Topic(f"{name}-alerts", name=f"rempart-{finess}-offsite-alerts", tags=tags,
                                            opts=child()))  # fmt: skip
    if settings.alert_email:
        add(aws.sns.TopicSubscription(f"{name}-alerts-mail", topic=topic.arn, protocol="email",
                                      endpoint=settings.alert_email, opts=child()))  # fmt: skip
    rules = []
    for kind, pattern in (
        ("delete-markers", bucket.id.apply(delete_marker_event_pattern)),
        ("protection-changes", bucket.id.apply(protection_change_event_pattern)),
    ):
        rule = add(aws.cloudwatch.EventRule(
            f"{name}-{kind}", name=f"rempart-{finess}-offsite-{kind}", event_pattern=_json(pattern), tags=tags,
            description=f"rempart offsite {finess}: {kind.replace('-', ' ')} on the backup bucket", opts=child(),
        ))  # fmt: skip
        add(aws.cloudwatch.EventTarget(f"{name}-{kind}-mail", rule=rule.name, arn=topic.arn, opts=child()))
        rules.append(rule)
    add(aws.sns.TopicPolicy(
        f"{name}-alerts-policy", arn=topic.arn,
        policy=_json(pulumi.Output.all(topic.arn, account_id, *[r.arn for r in rules]).apply(
            lambda a: alert_topic_policy(a[0], a[1], list(a[2:])))),
        opts=child(),
    ))  # fmt: skip
    found.bucket_settings.append(add(aws.s3.BucketNotification(
        f"{name}-events", bucket=bucket.id, eventbridge=True, opts=child())))  # fmt: skip
    add(aws.budgets.Budget(
        f"{name}-budget", name=f"rempart-{finess}-offsite", budget_type="COST", time_unit="MONTHLY",
        limit_amount=f"{settings.monthly_budget:.2f}", limit_unit="USD",
        cost_filters=[{"name": "TagKeyValue", "values": [f"user:rempart:finess${finess}"]}],
        notifications=[
            {"comparison_operator": "GREATER_THAN", "threshold": threshold, "threshold_type": "PERCENTAGE",
             "notification_type": kind, "subscriber_sns_topic_arns": [topic.arn]}
            for kind, threshold in BUDGET_THRESHOLDS
        ],
        opts=child(),
    ))  # fmt: skip

    # -- inventory ----------------------------------------------------------------------------------------
    found.bucket_settings.append(add(aws.s3.Inventory(
        f"{name}-inventory", bucket=bucket.id, name="rempart-lock-fields", included_object_versions="All",
        schedule={"frequency": "Daily"}, optional_fields=list(INVENTORY_FIELDS),
        destination={"bucket": {"bucket_arn": log_bucket.arn, "format": "CSV", "prefix": "inventory"}},
        opts=child(depends_on=[log_policy]),  # the log bucket lets S3 write the reports
    )))  # fmt: skip
    return found
