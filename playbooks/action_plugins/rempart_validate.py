"""Ansible action ``rempart_validate``: checks the establishment of the inventory with the same code as
the ``rempart validate`` command and the Pulumi program (:mod:`rempart.validation`).

Runs on the controller only and reads the establishment and the vault secrets from the play's variables,
so no secret travels in task arguments or appears in the result.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from rempart.validation import validate


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("check_secrets",))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        check_secrets = bool(self._task.args.get("check_secrets", True))
        raw = task_vars.get("establishment")
        data = self._templar.template(raw) if raw is not None else None
        secrets = None
        if check_secrets:
            secrets = {k: self._templar.template(v) for k, v in task_vars.items() if k.startswith("vault_")}
        hosts = task_vars.get("groups", {}).get("all", [])
        establishment, violations = validate(data, inventory_hosts=set(hosts), secrets=secrets)
        result["changed"] = False
        if raw is None:
            result["failed"] = True
            result["msg"] = (
                "establishment: not defined; the inventory needs group_vars/all/establishment.yml "
                "with a top-level 'establishment:' mapping"
            )
            return result
        result["violations"] = [{"path": v.path, "message": v.message} for v in violations]
        if violations:
            result["failed"] = True
            result["msg"] = f"{len(violations)} violation(s) in the establishment:\n" + "\n".join(
                f"- {v}" for v in violations
            )
        else:
            assert establishment is not None
            result["msg"] = f"establishment {establishment.finess} ({establishment.name}) is valid"
            result["finess"] = establishment.finess
        return result
