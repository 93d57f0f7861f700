"""What free text may hold, wherever it comes from: one rule for every text field."""

from __future__ import annotations

import re

# Control characters (C0, DEL, C1); bidirectional embeddings, overrides and isolates, which
# reorder what a reader sees ("Trojan Source"), so one name could display as another; and lone
# surrogates, escapes like "\ud800" that name no character and no encoding can hold.
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"
_ALWAYS_REFUSED = "\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_IN_A_LINE = re.compile(f"[{_CONTROLS}\t\n{_ALWAYS_REFUSED}]")
_IN_A_PARAGRAPH = re.compile(f"[{_CONTROLS}{_ALWAYS_REFUSED}]")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` may not be stored as text, or None.

    Refused: control characters (C0, DEL, C1; in one-line text tabs and newlines too, while a
    paragraph such as a reason keeps those two), the bidirectional controls U+202A–U+202E and
    U+2066–U+2069, and lone surrogates."""
    found = (_IN_A_PARAGRAPH if multiline else _IN_A_LINE).search(value)
    if found is None:
        return None
    code = ord(found.group())
    if 0x202A <= code <= 0x2069:
        return f"must not hold the bidirectional control U+{code:04X}"
    if 0xD800 <= code <= 0xDFFF:
        return f"must not hold U+{code:04X}, a lone surrogate that is no character"
    kept = "" if multiline else " (it is one line: no tabs or newlines either)"
    return f"must not hold control characters such as U+{code:04X}{kept}"
