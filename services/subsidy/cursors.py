"""The cursors of finance's paged answers: an opaque token of the last (category, beneficiary)
a page held, so the next page starts after it whatever was written since."""

from __future__ import annotations

import base64
import binascii

import orjson

from services.common.errors import Invalid


def encode(category: str, beneficiary: str) -> str:
    """The cursor of a page that ended at this category and beneficiary."""
    return base64.urlsafe_b64encode(orjson.dumps([category, beneficiary])).decode().rstrip("=")


def decode(cursor: str) -> tuple[str, str]:
    """The (category, beneficiary) a cursor names, or a 422 naming the field ``cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        category, beneficiary = orjson.loads(raw)
        if isinstance(category, str) and isinstance(beneficiary, str):
            return category, beneficiary
    except (binascii.Error, ValueError, TypeError):
        pass
    raise Invalid(
        "cursor",
        "is not a cursor this service gave out: pass next_cursor as it came",
        "不是本服务给出的游标：请原样传入上一页的 next_cursor",
    )
