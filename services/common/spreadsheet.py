"""Cells for spreadsheets (CSV opened in Excel, LibreOffice, Sheets): text stays text."""

from __future__ import annotations

import re

# A cell starting with one of these is read as a formula (=HYPERLINK(…), @SUM(…), +cmd|…),
# or, for tab and carriage return, hides such a start from a naive check.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain decimal number, e.g. a negative amount "-12.50": no formula, and a number cell it
# must stay, so finance can sum the column.
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def safe_cell(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet evaluates: one that would start a formula gets a
    leading ``'`` (shown as text, the quote itself hidden); numbers such as ``-12.50`` and all
    other text are left as they are."""
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text
