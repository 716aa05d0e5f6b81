"""Ansible action ``rempart_validate``: checks the establishment of the inventory with the same code as
the ``rempart validate`` command and the Pulumi program (:mod:`rempart.model.validation`).

A GHT inventory (``rempart_ght``, rempart/model/ght.py) has one establishment per group: each is validated against its
own group's hosts and vault, then the rules across them (distinct FINESS, a host in one establishment, one port
per view of a shared backup server).

Runs on the controller only and reads the establishment and the vault secrets from the play's variables,
so no secret travels in task arguments or appears in the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

from rempart.model.apt import MIRROR_VARIABLE, PROXY_VARIABLE, apt_problems
from rempart.model.establishment import TUNNEL_PORT_BASE, Establishment
from rempart.model.ght import (
    DEFAULT_REST_PORT,
    GHT_VARIABLE,
    VIEW_HOST,
    VIEW_PORT,
    EstablishmentSource,
    View,
    ght_violations,
)
from rempart.model.validation import (
    HARDENING_LEVEL_VARIABLE,
    Violation,
    hardening_level_set_in_inventory,
    validate,
)

# The computed plan of each establishment, published as a fact of localhost (playbooks/validate.yml): key 'all' for
# a one-establishment inventory, the establishment's group in a GHT. The plays read it with rempart_plan_of.
PLAN_FACT = "rempart_plan"
TUNNEL_PORT_BASE_VARIABLE = "rempart_backup_tunnel_port_base"
INSTANCE_VARIABLE = (
    "rempart_backup_instance"  # a GHT view's FINESS: names of its instance of the backup service
)


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
        result["changed"] = False
        if raw is None and task_vars.get(GHT_VARIABLE) is not None:
            return self._run_ght(result, task_vars, check_secrets)
        establishment, violations = validate(data, inventory_hosts=set(hosts), secrets=secrets)
        violations += self._apt_violations(task_vars) + self._hardening_violations(task_vars)
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
            servers = task_vars.get("groups", {}).get("backup_servers") or []
            server = task_vars["hostvars"][servers[0]] if servers else None
            result["ansible_facts"] = {PLAN_FACT: {"all": self._plan(establishment, task_vars, server)}}
        return result

    def _plan(self, establishment: Establishment, variables: Any, server: Any) -> dict[str, Any]:
        """The roles' plan: tunnel port base from the establishment's variables, instance from its backup server."""
        base = self._templar.template(variables.get(TUNNEL_PORT_BASE_VARIABLE, TUNNEL_PORT_BASE))
        instance = self._templar.template(server.get(INSTANCE_VARIABLE, "")) if server is not None else ""
        return establishment.roles_plan(int(base), str(instance or ""))

    def _apt_violations(self, task_vars: dict[str, Any]) -> list[Violation]:
        """rempart_apt_mirror / rempart_apt_proxy of every host (rempart/model/apt.py), each problem once."""
        hostvars = task_vars.get("hostvars", {})
        found: dict[tuple[str, str], list[str]] = {}
        for host in task_vars.get("groups", {}).get("all", []):
            variables = hostvars[host]
            mirror, proxy = (
                self._templar.template(variables[name]) if name in variables else None
                for name in (MIRROR_VARIABLE, PROXY_VARIABLE)
            )
            for problem in apt_problems(mirror, proxy):
                found.setdefault(problem, []).append(host)
        return [
            Violation(path, f"{message} (hosts: {', '.join(sorted(hosts))})")
            for (path, message), hosts in found.items()
        ]

    @staticmethod
    def _hardening_violations(task_vars: dict[str, Any]) -> list[Violation]:
        hostvars = task_vars.get("hostvars", {})
        hosts = task_vars.get("groups", {}).get("all", [])
        return hardening_level_set_in_inventory([h for h in hosts if HARDENING_LEVEL_VARIABLE in hostvars[h]])

    def _run_ght(
        self, result: dict[str, Any], task_vars: dict[str, Any], check_secrets: bool
    ) -> dict[str, Any]:
        ght = self._templar.template(task_vars[GHT_VARIABLE])
        groups: dict[str, list[str]] = task_vars.get("groups", {})
        hostvars = task_vars.get("hostvars", {})
        checked = []
        violations: list[Violation] = []
        for group in ght.get("establishments") or []:
            members = groups.get(group) or []
            if not members:
                violations.append(Violation(f"{GHT_VARIABLE}.establishments", f"group {group!r} has no host"))
                continue
            variables = hostvars[members[0]]
            secrets = None
            if check_secrets:
                secrets = {k: variables[k] for k in variables if str(k).startswith("vault_")}
            establishment, found = validate(
                variables.get("establishment"), inventory_hosts=set(members), secrets=secrets
            )
            violations += [Violation(f"{group}.{v.path}", v.message) for v in found]
            checked.append((EstablishmentSource(group, Path(group), frozenset(members)), establishment))
        views = [
            View(
                name,
                str(hostvars[name][VIEW_HOST]),
                int(hostvars[name].get(VIEW_PORT, DEFAULT_REST_PORT)),
                next((s.group for s, _ in checked if name in s.hosts), ""),
            )
            for name in groups.get("backup_servers", [])
            if VIEW_HOST in hostvars[name]
        ]
        violations += ght_violations(checked, views, set(groups.get("all", [])))
        violations += self._apt_violations(task_vars) + self._hardening_violations(task_vars)
        result["violations"] = [{"path": v.path, "message": v.message} for v in violations]
        if violations:
            result["failed"] = True
            result["msg"] = f"{len(violations)} violation(s) in the GHT:\n" + "\n".join(
                f"- {v}" for v in violations
            )
            return result
        result["finess"] = [e.finess for _, e in checked if e is not None]
        result["ansible_facts"] = {
            PLAN_FACT: {
                source.group: self._plan(
                    establishment,
                    hostvars[groups[source.group][0]],
                    next((hostvars[view.name] for view in views if view.group == source.group), None),
                )
                for source, establishment in checked
                if establishment is not None
            }
        }
        result["msg"] = (
            f"GHT {ght.get('name', '')}: "
            + ", ".join(f"{e.finess} ({e.name})" for _, e in checked if e is not None)
            + " valid"
        )
        return result
