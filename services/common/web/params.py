"""Query parameters several services take, parsed by the shared functions behind them."""

# No `from __future__ import annotations` here: FastAPI reads the dependency's parameter
# annotation at run time, and it refers to this factory's arguments.

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import Query

from services.common.instants import parse_instant

# Log positions and tree sizes are BIGINT in both stores: a larger number is no position at
# all, and reached the database as an overflow (a 500) before.
MAX_POSITION = 2**63 - 1


def optional_instant(name: str, description: str) -> Callable[..., Awaitable[datetime | None]]:
    """A dependency reading the query parameter ``name`` as an instant in UTC (None if absent);
    a bad one is a 422 naming ``name``. Use it as
    ``as_of: Annotated[datetime | None, Depends(optional_instant("as_of", "…"))]``."""
    text = Annotated[
        str | None,
        Query(
            alias=name,
            description=description,
            json_schema_extra={"format": "date-time"},
            examples=["2025-03-31T00:00:00+08:00"],
        ),
    ]

    async def instant(value: text = None) -> datetime | None:
        return None if value is None else parse_instant(name, value)

    return instant


def required_instant(name: str, description: str) -> Callable[..., Awaitable[datetime]]:
    """Like :func:`optional_instant`, for a parameter that must be given (a 422 when absent):
    ``since: Annotated[datetime, Depends(required_instant("since", "…"))]``."""
    text = Annotated[
        str,
        Query(
            alias=name,
            description=description,
            json_schema_extra={"format": "date-time"},
            examples=["2025-03-31T00:00:00+08:00"],
        ),
    ]

    async def instant(value: text) -> datetime:
        return parse_instant(name, value)

    return instant
