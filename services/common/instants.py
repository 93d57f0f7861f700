"""Instants a client sends (``as_of``, ``since``): parsed once, the same way by every service."""

from __future__ import annotations

from datetime import UTC, datetime

from services.common.errors import Invalid

_EXAMPLE = "e.g. 2025-03-31T00:00:00+08:00"


def parse_instant(name: str, value: str) -> datetime:
    """The instant ``value`` names, in UTC; ``Invalid`` naming ``name`` when it is not an ISO 8601
    date and time with a time zone, or falls outside the years 1–9999 once in UTC
    (``9999-12-31T23:59:59-14:00`` is a valid local time of no representable UTC instant)."""
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(
            name, f"must be an ISO 8601 date and time with a time zone, {_EXAMPLE}"
        ) from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise Invalid(name, f"must be an ISO 8601 instant with a time zone, {_EXAMPLE}")
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise Invalid(name, "must fall within the years 1 to 9999 once converted to UTC") from None
