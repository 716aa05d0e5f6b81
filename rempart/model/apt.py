"""Where the hosts of an establishment take their packages from: inventory variables ``rempart_apt_mirror`` and
``rempart_apt_proxy`` (any group_vars or host_vars; a GHT's shared servers belong to no establishment, so these are
not keys of ``establishment:``). Applied by roles/base.

Nothing declared: the host keeps its own apt sources. A mirror adds a Rempart source next to them; only a mirror
declared ``exclusive: true`` (air-gapped hospitals, the lab) removes every other source. A proxy is written to
/etc/apt/apt.conf.d (the mirror itself is reached directly).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MIRROR_VARIABLE = "rempart_apt_mirror"
PROXY_VARIABLE = "rempart_apt_proxy"


class AptMirror(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str
    suites: list[str] = Field(min_length=1)
    components: list[str] = Field(default_factory=list)
    trusted: bool = False
    signed_by: str | None = None
    # True: every other apt source of the host is removed (sources.list, sources.list.d/*). Only declare it
    # where nothing else may be fetched from elsewhere: the vendors' sources of a production server go too.
    exclusive: bool = False

    @field_validator("uri")
    @classmethod
    def uri_is_url(cls, uri: str) -> str:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.hostname):
            raise ValueError(
                f"{uri!r} is not an apt address; give one such as http://mirror.hopital.local/debian/"
            )
        return uri

    @model_validator(mode="after")
    def signed_or_trusted(self) -> AptMirror:
        if not self.trusted and not self.signed_by:
            raise ValueError(
                "give signed_by (the mirror's signing key: a path or an armored key) or, in a lab only, trusted: true"
            )
        return self


def proxy_problem(proxy: object) -> str | None:
    """Why ``proxy`` is not a usable apt HTTP proxy address, or None."""
    if not isinstance(proxy, str):
        return f"expected an address such as http://proxy.hopital.local:3128, got {type(proxy).__name__}"
    parts = urlsplit(proxy)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        return f"{proxy!r} is not an HTTP proxy address; give one such as http://proxy.hopital.local:3128"
    if parts.username or parts.password:
        return (
            "a user or password in the proxy address would sit in a world-readable apt file; authorise the hosts "
            "on the proxy by address instead, and give http://host:port"
        )
    return None


def apt_problems(mirror: Any, proxy: Any) -> list[tuple[str, str]]:
    """(key path, message) for each invalid field of the two variables; empty when both are valid or absent."""
    problems: list[tuple[str, str]] = []
    if mirror is not None:
        try:
            AptMirror.model_validate(mirror)
        except ValidationError as error:
            for found in error.errors():
                path = ".".join([MIRROR_VARIABLE, *(str(p) for p in found["loc"])])
                message = str(found["msg"]).removeprefix("Value error, ")
                if found["type"] == "extra_forbidden":
                    message = f"unknown key (a typo?); valid keys: {', '.join(AptMirror.model_fields)}"
                elif found["type"] == "missing":
                    message = f"required key missing: add '{found['loc'][-1]}'"
                problems.append((path, message))
    if proxy is not None and (problem := proxy_problem(proxy)):
        problems.append((PROXY_VARIABLE, problem))
    return problems


def apt_settings(mirror: Any, proxy: Any) -> dict[str, Any]:
    """What roles/base applies: the mirror with its defaults (or None), the proxy (or None) and the mirror's
    host reached directly. Raises ValueError naming every invalid field."""
    problems = apt_problems(mirror, proxy)
    if problems:
        raise ValueError("; ".join(f"{path}: {message}" for path, message in problems))
    model = AptMirror.model_validate(mirror) if mirror is not None else None
    return {
        "mirror": model.model_dump() if model else None,
        "exclusive": bool(model and model.exclusive),
        "proxy": proxy,
        "direct": urlsplit(model.uri).hostname if model and proxy else None,
    }
