"""Shared by the Pulumi tests: paths of the two stacks, and mocks that record every resource."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

ROOT = Path(__file__).resolve().parents[2]
PULUMI_DIR = ROOT / "pulumi"
STACKS = {
    "lab": ROOT / "inventories/lab/group_vars/all/establishment.yml",
    "example-ch": ROOT / "inventories/example-ch/group_vars/all/establishment.yml",
}
ACCOUNT = "123456789012"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource (with the camelCase inputs the engine - and a policy pack - sees)."""

    resources: list[Registered] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs), args.provider))
        outputs = dict(args.inputs)
        physical = f"{args.name}-0123abcd"
        if args.typ == "aws:s3/bucket:Bucket":
            physical = f"{args.inputs.get('bucketPrefix', args.name)}0123abcd"
            outputs |= {"bucket": physical, "arn": f"arn:aws:s3:::{physical}"}
        elif args.typ in ("aws:iam/user:User", "aws:iam/role:Role"):
            kind = "user" if args.typ.endswith("User") else "role"
            physical = args.inputs.get("name", physical)
            outputs |= {"arn": f"arn:aws:iam::{ACCOUNT}:{kind}/{physical}"}
        elif args.typ == "aws:kms/key:Key":
            outputs |= {"arn": f"arn:aws:kms:eu-west-3:{ACCOUNT}:key/{args.name}"}
        elif args.typ == "aws:iam/accessKey:AccessKey":
            physical = "AKIA" + args.name.upper().replace("-", "")[:16]
            outputs |= {"secret": f"secret-of-{args.name}"}
        elif args.typ.startswith("aws:") and "arn" not in outputs:  # topics, rules, trails...
            service = args.typ.split(":")[1].split("/")[0]
            outputs |= {"arn": f"arn:aws:{service}:eu-west-3:{ACCOUNT}:{physical}"}
        return physical, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer", "userId": "AID"}
        return {}

    def of_type(self, *types: str) -> list[Registered]:
        return [r for r in self.resources if r.type in types]

    def one(self, name: str) -> Registered:
        return next(r for r in self.resources if r.name == name)
