"""Policy pack ``rempart-offsite``: `pulumi preview --policy-pack pulumi/policy` (from the project)."""

from offsite_policies import policies
from pulumi_policy import PolicyPack

PolicyPack(name="rempart-offsite", policies=policies())
