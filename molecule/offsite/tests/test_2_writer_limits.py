"""A root attacker on the backup server holds the writer key: against the bucket (probed from backup-01 with that
key) it can add delete markers, but cannot delete a version, shorten a lock, or weaken the bucket."""

from __future__ import annotations

import json

PROBE = r"""
import json, datetime as dt, boto3
from botocore.config import Config
keys = dict(l.split("=", 1) for l in open("/etc/rempart/offsite/writer.env").read().split())
config = json.load(open("/etc/rempart/offsite-copy.json"))
s3 = boto3.client("s3", endpoint_url=config["endpoint"], region_name=config["region"],
                  aws_access_key_id=keys["AWS_ACCESS_KEY_ID"], aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
bucket = config["bucket"]
key = "rempart-molecule/canary"  # an object of its own: the copy's repositories stay untouched
vid = s3.put_object(Bucket=bucket, Key=key, Body=b"canary")["VersionId"]  # locked by the bucket's default
soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
attempts = {
    "delete-version": lambda: s3.delete_object(Bucket=bucket, Key=key, VersionId=vid),
    "shorten-lock": lambda: s3.put_object_retention(Bucket=bucket, Key=key, VersionId=vid,
                                                    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": soon}),
    "governance": lambda: s3.put_object_retention(Bucket=bucket, Key=key, VersionId=vid,
                                                  Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon},
                                                  BypassGovernanceRetention=True),
    "suspend-versioning": lambda: s3.put_bucket_versioning(Bucket=bucket,
                                                           VersioningConfiguration={"Status": "Suspended"}),
    "lifecycle": lambda: s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]}),
    "delete-policy": lambda: s3.delete_bucket_policy(Bucket=bucket),
    "lock-config": lambda: s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}),
    "legal-hold": lambda: s3.put_object_legal_hold(Bucket=bucket, Key=key, VersionId=vid, LegalHold={"Status": "ON"}),
    "delete-bucket": lambda: s3.delete_bucket(Bucket=bucket),
}
results = {}
for name, attempt in attempts.items():
    try:
        attempt()
        results[name] = "allowed"
    except Exception as error:
        results[name] = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
marker = s3.delete_object(Bucket=bucket, Key=key)  # a delete marker: allowed, and recoverable
results["delete-marker"] = "allowed" if marker.get("DeleteMarker") else "refused"
versions = s3.list_object_versions(Bucket=bucket, Prefix=key)
results["version-still-there"] = any(v["VersionId"] == vid for v in versions.get("Versions", []))
print(json.dumps(results))
"""


def test_writer_key_cannot_destroy_or_weaken(lab):
    out = lab.server.check_output(f"python3 - <<'PY'\n{PROBE}\nPY")
    results = json.loads(out.splitlines()[-1])
    refused = {k: v for k, v in results.items() if k not in ("delete-marker", "version-still-there")}
    assert {k: v for k, v in refused.items() if v != "AccessDenied"} == {}
    assert results["delete-marker"] == "allowed"
    assert results["version-still-there"] is True
    s3 = lab.s3("restore")  # the hidden version is still locked and readable by the restore identity
    versions = s3.list_object_versions(Bucket=lab.bucket, Prefix="rempart-molecule/canary")["Versions"]
    head = s3.head_object(
        Bucket=lab.bucket, Key="rempart-molecule/canary", VersionId=versions[0]["VersionId"]
    )
    assert head["ObjectLockMode"] == "COMPLIANCE"
