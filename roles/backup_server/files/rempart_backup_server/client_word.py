"""The client's word about its job: the summary and the file manifest it sends back (issue 15, item 4).

Hostile data like everything a client sends: every field is type-checked before the server uses it, what does not
have the expected shape is dropped and named (a compromised client sends ``rows`` as a list to crash the server's
program). The server's own measures (admission.py) never come from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rempart_host.dumps import valid_rows

from rempart_backup_server.admission import HEX64

SUMMARY_FIELDS: dict[str, tuple[type, ...]] = {
    "rc": (int,),
    "restic": (dict,),
    "error": (str,),
    "cpu_seconds": (int, float),
    "max_rss_kib": (int,),
}


def client_word(
    summary: Any, manifest: Sequence[Any]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """The client's summary and manifest with every field type-checked: what does not have the expected shape is
    dropped and named (a compromised client sends ``rows`` as a list to crash the server's program)."""
    problems: list[str] = []
    clean: dict[str, Any] = {}
    if not isinstance(summary, dict):
        summary, problems = {}, ["client-summary-malformed: not an object"]
    for name, types in SUMMARY_FIELDS.items():
        value = summary.get(name)
        if value is None:
            continue
        if isinstance(value, types) and not isinstance(value, bool):
            clean[name] = value
        else:
            problems.append(f"client-summary-malformed: {name} is a {type(value).__name__}")
    rows = summary.get("rows")
    if rows is not None:
        if valid_rows(rows):
            clean["rows"] = rows
        else:
            problems.append(f"client-summary-malformed: rows is a {type(rows).__name__}, not table -> count")
    entries = []
    for record in manifest:
        ok = (
            isinstance(record, dict)
            and isinstance(record.get("path"), str)
            and HEX64.fullmatch(str(record.get("sha256")))
            and isinstance(record.get("size"), int)
        )
        if ok:
            entries.append({"path": record["path"], "sha256": record["sha256"], "size": record["size"]})
    if len(entries) != len(manifest):
        problems.append(f"client-manifest-malformed: {len(manifest) - len(entries)} entries dropped")
    return clean, entries, problems
