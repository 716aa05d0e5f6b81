"""FINESS numbers (Fichier national des établissements sanitaires et sociaux).

A FINESS number has 9 characters: the département on two characters (``2A``/``2B`` for Corsica),
six digits, then a check key: the Luhn digit computed over the first eight characters
(real numbers such as 750712184 and 010003812 satisfy it).

Corsica: no published rule says how the letters enter the key. Corsican codes were ``20`` before
the 1976 split, and the long-standing convention for French identifiers with 2A/2B (the NIR) maps the
letter to a digit before computing the key; Rempart computes the key with ``2A``/``2B`` read as ``20``
(the historical code). This choice is isolated in :func:`_key_digits` and tested both ways.
"""

from __future__ import annotations

import re

FINESS_PATTERN = re.compile(r"^(?:\d{2}|2A|2B)\d{7}$")


def _key_digits(finess: str) -> str:
    """The eight characters the key is computed over, as digits."""
    body = finess[:8]
    if body[:2] in ("2A", "2B"):
        body = "20" + body[2:]
    return body


def luhn_check_digit(digits: str) -> int:
    """Luhn check digit to append to ``digits``."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # rightmost digit of the body is doubled once the key is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def finess_problem(value: object) -> str | None:
    """Why ``value`` is not a valid FINESS number, or None when it is."""
    if not isinstance(value, str):
        return f"must be a string of 9 characters (quote it in YAML), got {type(value).__name__}"
    compact = value.replace(" ", "")
    if not FINESS_PATTERN.match(compact):
        return (
            f"{value!r} is not a FINESS number: 9 characters, two for the département "
            "(digits, or 2A/2B for Corsica) then 7 digits, e.g. '750712184'"
        )
    expected = luhn_check_digit(_key_digits(compact))
    if int(compact[8]) != expected:
        return (
            f"{value!r} has a wrong check key: the last digit must be {expected} "
            "(Luhn key over the first 8 characters); check the number in the FINESS register"
        )
    return None
