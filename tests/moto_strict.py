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

A third patch is not an AWS rule but a moto limitation: moto 5.2 evaluates bucket-policy statements that
carry a ``Condition`` it cannot resolve (``aws:SecureTransport``, ``aws:PrincipalArn``,
``s3:object-lock-remaining-retention-days``) as *DENIED*, whatever their effect, so the production bucket
policy would refuse every request. Over plain HTTP on 127.0.0.1 those conditions cannot be emulated
faithfully anyway: the strict server ignores conditional statements (unconditional ones still apply).
The policy's conditions are checked by the policy pack and ``verify-offsite`` instead.

``python tests/moto_strict.py -H 127.0.0.1 -p 5056`` runs a strict moto server (for the lab and the
benchmark).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import moto.s3.models as s3_models
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.exceptions import AccessDeniedByLock, InvalidBucketState
from moto.s3.models import FakeBucket, S3Backend
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


@contextlib.contextmanager
def strict_object_lock() -> Iterator[None]:
    """Enforce AWS's Object Lock rules in this process's moto while the context is open."""
    saved = (S3Response.put_object_retention, S3Backend.put_bucket_versioning, FakeBucket.get_permission)
    S3Response.put_object_retention = _strict_put_object_retention(saved[0])  # type: ignore[method-assign]
    S3Backend.put_bucket_versioning = _strict_put_bucket_versioning(saved[1])  # type: ignore[method-assign]
    FakeBucket.get_permission = _unconditional_get_permission  # type: ignore[method-assign]
    try:
        yield
    finally:
        S3Response.put_object_retention, S3Backend.put_bucket_versioning, FakeBucket.get_permission = saved  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    """``moto_server``'s own command line (``-H HOST -p PORT``), strict."""
    from moto.server import main as moto_server_main

    with strict_object_lock():
        moto_server_main(argv)


if __name__ == "__main__":
    main()
