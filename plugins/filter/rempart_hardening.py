"""Jinja2 filter giving roles/hardening the level of a host, from its establishment's ``hardening`` section
(rempart/model/establishment.py, same model as the validation) and its inventory groups."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from pydantic import ValidationError

from rempart.model.establishment import Hardening
from rempart.model.validation import plain


def rempart_hardening_level(establishment: Any, groups: list[str]) -> str:
    """none, minimal, intermediary or enhanced. A host without establishment (a GHT's shared server) gets the
    defaults. Only the hardening section is read (playbooks/validate.yml checks the rest)."""
    section = (plain(establishment) or {}).get("hardening") or {}
    try:
        hardening = Hardening.model_validate(section)
    except ValidationError as error:
        found = "; ".join(
            f"establishment.hardening.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
        )
        raise AnsibleFilterError(found) from error
    return hardening.level_for(plain(groups)).value


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_hardening_level": rempart_hardening_level}
