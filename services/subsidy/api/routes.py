"""Finance routes: parse, ask the subsidy application, answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.common.errors import Invalid
from services.common.money import AmountError, parse_yuan
from services.common.tokens import Principal
from services.common.web.auth import require_roles
from services.subsidy.api import models as m
from services.subsidy.application import DEFAULT_LIMIT, MAX_LIMIT, Subsidy

router = APIRouter(prefix="/v1")

Reader = Annotated[Principal, Depends(require_roles("finance", "auditor"))]
Year = Annotated[int, Query(ge=1900, le=9999, description="Turnover year (the year money arrived)")]
_READ: dict[int | str, dict[str, Any]] = {
    401: {"model": m.ErrorPublic},
    403: {"model": m.ErrorPublic},
    404: {"model": m.ErrorPublic},
    422: {"model": m.ErrorPublic},
}


def subsidy(request: Request) -> Subsidy:
    app: Subsidy = request.app.state.subsidy
    return app


def _amount(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return 0 if value in ("0", "0.00") else parse_yuan(value)
    except AmountError as exc:
        raise Invalid(name, str(exc)) from None


def _instant(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid(
            name, "must be an ISO 8601 instant with a time zone, e.g. 2025-03-31T00:00:00+08:00"
        )
    return value


@router.get("/entitlements", response_model=m.EntitlementsPage, responses=_READ)
def list_entitlements(
    request: Request,
    who: Reader,
    year: Year,
    category: Literal["absorption", "output", "broker"] | None = None,
    as_of: Annotated[
        datetime | None,
        Query(
            description="As known at this instant: the log up to its last entry recorded then",
            examples=["2025-03-31T23:59:59+08:00"],
        ),
    ] = None,
    position: Annotated[
        int | None,
        Query(ge=0, le=2**63 - 1, description="As known at this log position (not with as_of)"),
    ] = None,
    county: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{6}$",
            description="Only beneficiaries of this GB/T 2260 region code (县市区), e.g. 410411",
        ),
    ] = None,
    min_amount: Annotated[
        str | None,
        Query(
            description="Only entitlements of at least this many yuan, e.g. 10000.00",
            examples=["10000.00"],
        ),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=600, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Entitlements per page (at most 10,000)")
    ] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """A page of a turnover year's entitlements, explained, with the year's totals by category
    (of the county, when one is given); ``as_of`` or ``position`` answers as known then."""
    return subsidy(request).entitlements(
        year,
        category,
        _instant("as_of", as_of),
        position=position,
        county=county,
        min_fen=_amount("min_amount", min_amount),
        cursor=cursor,
        limit=limit,
    )


@router.get("/entitlements.csv", responses=_READ, response_class=Response)
def entitlements_csv(request: Request, who: Reader, year: Year) -> Response:
    """The year's entitlements as CSV (UTF-8 with BOM, amounts in yuan) for spreadsheets."""
    body = subsidy(request).csv(year)
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="entitlements-{year}.csv"'},
    )


@router.get("/entitlements/{beneficiary}", response_model=m.EntitlementsPublic, responses=_READ)
def beneficiary_entitlements(
    request: Request, beneficiary: str, who: Reader, year: Year
) -> dict[str, Any]:
    """One beneficiary's entitlements (credit code or broker id), each explained."""
    return subsidy(request).beneficiary(beneficiary, year)


@router.get("/revisions", response_model=m.RevisionsPublic, responses=_READ)
def revisions(
    request: Request,
    who: Reader,
    year: Year,
    since: Annotated[datetime, Query(description="Show what changed after this instant")],
) -> dict[str, Any]:
    """Entitlements changed after ``since`` (e.g. the payout): before, after, and why."""
    moment = _instant("since", since)
    assert moment is not None
    return subsidy(request).revisions(year, moment)


@router.get("/health", response_model=m.HealthPublic)
def health(request: Request) -> dict[str, Any]:
    """How far the entitlements reach in the registry log; needs no token."""
    return subsidy(request).health()
