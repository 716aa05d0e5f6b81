"""The lab's offsite stand-in server: ``tests/moto_strict.py`` (AWS Object Lock rules) plus AWS's IAM action
names for the S3 requests moto 5.2 authorizes under another name.

moto checks an identity policy against the action it derives from the request (``moto.s3.responses.ACTION_MAP``)
and falls back to ``PutObject``/``GetObject``/``CreateBucket``/``HeadBucket`` for sub-resources it does not list.
AWS authorizes them as below (Service Authorization Reference, "Actions defined by Amazon S3"), so without this a
policy is judged wrongly: the writer could set a legal hold (moto: PutObject), which AWS refuses it
(s3:PutObjectLegalHold is denied to it), and restic's HEAD bucket would need a ``s3:HeadBucket`` AWS does not have.

``python tests/moto_lab.py -H 10.89.60.1 -p 9000`` (started by ``rempart-lab offsite up``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from moto.iam.access_control import IAMRequestBase
from moto.s3.responses import ACTION_MAP

sys.path.insert(0, str(Path(__file__).resolve().parent))

from moto_strict import main as strict_main

AWS_ACTIONS = {
    ("BUCKET", "HEAD"): {"DEFAULT": "ListBucket"},
    ("BUCKET", "GET"): {
        "object-lock": "GetBucketObjectLockConfiguration",
        "encryption": "GetEncryptionConfiguration",
        "ownershipControls": "GetBucketOwnershipControls",
        "publicAccessBlock": "GetBucketPublicAccessBlock",
        "inventory": "GetInventoryConfiguration",
    },
    ("BUCKET", "PUT"): {
        "object-lock": "PutBucketObjectLockConfiguration",
        "encryption": "PutEncryptionConfiguration",
        "ownershipControls": "PutBucketOwnershipControls",
        "publicAccessBlock": "PutBucketPublicAccessBlock",
        "inventory": "PutInventoryConfiguration",
    },
    ("BUCKET", "DELETE"): {
        "encryption": "PutEncryptionConfiguration",
        "ownershipControls": "PutBucketOwnershipControls",
        "publicAccessBlock": "PutBucketPublicAccessBlock",
        "inventory": "PutInventoryConfiguration",
    },
    ("KEY", "GET"): {"retention": "GetObjectRetention", "legal-hold": "GetObjectLegalHold"},
    ("KEY", "PUT"): {"retention": "PutObjectRetention", "legal-hold": "PutObjectLegalHold"},
}


# Other services: moto names the action after the API call; AWS authorizes these under another name
# (Service Authorization Reference, "AWS Budgets": DescribeBudget* need budgets:ViewBudget).
AWS_OTHER_ACTIONS = {
    "budgets:DescribeBudget": "budgets:ViewBudget",
    "budgets:DescribeBudgets": "budgets:ViewBudget",
    "budgets:DescribeNotificationsForBudget": "budgets:ViewBudget",
}


def use_aws_action_names() -> None:
    for (resource, method), actions in AWS_ACTIONS.items():
        ACTION_MAP[resource][method].update(actions)  # later keys win in moto's lookup: these come last
    original = IAMRequestBase.__init__

    def init(self: IAMRequestBase, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        self._action = AWS_OTHER_ACTIONS.get(self._action, self._action)

    IAMRequestBase.__init__ = init  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    use_aws_action_names()
    strict_main(argv)


if __name__ == "__main__":
    main()
