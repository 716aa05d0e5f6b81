"""The establishment's computed plan in plays and roles (rempart/model/establishment.py, Establishment.dataset_plan).

``rempart_plan``: the plan of an establishment mapping, for a role used on its own (its defaults).
``rempart_plan_of``: the plan that playbooks/validate.yml published on localhost, for the plays of playbooks/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from rempart.model.establishment import TUNNEL_PORT_BASE, Establishment
from rempart.model.validation import plain

PLAN_FACT = "rempart_plan"


def rempart_plan(
    establishment: Mapping[str, Any], tunnel_port_base: Any = TUNNEL_PORT_BASE, backup_instance: Any = ""
) -> dict[str, Any]:
    """{finess, datasets: {name: {tunnel_port, schedule}}, server: {suffix, user, repos_dir, state_dir, config_dir}}
    of an establishment (validated by the model); ``backup_instance``: the backup server view's rempart_backup_instance."""
    try:
        model = Establishment.model_validate(plain(establishment))
    except ValueError as error:
        raise AnsibleFilterError(
            f"establishment is not valid, run playbooks/validate.yml for the details: {error}"
        ) from None
    return model.roles_plan(int(tunnel_port_base), str(backup_instance or ""))


def rempart_plan_of(localhost: Mapping[str, Any], group: str = "all") -> dict[str, Any]:
    """The published plan of the establishment of inventory group ``group`` ('all': a one-establishment
    inventory; a GHT: the host's rempart_establishment_group)."""
    plans = localhost.get(PLAN_FACT)
    if plans is None:
        raise AnsibleFilterError(
            "rempart_plan is not published: playbooks/validate.yml did not run on localhost; "
            "with --limit, include localhost (--limit localhost,<hosts>)"
        )
    if group not in plans:
        raise AnsibleFilterError(
            f"rempart_plan has no establishment for group {group!r} (has {sorted(plans)})"
        )
    return dict(plans[group])


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_plan": rempart_plan, "rempart_plan_of": rempart_plan_of}
