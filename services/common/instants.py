"""Instants a client sends (``as_of``, ``since``): parsed once, the same way by every service."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

from services.common.errors import Invalid

_EXAMPLE = "e.g. 2025-03-31T00:00:00+08:00, or a date: 2025-03-31"
_ZH = "须为带时区的 ISO 8601 时间（如 2025-03-31T00:00:00+08:00）或日期（如 2025-03-31）"
_ZH_RANGE = "换算为 UTC 后须在公元 1 年至 9999 年之间"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def parse_instant(name: str, value: str) -> datetime:
    """The instant ``value`` names, in UTC; ``Invalid`` naming ``name`` when it is not an ISO 8601
    date and time with a time zone, or falls outside the years 1–9999 once in UTC
    (``9999-12-31T23:59:59-14:00`` is a valid local time of no representable UTC instant).

    A date alone (``2025-03-31``), as officers write one, is the end of that day in Beijing
    time: "as known on 31 March" includes everything recorded that day."""
    if _DAY.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise Invalid(
                name, f"{value} is not a date of the calendar, {_EXAMPLE}", f"{value} 不是有效日期"
            ) from None
        end = datetime.combine(day, time.max, tzinfo=BEIJING)
        try:
            return end.astimezone(UTC)
        except OverflowError:
            raise Invalid(
                name, "must fall within the years 1 to 9999 once converted to UTC", _ZH_RANGE
            ) from None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(
            name, f"must be an ISO 8601 date and time with a time zone, {_EXAMPLE}", _ZH
        ) from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise Invalid(name, f"must be an ISO 8601 instant with a time zone, {_EXAMPLE}", _ZH)
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise Invalid(
            name, "must fall within the years 1 to 9999 once converted to UTC", _ZH_RANGE
        ) from None
