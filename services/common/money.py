"""Money as integer fen (分); yuan strings with at most two decimals at the edges."""

from __future__ import annotations

import re

_YUAN = re.compile(r"(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?")
# What parse_yuan accepts, as one JSON Schema pattern: _YUAN without the zeros.
POSITIVE_YUAN_PATTERN = r"^([1-9][0-9]{0,15}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$"


class AmountError(ValueError):
    """An amount string that is not a positive yuan amount with at most two decimals."""


def parse_yuan(text: str) -> int:
    """Parse a yuan string such as ``"1200000.00"`` into integer fen; zero and negatives refused."""
    match = _YUAN.fullmatch(text)
    if match is None:
        raise AmountError(
            'must be a decimal string in yuan with at most 2 decimals, e.g. "1200000.00"'
        )
    whole, fraction = match.group(1), (match.group(2) or ".")[1:]
    fen = int(whole) * 100 + int(fraction.ljust(2, "0"))
    if fen <= 0:
        raise AmountError("must be greater than zero")
    return fen


def format_fen(fen: int) -> str:
    """Format integer fen as a yuan string with exactly two decimals."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"
