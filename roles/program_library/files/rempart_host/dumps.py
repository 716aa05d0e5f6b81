"""What a plain PostgreSQL dump holds, counted while it streams (no second read, no parse of the SQL), and the
shape a row count must have wherever it comes from."""

from __future__ import annotations

from typing import Any


class CopyRows:
    """Rows per table of a plain pg_dump stream (its ``COPY ... FROM stdin;`` blocks), fed in chunks of any size:
    the count recorded at backup time that the restore drill compares with the scratch database."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.table: str | None = None
        self.carry = b""

    def feed(self, chunk: bytes) -> None:
        data = self.carry + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self.carry = data
            return
        self.carry = data[cut + 1 :]
        text, pos = b"\n" + data[: cut + 1], 0
        while pos < len(text) - 1:
            if self.table is not None:
                end = text.find(b"\n\\.\n", pos)
                self.rows[self.table] += text.count(b"\n", pos + 1, len(text) if end < 0 else end + 1)
                if end < 0:
                    return
                self.table, pos = None, end + 3
                continue
            start = text.find(b"\nCOPY ", pos)
            if start < 0:
                return
            pos = text.index(b"\n", start + 1)
            header = text[start + 1 : pos]
            if header.endswith(b" FROM stdin;"):
                name = header[5:].split(b" (", 1)[0].removesuffix(b" FROM stdin;")
                self.table = name.decode("utf-8", "replace")
                self.rows.setdefault(self.table, 0)


def valid_rows(rows: Any) -> bool:
    """A table -> row count mapping (str -> int >= 0, no bool): what a client or a ledger says is checked first."""
    return isinstance(rows, dict) and all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in rows.items()
    )
