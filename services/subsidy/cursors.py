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


def encode_sorted(sort: str, key: tuple[object, ...]) -> str:
    """The cursor of a page of entitlements in ``sort`` order that ended (or, for a previous
    page, began) at this sort key; in the default order the same as :func:`encode`."""
    if sort == "category":
        category, beneficiary = key
        return encode(str(category), str(beneficiary))
    return base64.urlsafe_b64encode(orjson.dumps([sort, *key])).decode().rstrip("=")


def decode_sorted(cursor: str, sort: str, field: str = "cursor") -> tuple[object, ...]:
    """The sort key a cursor names, if it was given out for pages in ``sort`` order; else a
    422 naming ``field``."""
    if sort == "category":
        return decode(cursor) if field == "cursor" else _renamed(cursor, field)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        given, first, category, beneficiary = orjson.loads(raw)
        number = sort.lstrip("-") == "entitlement"
        first_ok = isinstance(first, int) if number else isinstance(first, str)
        if (
            given == sort
            and first_ok
            and not isinstance(first, bool)
            and isinstance(category, str)
            and isinstance(beneficiary, str)
        ):
            return first, category, beneficiary
    except (binascii.Error, ValueError, TypeError):
        pass
    raise _not_ours(field)


def _renamed(cursor: str, field: str) -> tuple[str, str]:
    try:
        return decode(cursor)
    except Invalid:
        raise _not_ours(field) from None


def _not_ours(field: str) -> Invalid:
    return Invalid(
        field,
        "is not a cursor this service gave out for this order: pass next_cursor or "
        "previous_cursor as it came, with the same sort",
        "不是本服务为此排序给出的游标：请在同一排序下原样传入 next_cursor 或 previous_cursor",
    )
