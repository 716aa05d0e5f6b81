"""Run the offsite Pulumi program (``pulumi/program.py``) against an S3/IAM/KMS stand-in (moto).

Lab and test code, never shipped in ``rempart/``. ``pulumi.runtime.set_mocks`` runs the program without the
Pulumi engine; :class:`ReplayMocks` turns each resource the program declares into the AWS calls that
pulumi-aws would make for a fresh ``pulumi up`` and returns the stand-in's own names, ARNs and keys as the
resource's outputs. The SDK registers a resource only once every resource it depends on (its inputs'
resources and ``depends_on``) is registered, so the calls come in the order of the program's dependency
graph; the graph itself (the edges the engine would use for updates) is recorded by
:class:`RecordingMonitor`.

What a mock cannot show: an update, a destroy, the engine's parallelism. Those are tested on the graph
(``tests/pulumi/test_dependencies.py``) and by replaying update calls as the deployer
(``tests/offsite/test_day2.py``).
"""

from __future__ import annotations

import fnmatch
import json
import re
import secrets
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

import pulumi

PULUMI_DIR = Path(__file__).resolve().parents[1] / "pulumi"
STAND_IN_KEYS = {"id": "lab-setup", "secret": "lab-setup"}  # ignored by moto while IAM is not enforced


def pascal(value: Any) -> Any:
    """Pulumi's camelCase inputs (``noncurrentDays``) -> S3 API shapes (``NoncurrentDays``; ``id`` -> ``ID``)."""
    if isinstance(value, dict):
        return {("ID" if k == "id" else k[:1].upper() + k[1:]): pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine's numbers are floats; S3's day counts are integers
    return value


def aws_tags(tags: dict[str, str] | None, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in sorted((tags or {}).items())]


@dataclass
class Declared:
    """One resource as the program declared it, and what the stand-in answered."""

    type: str
    name: str
    inputs: dict[str, Any]
    id: str
    outputs: dict[str, Any]


@dataclass
class ReplayMocks(pulumi.runtime.Mocks):
    """Each S3/IAM/KMS resource of the program made on the stand-in at ``endpoint``."""

    endpoint: str
    keys: dict[str, str] = field(default_factory=lambda: dict(STAND_IN_KEYS))
    # tests only: (logical name, inputs) -> the inputs to make instead, or None to make nothing on AWS
    # (a deliberately wrong bucket is the program's bucket minus one setting)
    adjust: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None
    # a later `up` (see :func:`update`): what the stack holds, by logical name
    previous: dict[str, Declared] | None = None
    calls: list[str] = field(default_factory=list)  # "<read|make|update> <logical name>", in order
    declared: list[Declared] = field(default_factory=list)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str, region: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=self.keys["id"],
            aws_secret_access_key=self.keys["secret"],
            aws_session_token=self.keys.get("token"),  # a role session (deployer, break-glass)
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    # -- the Mocks interface (called from the SDK's threads: one call at a time) ---------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        with self._lock:
            inputs = dict(args.inputs)
            if not args.custom:  # a component: nothing on AWS
                return f"{args.name}-component", inputs
            if args.typ.startswith("pulumi:providers:"):
                physical = f"provider-{args.name}"
                self.providers[physical] = inputs
                return physical, inputs
            provider = self.providers.get((args.provider or "").rsplit("::", 1)[-1], {})
            region = provider.get("region", "eu-west-3")
            default_tags = provider.get("defaultTags") or {}
            if isinstance(default_tags, str):  # provider inputs reach the engine JSON-encoded
                default_tags = json.loads(default_tags)
            tags = {**default_tags.get("tags", {}), **(inputs.get("tags") or {})}
            make = REPLAYS.get(args.typ)
            if make is None:
                raise NotImplementedError(f"{args.typ} ({args.name}): no stand-in replay; add one to REPLAYS")
            old = (self.previous or {}).get(args.name)
            if old is not None:
                physical, outputs = self._update(args.typ, args.name, region, inputs, tags, old)
                self.declared.append(Declared(args.typ, args.name, inputs, physical, outputs))
                return physical, outputs
            self.calls.append(f"make {args.name}")
            made = self.adjust(args.name, dict(inputs)) if self.adjust else inputs
            if made is None:
                physical, outputs = inputs.get("bucket") or f"{args.name}-not-made", {}
            else:
                physical, outputs = make(self, region, made, tags)
            outputs = {**inputs, "tagsAll": tags, **outputs}
            self.declared.append(Declared(args.typ, args.name, inputs, physical, outputs))
            return physical, outputs

    def _update(
        self, typ: str, name: str, region: str, inputs: dict[str, Any], tags: dict[str, str], old: Declared
    ) -> tuple[str, dict[str, Any]]:
        """The engine's refresh (read the resource), then an update only if the program changed it."""
        self.calls.append(f"read {name}")
        READS[typ](self, region, old)
        if inputs == old.inputs:
            return old.id, old.outputs
        if typ not in UPDATED_IN_PLACE:
            raise NotImplementedError(f"{name}: a change of {typ} replaces it; not replayed")
        self.calls.append(f"update {name}")
        physical, outputs = REPLAYS[typ](self, region, inputs, tags)
        return physical, {**inputs, "tagsAll": tags, **outputs}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            with self._lock:
                identity = self.client("sts", "eu-west-3").get_caller_identity()
            return {"accountId": identity["Account"], "arn": identity["Arn"], "userId": identity["UserId"]}
        raise NotImplementedError(f"{args.token}: no stand-in replay")

    def one(self, name: str) -> Declared:
        return next(d for d in self.declared if d.name == name)


# -- S3 ------------------------------------------------------------------------------------------------------


def _bucket(
    mocks: ReplayMocks, region: str, inputs: dict[str, Any], tags: dict[str, str]
) -> tuple[str, dict]:
    name = inputs.get("bucket") or f"{inputs['bucketPrefix']}{secrets.token_hex(4)}"
    s3 = mocks.client("s3", region)
    s3.create_bucket(
        Bucket=name,
        CreateBucketConfiguration={"LocationConstraint": region},
        ObjectLockEnabledForBucket=bool(inputs.get("objectLockEnabled")),
    )
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": aws_tags(tags)})
    return name, {"bucket": name, "arn": f"arn:aws:s3:::{name}", "region": region}


def _bucket_setting(call: Callable[[Any, str, dict[str, Any]], None]) -> Callable[..., tuple[str, dict]]:
    """A bucket sub-resource: one S3 call; pulumi-aws gives it the bucket's name as id."""

    def make(
        mocks: ReplayMocks, region: str, inputs: dict[str, Any], _tags: dict[str, str]
    ) -> tuple[str, dict]:
        call(mocks.client("s3", region), inputs["bucket"], inputs)
        return inputs["bucket"], {}

    return make


def _versioning(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=pascal(inputs["versioningConfiguration"]))


def _object_lock(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": inputs["objectLockEnabled"],
            "Rule": pascal(inputs["rule"]),
        },
    )


def _encryption(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    rules = []
    for rule in inputs["rules"]:
        by_default = rule["applyServerSideEncryptionByDefault"]
        shaped: dict[str, Any] = {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": by_default["sseAlgorithm"]}
        }
        if by_default.get("kmsMasterKeyId"):
            shaped["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] = by_default["kmsMasterKeyId"]
        if "bucketKeyEnabled" in rule:
            shaped["BucketKeyEnabled"] = bool(rule["bucketKeyEnabled"])
        rules.append(shaped)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})


def _public_access_block(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    names = ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=pascal({n: bool(inputs.get(n)) for n in names})
    )


def _ownership(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [pascal(inputs["rule"])]})


def _policy(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=inputs["policy"])


def _lifecycle(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": pascal(inputs["rules"])}
    )


def _logging(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    enabled = {"TargetBucket": inputs["targetBucket"], "TargetPrefix": inputs.get("targetPrefix", "")}
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": enabled})


# -- IAM -----------------------------------------------------------------------------------------------------


def _account(mocks: ReplayMocks) -> str:
    return str(mocks.client("sts", "eu-west-3").get_caller_identity()["Account"])


def _role(mocks: ReplayMocks, _region: str, inputs: dict[str, Any], tags: dict[str, str]) -> tuple[str, dict]:
    role = mocks.client("iam", "eu-west-3").create_role(
        RoleName=inputs["name"],
        AssumeRolePolicyDocument=inputs["assumeRolePolicy"],
        Description=inputs.get("description", ""),
        MaxSessionDuration=int(inputs.get("maxSessionDuration", 3600)),
        Tags=aws_tags(tags),
    )["Role"]
    return role["RoleName"], {"arn": role["Arn"], "name": role["RoleName"], "uniqueId": role["RoleId"]}


def _role_policy(mocks: ReplayMocks, _region: str, inputs: dict[str, Any], _tags: dict) -> tuple[str, dict]:
    name = inputs.get("name") or f"{inputs['role']}-{secrets.token_hex(4)}"
    mocks.client("iam", "eu-west-3").put_role_policy(
        RoleName=inputs["role"], PolicyName=name, PolicyDocument=inputs["policy"]
    )
    return f"{inputs['role']}:{name}", {"name": name}


def _user(mocks: ReplayMocks, _region: str, inputs: dict[str, Any], tags: dict[str, str]) -> tuple[str, dict]:
    user = mocks.client("iam", "eu-west-3").create_user(
        UserName=inputs["name"], Path=inputs.get("path", "/"), Tags=aws_tags(tags)
    )["User"]
    return user["UserName"], {"arn": user["Arn"], "name": user["UserName"], "uniqueId": user["UserId"]}


def _user_policy(mocks: ReplayMocks, _region: str, inputs: dict[str, Any], _tags: dict) -> tuple[str, dict]:
    mocks.client("iam", "eu-west-3").put_user_policy(
        UserName=inputs["user"], PolicyName=inputs["name"], PolicyDocument=inputs["policy"]
    )
    return f"{inputs['user']}:{inputs['name']}", {}


def _access_key(mocks: ReplayMocks, _region: str, inputs: dict[str, Any], _tags: dict) -> tuple[str, dict]:
    key = mocks.client("iam", "eu-west-3").create_access_key(UserName=inputs["user"])["AccessKey"]
    return key["AccessKeyId"], {"secret": key["SecretAccessKey"], "status": key["Status"]}


# -- KMS -----------------------------------------------------------------------------------------------------


def _values(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _named_principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    return _values(principal.get("AWS", [])) if isinstance(principal, dict) else _values(principal or [])


def _applies_to(statement: dict[str, Any], caller: str, account: str) -> bool:
    """Does the statement cover ``caller`` for kms:PutKeyPolicy (principal, action, aws:PrincipalArn)?"""
    if not any(fnmatch.fnmatchcase("kms:PutKeyPolicy", a) for a in _values(statement.get("Action", []))):
        return False
    named = _named_principals(statement)
    if not ("*" in named or caller in named or f"arn:aws:iam::{account}:root" in named):
        return False
    for operator, tests in (statement.get("Condition") or {}).items():
        for key, expected in tests.items():
            if key.lower() != "aws:principalarn" or not operator.startswith("Arn"):
                raise NotImplementedError(f"key policy condition {operator} {key}: not evaluated")
            matched = any(fnmatch.fnmatchcase(caller, value) for value in _values(expected))
            if matched == ("Not" in operator):
                return False
    return True


def key_policy_refusal(
    policy: dict[str, Any], caller: str, account: str, exists: Callable[[str], bool]
) -> str | None:
    """Why AWS's CreateKey/PutKeyPolicy refuses ``policy`` from ``caller`` (its principal ARN), None if it
    accepts. Two rules of the KMS reference that moto does not enforce (MalformedPolicyDocumentException):
    every principal a statement names must exist, and the policy must let the caller call PutKeyPolicy again
    (the lockout safety check; an account-root Allow counts, an explicit Deny wins)."""
    statements = policy.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    for statement in statements:
        for arn in _named_principals(statement):
            if arn != "*" and not re.fullmatch(r"arn:aws:iam::\d{12}:root|\d{12}", arn) and not exists(arn):
                return f"the key policy names a principal that does not exist: {arn}"
    covering = [s for s in statements if _applies_to(s, caller, account)]
    allowed = any(s.get("Effect") == "Allow" for s in covering)
    if not allowed or any(s.get("Effect") == "Deny" for s in covering):
        return f"the new key policy will not allow {caller} to update the key policy in the future"
    return None


def _iam_principal_exists(mocks: ReplayMocks) -> Callable[[str], bool]:
    iam = mocks.client("iam", "eu-west-3")

    def exists(arn: str) -> bool:
        kind, _, path_name = arn.split(":", 5)[-1].partition("/")
        name = path_name.rsplit("/", 1)[-1]
        try:
            if kind == "role":
                iam.get_role(RoleName=name)
            else:
                iam.get_user(UserName=name)
        except iam.exceptions.NoSuchEntityException:
            return False
        return True

    return exists


def caller_principal(mocks: ReplayMocks) -> tuple[str, str]:
    """(``aws:PrincipalArn`` of the replaying identity, its account)."""
    identity = mocks.client("sts", "eu-west-3").get_caller_identity()
    session = re.match(r"arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/", identity["Arn"])
    arn = f"arn:{session[1]}:iam::{session[2]}:role/{session[3]}" if session else identity["Arn"]
    return arn, identity["Account"]


class KeyPolicyRefused(Exception):
    """AWS KMS would answer MalformedPolicyDocumentException."""


def _kms_key(
    mocks: ReplayMocks, region: str, inputs: dict[str, Any], tags: dict[str, str]
) -> tuple[str, dict]:
    caller, account = caller_principal(mocks)
    refusal = key_policy_refusal(json.loads(inputs["policy"]), caller, account, _iam_principal_exists(mocks))
    if refusal:
        raise KeyPolicyRefused(refusal)
    kms = mocks.client("kms", region)
    metadata = kms.create_key(
        Description=inputs.get("description", ""),
        Policy=inputs["policy"],
        Tags=aws_tags(tags, "TagKey", "TagValue"),
    )["KeyMetadata"]
    if inputs.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    return metadata["KeyId"], {"arn": metadata["Arn"], "keyId": metadata["KeyId"]}


# -- detection (pulumi/offsite_detection.py): stored by the stand-in, which produces no events ----------------


def _trail(mocks: ReplayMocks, region: str, inputs: dict[str, Any], tags: dict[str, str]) -> tuple[str, dict]:
    cloudtrail = mocks.client("cloudtrail", region)
    trail = cloudtrail.create_trail(
        Name=inputs["name"],
        S3BucketName=inputs["s3BucketName"],
        S3KeyPrefix=inputs.get("s3KeyPrefix", ""),
        EnableLogFileValidation=bool(inputs.get("enableLogFileValidation")),
        IncludeGlobalServiceEvents=bool(inputs.get("includeGlobalServiceEvents")),
        IsMultiRegionTrail=bool(inputs.get("isMultiRegionTrail")),
        TagsList=aws_tags(tags),
    )
    cloudtrail.put_event_selectors(TrailName=inputs["name"], EventSelectors=pascal(inputs["eventSelectors"]))
    cloudtrail.start_logging(Name=inputs["name"])
    return trail["TrailARN"], {"arn": trail["TrailARN"]}


def _topic(mocks: ReplayMocks, region: str, inputs: dict[str, Any], tags: dict[str, str]) -> tuple[str, dict]:
    arn = mocks.client("sns", region).create_topic(Name=inputs["name"], Tags=aws_tags(tags))["TopicArn"]
    return arn, {"arn": arn}


def _topic_policy(mocks: ReplayMocks, region: str, inputs: dict[str, Any], _tags: dict) -> tuple[str, dict]:
    mocks.client("sns", region).set_topic_attributes(
        TopicArn=inputs["arn"], AttributeName="Policy", AttributeValue=inputs["policy"]
    )
    return inputs["arn"], {}


def _subscription(mocks: ReplayMocks, region: str, inputs: dict[str, Any], _tags: dict) -> tuple[str, dict]:
    arn = mocks.client("sns", region).subscribe(
        TopicArn=inputs["topic"], Protocol=inputs["protocol"], Endpoint=inputs["endpoint"]
    )["SubscriptionArn"]
    return arn, {"arn": arn}


def _event_rule(
    mocks: ReplayMocks, region: str, inputs: dict[str, Any], tags: dict[str, str]
) -> tuple[str, dict]:
    arn = mocks.client("events", region).put_rule(
        Name=inputs["name"],
        EventPattern=inputs["eventPattern"],
        Description=inputs.get("description", ""),
        Tags=aws_tags(tags),
    )["RuleArn"]
    return inputs["name"], {"arn": arn}


def _event_target(mocks: ReplayMocks, region: str, inputs: dict[str, Any], _tags: dict) -> tuple[str, dict]:
    target = inputs.get("targetId") or f"rempart-{secrets.token_hex(4)}"
    mocks.client("events", region).put_targets(
        Rule=inputs["rule"], Targets=[{"Id": target, "Arn": inputs["arn"]}]
    )
    return f"{inputs['rule']}-{target}", {"targetId": target}


def _notification(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    configuration = {"EventBridgeConfiguration": {}} if inputs.get("eventbridge") else {}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)


def _inventory(s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
    destination = inputs["destination"]["bucket"]
    s3.put_bucket_inventory_configuration(
        Bucket=bucket,
        Id=inputs["name"],
        InventoryConfiguration={
            "Id": inputs["name"],
            "IsEnabled": inputs.get("enabled", True),
            "IncludedObjectVersions": inputs["includedObjectVersions"],
            "Schedule": pascal(inputs["schedule"]),
            "OptionalFields": list(inputs.get("optionalFields", [])),
            "Destination": {
                "S3BucketDestination": {
                    "Bucket": destination["bucketArn"],
                    "Format": destination["format"],
                    "Prefix": destination.get("prefix", ""),
                }
            },
        },
    )


def _budget(mocks: ReplayMocks, _region: str, inputs: dict[str, Any], _tags: dict) -> tuple[str, dict]:
    account = _account(mocks)
    mocks.client("budgets", "us-east-1").create_budget(
        AccountId=account,
        Budget={
            "BudgetName": inputs["name"],
            "BudgetLimit": {"Amount": inputs["limitAmount"], "Unit": inputs["limitUnit"]},
            "TimeUnit": inputs["timeUnit"],
            "BudgetType": inputs["budgetType"],
        },
        NotificationsWithSubscribers=[
            {
                "Notification": {
                    "NotificationType": n["notificationType"],
                    "ComparisonOperator": n["comparisonOperator"],
                    "Threshold": float(n["threshold"]),
                    "ThresholdType": n["thresholdType"],
                },
                "Subscribers": [
                    {"SubscriptionType": "SNS", "Address": a} for a in n["subscriberSnsTopicArns"]
                ],
            }
            for n in inputs.get("notifications", [])
        ],
    )
    return f"{account}:{inputs['name']}", {"accountId": account}


REPLAYS: dict[str, Callable[..., tuple[str, dict[str, Any]]]] = {
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_setting(_versioning),
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": _bucket_setting(_object_lock),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _bucket_setting(
        _encryption
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _bucket_setting(_public_access_block),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _bucket_setting(_ownership),
    "aws:s3/bucketPolicy:BucketPolicy": _bucket_setting(_policy),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _bucket_setting(_lifecycle),
    "aws:s3/bucketLogging:BucketLogging": _bucket_setting(_logging),
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:iam/user:User": _user,
    "aws:iam/userPolicy:UserPolicy": _user_policy,
    "aws:iam/accessKey:AccessKey": _access_key,
    "aws:kms/key:Key": _kms_key,
    "aws:cloudtrail/trail:Trail": _trail,
    "aws:sns/topic:Topic": _topic,
    "aws:sns/topicPolicy:TopicPolicy": _topic_policy,
    "aws:sns/topicSubscription:TopicSubscription": _subscription,
    "aws:cloudwatch/eventRule:EventRule": _event_rule,
    "aws:cloudwatch/eventTarget:EventTarget": _event_target,
    "aws:s3/bucketNotification:BucketNotification": _bucket_setting(_notification),
    "aws:s3/inventory:Inventory": _bucket_setting(_inventory),
    "aws:budgets/budget:Budget": _budget,
}


def _bucket_read(*calls: str) -> Callable[[ReplayMocks, str, Declared], None]:
    def read(mocks: ReplayMocks, region: str, old: Declared) -> None:
        s3 = mocks.client("s3", region)
        for call in calls:
            getattr(s3, call)(Bucket=old.inputs.get("bucket") or old.id)

    return read


def _iam_read(call: str, **names: str) -> Callable[[ReplayMocks, str, Declared], None]:
    def read(mocks: ReplayMocks, _region: str, old: Declared) -> None:
        arguments = {k: (old.outputs.get(v) or old.inputs.get(v) or old.id) for k, v in names.items()}
        getattr(mocks.client("iam", "eu-west-3"), call)(**arguments)

    return read


def _kms_read(mocks: ReplayMocks, region: str, old: Declared) -> None:
    kms = mocks.client("kms", region)
    kms.describe_key(KeyId=old.id)
    kms.get_key_policy(KeyId=old.id, PolicyName="default")
    kms.get_key_rotation_status(KeyId=old.id)


# What pulumi-aws reads of each resource on refresh (a representative call per sub-resource).
READS: dict[str, Callable[[ReplayMocks, str, Declared], None]] = {
    "aws:s3/bucket:Bucket": _bucket_read("head_bucket", "get_bucket_location", "get_bucket_tagging"),
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_read("get_bucket_versioning"),
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": _bucket_read(
        "get_object_lock_configuration"
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _bucket_read(
        "get_bucket_encryption"
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _bucket_read("get_public_access_block"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _bucket_read("get_bucket_ownership_controls"),
    "aws:s3/bucketPolicy:BucketPolicy": _bucket_read("get_bucket_policy"),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _bucket_read(
        "get_bucket_lifecycle_configuration"
    ),
    "aws:s3/bucketLogging:BucketLogging": _bucket_read("get_bucket_logging"),
    "aws:iam/role:Role": _iam_read("get_role", RoleName="name"),
    "aws:iam/rolePolicy:RolePolicy": _iam_read("get_role_policy", RoleName="role", PolicyName="name"),
    "aws:iam/user:User": _iam_read("get_user", UserName="name"),
    "aws:iam/userPolicy:UserPolicy": _iam_read("get_user_policy", UserName="user", PolicyName="name"),
    "aws:iam/accessKey:AccessKey": _iam_read("list_access_keys", UserName="user"),
    "aws:kms/key:Key": _kms_read,
    "aws:s3/bucketNotification:BucketNotification": _bucket_read("get_bucket_notification_configuration"),
    "aws:s3/inventory:Inventory": lambda m, region, old: m.client(
        "s3", region
    ).get_bucket_inventory_configuration(Bucket=old.inputs["bucket"], Id=old.inputs["name"]),
    "aws:cloudtrail/trail:Trail": lambda m, region, old: m.client("cloudtrail", region).get_trail(
        Name=old.inputs["name"]
    ),
    "aws:sns/topic:Topic": lambda m, region, old: m.client("sns", region).get_topic_attributes(
        TopicArn=old.id
    ),
    "aws:sns/topicPolicy:TopicPolicy": lambda m, region, old: m.client("sns", region).get_topic_attributes(
        TopicArn=old.id
    ),
    "aws:sns/topicSubscription:TopicSubscription": lambda m, region, old: m.client(
        "sns", region
    ).get_subscription_attributes(SubscriptionArn=old.id),
    "aws:cloudwatch/eventRule:EventRule": lambda m, region, old: m.client("events", region).describe_rule(
        Name=old.id
    ),
    "aws:cloudwatch/eventTarget:EventTarget": lambda m, region, old: m.client(
        "events", region
    ).list_targets_by_rule(Rule=old.inputs["rule"]),
    "aws:budgets/budget:Budget": lambda m, _region, old: m.client("budgets", "us-east-1").describe_budget(
        AccountId=old.outputs["accountId"], BudgetName=old.inputs["name"]
    ),
}
# Changed in place by the same call that made them (S3 settings and inline policies are replaced whole).
UPDATED_IN_PLACE = {t for t in REPLAYS if t.startswith("aws:s3/bucket") and t != "aws:s3/bucket:Bucket"} | {
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
}


class RecordingMonitor(MockMonitor):
    """The mock monitor, plus the dependency edges the SDK sends the engine (URN -> the URNs it needs)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.dependencies: dict[str, set[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.dependencies[response.urn] = set(request.dependencies)
        return response


def name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


@dataclass
class Deployment:
    outputs: dict[str, Any]  # the program's stack outputs (secrets in clear)
    mocks: ReplayMocks
    monitor: RecordingMonitor

    def depends_on(self, name: str) -> set[str]:
        """Logical names of the resources ``name`` waits for."""
        urn = next(u for u in self.monitor.dependencies if name_of(u) == name)
        return {name_of(u) for u in self.monitor.dependencies[urn]}


def deploy(
    establishment: Any,
    endpoint: str,
    keys: dict[str, str] | None = None,
    adjust: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None,
    **config: Any,
) -> Deployment:
    """A fresh ``pulumi up`` of the program for ``establishment`` onto the stand-in; ``config``: the stack's
    other settings (``program.build``'s keywords: ``state_bucket``, ``key_administrator_arn``)."""
    return _run(establishment, ReplayMocks(endpoint, dict(keys or STAND_IN_KEYS), adjust), config)


def _run(establishment: Any, mocks: ReplayMocks, config: dict[str, Any] | None = None) -> Deployment:
    if str(PULUMI_DIR) not in sys.path:
        sys.path.insert(0, str(PULUMI_DIR))
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="rempart", stack="lab", preview=False, monitor=monitor)
    import program

    resolved: dict[str, Any] = {}

    def run() -> None:
        vault = program.build(establishment, **(config or {}))
        outputs = program.stack_outputs(establishment, vault)
        _sync_await(pulumi.Output.all(**outputs).apply(resolved.update).future())  # type: ignore[arg-type]

    settings = pulumi.runtime.settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()
    _sync_await(run_pulumi_func(run))
    return Deployment(resolved, mocks, monitor)


def update(
    previous: Deployment, establishment: Any, endpoint: str, keys: dict[str, str], **config: Any
) -> Deployment:
    """A later ``pulumi up`` of the program for ``establishment``, as the identity of ``keys``: every resource
    of ``previous`` is read (the engine's refresh), the ones whose inputs changed are updated, new ones made.
    Replacements and deletions are not replayed (they raise)."""
    known = {d.name: d for d in previous.mocks.declared}
    return _run(establishment, ReplayMocks(endpoint, dict(keys), previous=known), config)


def lab_outputs(outputs: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """The program's outputs with the stand-in's address instead of AWS's regional endpoint."""
    host = endpoint.removeprefix("http://").removeprefix("https://")
    aws_endpoint = re.compile(r"^s3:s3\.[a-z0-9-]+\.amazonaws\.com/")
    return {
        **outputs,
        "endpoint": endpoint,
        "restic_repositories": {
            name: aws_endpoint.sub(f"s3:http://{host}/", url)
            for name, url in (outputs.get("restic_repositories") or {}).items()
        },
    }


def dumps(outputs: dict[str, Any]) -> str:
    return json.dumps(outputs, indent=2, sort_keys=True)
