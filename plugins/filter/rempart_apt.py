"""Jinja2 filter giving roles/base the apt settings with their defaults (same model as the validation:
rempart/model/apt.py); an invalid field fails the task that reads it, before anything is written."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from rempart.model.apt import apt_settings
from rempart.model.validation import plain


def rempart_apt(mirror: Any, proxy: Any = None) -> dict[str, Any]:
    """{mirror, exclusive, proxy, direct} from rempart_apt_mirror and rempart_apt_proxy (None when undeclared)."""
    try:
        return apt_settings(plain(mirror), plain(proxy))
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from error


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_apt": rempart_apt}
