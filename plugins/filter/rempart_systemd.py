"""Jinja2 filter: the one sandbox block of every Rempart systemd unit (issue 20 item 4).

Every ``roles/*/templates/*.service.j2`` ends its ``[Service]`` section with
``{{ {exceptions} | rempart.rempart.rempart_systemd_sandbox }}`` and never writes one of these directives itself
(``tests/unit/test_units_sandbox.py``). A collection filter, not a Jinja include nor a drop-in: see the README of
role program_library, "One sandbox block for every unit".

An exception replaces a directive's value where it stands, or removes the directive (``none``: systemd's default),
so a unit never holds two lines of one directive: for list settings (``CapabilityBoundingSet=``,
``RestrictAddressFamilies=``, ``SystemCallFilter=``) a second line would add to the first, not replace it.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

# The common block, in its order in the unit files (the former roles/backup_server/templates/_sandbox.j2).
SANDBOX: dict[str, str] = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "SystemCallErrorNumber": "EPERM",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def _value(directive: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and "\n" not in value:
        return value.strip()
    raise AnsibleFilterError(
        f"rempart_systemd_sandbox: {directive}={value!r} is not a one-line string; give its value as a string "
        f"(e.g. {directive}: 'no'), a boolean, or none to leave systemd's default"
    )


def rempart_systemd_sandbox(exceptions: dict[str, Any] | None = None) -> str:
    """The common block as ``Directive=value`` lines (no trailing newline), each exception applied in place."""
    exceptions = dict(exceptions or {})
    unknown = sorted(set(exceptions) - set(SANDBOX))
    if unknown:
        raise AnsibleFilterError(
            f"rempart_systemd_sandbox: {', '.join(unknown)} is not a directive of the common block "
            f"({', '.join(SANDBOX)}); write it on its own line in the unit instead"
        )
    lines = []
    for directive, default in SANDBOX.items():
        value = _value(directive, exceptions[directive]) if directive in exceptions else default
        if value is not None:
            lines.append(f"{directive}={value}")
    return "\n".join(lines)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rempart_systemd_sandbox": rempart_systemd_sandbox}
