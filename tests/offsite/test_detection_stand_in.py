"""The program's detection resources, replayed onto the stand-in (lab/offsite_replay.py), are stored there with
the settings the program declares: the trail's S3 data events, the EventBridge rules and their target, the
alert topic, the budget and the inventory. moto produces no events from them: what they catch is tested on the
bucket's history instead (test_offsite_watch.py, test_verify_offsite.py)."""

from __future__ import annotations

import json

import boto3
from moto_servers import ACCOUNT, REGION
from offsite_replay import deploy
from program_stand_in import an_establishment, reset_stand_in


def client(service, endpoint, region=REGION):
    return boto3.client(service, endpoint_url=endpoint, region_name=region)


def test_detection_is_stored_on_the_stand_in(strict_endpoint):
    reset_stand_in(strict_endpoint)
    outputs = deploy(an_establishment(), strict_endpoint, alert_email="astreinte@ch.example").outputs
    bucket, finess = outputs["bucket"], outputs["finess"]

    cloudtrail = client("cloudtrail", strict_endpoint)
    (trail,) = cloudtrail.describe_trails()["trailList"]
    assert trail["S3BucketName"] == outputs["trail_bucket"] and trail["LogFileValidationEnabled"] is True
    (selector,) = cloudtrail.get_event_selectors(TrailName=trail["Name"])["EventSelectors"]
    assert selector["DataResources"] == [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{bucket}/"]}]
    assert cloudtrail.get_trail_status(Name=trail["Name"])["IsLogging"] is True
    s3 = client("s3", strict_endpoint)
    lock = s3.get_object_lock_configuration(Bucket=outputs["trail_bucket"])["ObjectLockConfiguration"]
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"

    events = client("events", strict_endpoint)
    rules = {r["Name"]: r for r in events.list_rules(NamePrefix=f"rempart-{finess}-offsite-")["Rules"]}
    markers = json.loads(rules[f"rempart-{finess}-offsite-delete-markers"]["EventPattern"])
    assert markers["detail"] == {"bucket": {"name": [bucket]}, "deletion-type": ["Delete Marker Created"]}
    for name in rules:
        (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
        assert target["Arn"] == outputs["alert_topic_arn"]
    # (S3's EventBridge switch is accepted but not answered back by moto 5.2.5: tests/pulumi/test_detection.py)

    sns = client("sns", strict_endpoint)
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=outputs["alert_topic_arn"])["Subscriptions"]
    assert subscription["Protocol"] == "email" and subscription["Endpoint"] == "astreinte@ch.example"

    budgets = client("budgets", strict_endpoint, "us-east-1")
    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName=f"rempart-{finess}-offsite")["Budget"]
    assert budget["BudgetLimit"]["Amount"].startswith("100")

    inventory = s3.get_bucket_inventory_configuration(Bucket=bucket, Id="rempart-lock-fields")
    configuration = inventory["InventoryConfiguration"]
    assert configuration["IncludedObjectVersions"] == "All"
    assert "ObjectLockRetainUntilDate" in configuration["OptionalFields"]
    destination = configuration["Destination"]["S3BucketDestination"]
    assert destination["Bucket"] == f"arn:aws:s3:::{outputs['log_bucket']}"
