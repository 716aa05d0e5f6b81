"""Detection declared by the program (pulumi/offsite_detection.py): present, wired to the bucket and to the alert
topic. The stand-in stores them (tests/offsite/test_detection_stand_in.py) but produces no events."""

from __future__ import annotations

import json

from pulumi_harness import ACCOUNT, STACKS

import pulumi


@pulumi.runtime.test
def test_detection_resources(mocks):
    import program

    establishment = program.load_establishment(STACKS["lab"])
    vault = program.build(establishment, alert_email="astreinte@ch-lab.example", monthly_budget=250)
    finess = establishment.finess

    def check(_):
        bucket_arn = f"arn:aws:s3:::rempart-{finess}-offsite-0123abcd"
        topic_arn = f"arn:aws:sns:eu-west-3:{ACCOUNT}:offsite-alerts-0123abcd"  # the harness's ARN

        trail = mocks.one("offsite-trail-events").inputs
        assert trail["enableLogFileValidation"] is True
        assert trail["s3BucketName"] == f"rempart-{finess}-offsite-trail-0123abcd"
        (selector,) = trail["eventSelectors"]
        assert selector["includeManagementEvents"] is True and selector["readWriteType"] == "WriteOnly"
        assert selector["dataResources"] == [{"type": "AWS::S3::Object", "values": [f"{bucket_arn}/"]}]
        trail_bucket = mocks.one("offsite-trail").inputs
        assert (
            trail_bucket["objectLockEnabled"] is True
        )  # separate and locked: the writer cannot erase its trace
        lock = mocks.one("offsite-trail-object-lock").inputs["rule"]["defaultRetention"]
        assert lock["mode"] == "COMPLIANCE" and lock["days"] >= 365
        trail_policy = json.loads(mocks.one("offsite-trail-policy").inputs["policy"])
        assert {s["Sid"] for s in trail_policy["Statement"]} >= {"CloudTrailAclCheck", "CloudTrailWrite"}

        markers = json.loads(mocks.one("offsite-delete-markers").inputs["eventPattern"])
        assert markers["detail"]["deletion-type"] == ["Delete Marker Created"]
        assert markers["detail"]["bucket"]["name"] == [f"rempart-{finess}-offsite-0123abcd"]
        changes = json.loads(mocks.one("offsite-protection-changes").inputs["eventPattern"])
        assert {"PutBucketPolicy", "PutObjectLockConfiguration", "PutObjectRetention"} <= set(
            changes["detail"]["eventName"]
        )
        for kind in ("delete-markers", "protection-changes"):
            assert mocks.one(f"offsite-{kind}-mail").inputs["arn"] == topic_arn
        assert mocks.one("offsite-events").inputs["eventbridge"] is True
        mail = mocks.one("offsite-alerts-mail").inputs
        assert mail["protocol"] == "email" and mail["endpoint"] == "astreinte@ch-lab.example"
        topic_policy = json.loads(mocks.one("offsite-alerts-policy").inputs["policy"])
        assert {s["Principal"]["Service"] for s in topic_policy["Statement"]} == {
            "events.amazonaws.com",
            "budgets.amazonaws.com",
        }

        budget = mocks.one("offsite-budget").inputs
        assert budget["limitAmount"] == "250.00" and budget["timeUnit"] == "MONTHLY"
        assert budget["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:rempart:finess${finess}"]}]
        assert {(n["notificationType"], n["threshold"]) for n in budget["notifications"]} == {
            ("ACTUAL", 80),
            ("FORECASTED", 100),
        }

        inventory = mocks.one("offsite-inventory").inputs
        assert inventory["includedObjectVersions"] == "All"
        assert {"ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"} <= set(
            inventory["optionalFields"]
        )
        destination = inventory["destination"]["bucket"]
        assert destination["bucketArn"] == f"arn:aws:s3:::rempart-{finess}-offsite-logs-0123abcd"
        log_policy = json.loads(mocks.one("offsite-logs-policy").inputs["policy"])
        assert "S3InventoryReports" in {s["Sid"] for s in log_policy["Statement"]}
        assert ACCOUNT in json.dumps(log_policy)

    return pulumi.Output.all(*[r.urn for r in vault.resources]).apply(check)
