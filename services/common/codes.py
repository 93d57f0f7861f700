"""Identity codes: unified social credit codes (GB 32100-2015) and region codes (GB/T 2260)."""

from __future__ import annotations

import re
from functools import lru_cache

# GB 32100-2015 character set: digits and capitals without I, O, Z, S, V.
CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUES = {c: i for i, c in enumerate(CREDIT_CODE_CHARSET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_REGION = re.compile(r"[0-9]{6}")


def credit_code_check_character(first17: str) -> str:
    """The check character that completes the first 17 characters of a credit code."""
    total = sum(_VALUES[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


@lru_cache(maxsize=16384)  # the same parties come back in contract after contract
def credit_code_problem(code: str) -> str | None:
    """Why ``code`` is not a valid unified social credit code, or None when it is."""
    if len(code) != 18:
        return "must be 18 characters (GB 32100-2015)"
    bad = sorted({c for c in code if c not in _VALUES})
    if bad:
        return f"contains characters outside the GB 32100-2015 set: {''.join(bad)}"
    if credit_code_check_character(code[:17]) != code[17]:
        return "fails the GB 32100-2015 check character"
    return None


def region_code_problem(code: str) -> str | None:
    """Why ``code`` is not a 6-digit GB/T 2260 region code, or None when it is."""
    return None if _REGION.fullmatch(code) else "must be 6 digits (GB/T 2260)"
