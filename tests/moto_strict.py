"""moto with the two S3 Object Lock rules that stock moto 5.2 does not enforce.

AWS (S3 user guide, "Locking objects with Object Lock" and "Configuring S3 Object Lock"):

1. *Compliance mode*: "a protected object version can't be overwritten or deleted by any user, including
   the root user ... its retention mode can't be changed, and its retention period can't be shortened."
   Extending is allowed. *Governance mode*: shortening, removing or changing the retention needs the
   ``s3:BypassGovernanceRetention`` permission **and** the ``x-amz-bypass-governance-retention: true``
   header; changing governance to compliance (stronger) is allowed.
2. "After you enable Object Lock on a bucket, you can't disable Object Lock or suspend versioning for that
   bucket." (AWS answers 409 InvalidBucketState.)

Stock moto lets both through (``S3Backend.put_object_retention`` just assigns, ``put_bucket_versioning``
just stores). :func:`strict_object_lock` patches them for as long as the context is open; the clock is
moto's own (``moto.s3.models.utcnow``) so a test that moves moto's clock moves ours too.

Two more patches concern bucket policies, which moto 5.2 judges wrongly:

3. moto evaluates bucket-policy statements that carry a ``Condition`` it cannot resolve
   (``aws:SecureTransport``, ``aws:PrincipalArn``, ``s3:object-lock-remaining-retention-days``) as
   *DENIED*, whatever their effect, in its anonymous object check, so the production bucket policy would
   refuse every request: that check ignores conditional statements (unconditional ones still apply).
4. With IAM enforced, moto checks only the caller's identity policies: a bucket policy's explicit deny never
   applies. AWS evaluates both, and an explicit deny in either wins ("Policy evaluation logic"). The strict
   server adds the bucket policy's ``Deny`` statements to the check, with the condition key the day-2
   design depends on, ``aws:PrincipalArn`` (the IAM user's ARN, or for a role session the *role's* ARN, as
   AWS sets it), under the ``Arn*``/``String*`` operators. A statement whose condition names another key
   (TLS, retention days: unknowable or not emulated over plain HTTP) is skipped: those conditions are
   checked by the policy pack and ``verify-offsite``.

``python tests/moto_strict.py -H 127.0.0.1 -p 5056`` runs a strict moto server (for the lab and the
benchmark).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import json
import re
from collections.abc import Iterator
from typing import Any

import moto.s3.models as s3_models
from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult, S3IAMRequest
from moto.s3.exceptions import AccessDeniedByLock, InvalidBucketState
from moto.s3.models import FakeBucket, S3Backend, s3_backends
from moto.s3.responses import S3Response

VERSIONING_MESSAGE = (
    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
)


def parse_until(value: str | None) -> dt.datetime | None:
    """A retain-until date as moto stores it (naive UTC)."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def retention_change_refusal(
    current_mode: str | None,
    current_until: dt.datetime | None,
    new_mode: str | None,
    new_until: dt.datetime | None,
    now: dt.datetime,
    bypass_governance: bool,
) -> str | None:
    """Why AWS refuses to replace the current retention by the new one (None: AWS accepts)."""
    if current_mode not in ("COMPLIANCE", "GOVERNANCE") or current_until is None or current_until <= now:
        return None  # no active lock: anything goes
    weakens = (
        new_mode is None
        or new_until is None
        or new_until < current_until
        or (current_mode == "COMPLIANCE" and new_mode != "COMPLIANCE")
    )
    if not weakens:
        return None
    if current_mode == "COMPLIANCE":
        return "a COMPLIANCE retention can be extended, never shortened, removed or changed to GOVERNANCE"
    if bypass_governance:
        return None
    return "weakening a GOVERNANCE retention needs x-amz-bypass-governance-retention"


def _strict_put_object_retention(original: Any) -> Any:
    def put_object_retention(self: S3Response) -> Any:
        bucket = self.backend.get_bucket(self.bucket_name)
        if bucket.object_lock_enabled:
            key = self.backend.get_object(
                self.bucket_name, self.parse_key_name(), version_id=self._get_param("versionId")
            )
            if key is not None:
                new_mode, new_until = self._mode_until_from_body()
                bypass = self.headers.get("x-amz-bypass-governance-retention", "").lower() == "true"
                refusal = retention_change_refusal(
                    key.lock_mode or None,
                    parse_until(key.lock_until),
                    new_mode,
                    parse_until(new_until),
                    s3_models.utcnow(),
                    bypass,
                )
                if refusal:  # AWS says only "Access Denied"
                    raise AccessDeniedByLock()
        return original(self)

    return put_object_retention


def _strict_put_bucket_versioning(original: Any) -> Any:
    def put_bucket_versioning(self: S3Backend, bucket_name: str, status: str) -> None:
        if self.get_bucket(bucket_name).object_lock_enabled and status != "Enabled":
            raise InvalidBucketState(VERSIONING_MESSAGE)
        original(self, bucket_name, status)

    return put_bucket_versioning


def _unconditional_get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
    if self.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(self.policy)
    statements = document.get("Statement", [])
    statements = [
        s for s in (statements if isinstance(statements, list) else [statements]) if "Condition" not in s
    ]
    return IAMPolicy(json.dumps({**document, "Statement": statements})).is_action_permitted(action, resource)


EVALUATED_OPERATORS = (
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "StringEquals",
    "StringNotEquals",
)


def principal_arn(caller_arn: str) -> str:
    """``aws:PrincipalArn``: a role session counts as its role (``arn:aws:iam::<account>:role/<name>``)."""
    session = re.match(r"arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/", caller_arn)
    return f"arn:{session[1]}:iam::{session[2]}:role/{session[3]}" if session else caller_arn


def _values(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool | None:
    """Does a policy ``Condition`` hold for ``context`` (lower-case keys)? None: it names a key or an
    operator the stand-in does not evaluate. Negated operators hold when no value matches (AWS's rule)."""
    unknown = False
    for operator, tests in condition.items():
        base = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            actual = context.get(key.lower())
            if actual is None or base not in EVALUATED_OPERATORS:
                unknown = True
                continue
            like = base.startswith("Arn")  # ArnEquals takes wildcards too, like ArnLike (IAM reference)
            matched = any(
                fnmatch.fnmatchcase(actual, value) if like else actual == value for value in _values(expected)
            )
            if matched == ("Not" in base):
                return False  # every test of a condition must hold
    return None if unknown else True


def _principal_matches(principal: Any, arn: str) -> bool:
    if principal == "*":
        return True
    named = _values(principal.get("AWS", [])) if isinstance(principal, dict) else []
    return "*" in named or arn in named


def bucket_policy_denies(policy: dict[str, Any], action: str, resource: str, caller: str) -> bool:
    """An explicit deny of the bucket policy for this caller (condition keys: ``aws:PrincipalArn``)."""
    context = {"aws:principalarn": principal_arn(caller)}
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Deny" or not _principal_matches(
            statement.get("Principal"), context["aws:principalarn"]
        ):
            continue
        judged = IAMPolicyStatement(
            {k: v for k, v in statement.items() if k not in ("Condition", "Principal")}
        )
        if judged.is_action_permitted(action, resource) != PermissionResult.DENIED:
            continue  # another action or resource
        if "Condition" in statement and condition_holds(statement["Condition"], context) is not True:
            continue
        return True
    return False


def _with_bucket_policy(original: Any) -> Any:
    def check_action_permitted(self: S3IAMRequest, resource: str) -> None:
        original(self, resource)  # the caller's identity policies (moto's own check)
        name = resource.split(":::", 1)[-1].split("/", 1)[0]
        bucket = s3_backends[self.account_id]["global"].buckets.get(name)
        if bucket is not None and bucket.policy:
            document = json.loads(bucket.policy)
            if bucket_policy_denies(document, self._action, resource, self._access_key.arn):
                self._raise_access_denied()

    return check_action_permitted


@contextlib.contextmanager
def strict_object_lock() -> Iterator[None]:
    """Enforce AWS's Object Lock rules in this process's moto while the context is open."""
    saved = (
        S3Response.put_object_retention,
        S3Backend.put_bucket_versioning,
        FakeBucket.get_permission,
        S3IAMRequest.check_action_permitted,
    )
    S3Response.put_object_retention = _strict_put_object_retention(saved[0])  # type: ignore[method-assign]
    S3Backend.put_bucket_versioning = _strict_put_bucket_versioning(saved[1])  # type: ignore[method-assign]
    FakeBucket.get_permission = _unconditional_get_permission  # type: ignore[method-assign]
    S3IAMRequest.check_action_permitted = _with_bucket_policy(saved[3])  # type: ignore[method-assign]
    try:
        yield
    finally:
        (
            S3Response.put_object_retention,
            S3Backend.put_bucket_versioning,
            FakeBucket.get_permission,
            S3IAMRequest.check_action_permitted,
        ) = saved  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    """``moto_server``'s own command line (``-H HOST -p PORT``), strict."""
    from moto.server import main as moto_server_main

    with strict_object_lock():
        moto_server_main(argv)


if __name__ == "__main__":
    main()
