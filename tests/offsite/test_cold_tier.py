"""The cold-tier lifecycle rules select exactly the packs restic writes: a real restic repository at
``<bucket>/<dataset>`` (as ``restic_repositories`` names it) on moto, the rules read back from the bucket."""

from __future__ import annotations

from moto_servers import REGION
from restic_helpers import make_dataset, restic

from rempart.offsite.policy import lifecycle_rules, lifecycle_rules_for_key

DATASETS = ("partages", "dpi-db")


def test_cold_tier_rules_select_restic_packs_only(s3, strict_endpoint, bucket_name, tmp_path):
    s3.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket_name,
        LifecycleConfiguration={"Rules": lifecycle_rules(60, "GLACIER_IR", 30, DATASETS)},
    )
    for dataset in DATASETS:
        repository = f"s3:{strict_endpoint}/{bucket_name}/{dataset}"
        restic(repository, "init", cache=tmp_path / "cache")
        source = make_dataset(tmp_path / dataset, files=12)
        restic(repository, "backup", str(source), cache=tmp_path / "cache")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket_name)["Rules"]
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name)
            for o in page.get("Contents", [])]  # fmt: skip
    packs = [k for k in keys if k.split("/")[1] == "data"]
    assert {k.split("/")[0] for k in packs} == set(DATASETS)  # restic wrote packs for both datasets
    for key in keys:
        cold = [r for r in lifecycle_rules_for_key(rules, key) if r.startswith("packs-to-colder-storage-")]
        if key in packs:
            assert cold == [f"packs-to-colder-storage-{key.split('/')[0]}"], key
        else:  # config, keys/, index/, snapshots/: read on every restic run, stay in STANDARD
            assert cold == [], key
