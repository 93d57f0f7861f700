"""Finance routes about payouts: balances, the draft that settles them, the payouts recorded."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from services.common.policy.model import Category
from services.common.web.openapi import refusals
from services.subsidy import balance_exports
from services.subsidy.api import payout_models as m
from services.subsidy.api.routes import XLSX, AsOf, Position, Reader, Year, attachment
from services.subsidy.application import DEFAULT_LIMIT, MAX_LIMIT
from services.subsidy.balances import Balances

router = APIRouter(prefix="/v1")

_READ = refusals(403, 404)


def balances(request: Request) -> Balances:
    app: Balances = request.app.state.balances
    return app


@router.get("/balances", response_model=m.BalancesPage, responses=_READ)
def list_balances(
    request: Request,
    who: Reader,
    year: Year,
    as_of: AsOf,
    position: Position = None,
    category: Category | None = None,
    beneficiary: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            description="受益方 Only this credit code or broker id",
            examples=["91410403MA00000028"],
        ),
    ] = None,
    county: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{6}$", description="县市区 Only this GB/T 2260 region code"),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=600, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Balances per page (at most 10,000)")
    ] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """A page of a turnover year's balances (余额): entitled, paid, recovered, outstanding
    (positive 补拨, negative 追回), the payouts and the events since the last one; now, or
    with ``as_of`` or ``position`` as known then (only the payouts recorded up to it)."""
    return balances(request).balances(
        year,
        as_of=as_of,
        position=position,
        category=category,
        beneficiary=beneficiary,
        county=county,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/balances.xlsx",
    responses={**_READ, 200: {"content": {XLSX: {}}, "description": "The workbook"}},
    response_class=StreamingResponse,
)
def balances_xlsx(
    request: Request, who: Reader, year: Year, as_of: AsOf, position: Position = None
) -> StreamingResponse:
    """The year's balances (余额) for Excel: sheet 1 one row per beneficiary and category
    (entitled, paid, recovered, outstanding) with totals rows, sheet 2 every payout line
    behind them; Chinese headers over English; ``as_of`` or ``position`` answers as known
    then, each row stating the position."""
    chunks = balance_exports.xlsx_chunks(balances(request).export(year, as_of, position))
    return StreamingResponse(
        chunks, media_type=XLSX, headers=attachment(f"balances-{year}.xlsx", year)
    )


@router.get(
    "/balances.csv",
    responses={**_READ, 200: {"content": {"text/csv": {}}, "description": "The sheet as CSV"}},
    response_class=StreamingResponse,
)
def balances_csv(
    request: Request,
    who: Reader,
    year: Year,
    as_of: AsOf,
    position: Position = None,
    sheet: Annotated[
        Literal["balances", "payouts"],
        Query(
            description="表 balances: one row per beneficiary and category, with totals; "
            "payouts: one row per payout line"
        ),
    ] = "balances",
) -> StreamingResponse:
    """One sheet of the balances workbook as CSV (UTF-8 with BOM, Chinese headers over
    English, amounts in yuan); ``as_of`` or ``position`` answers as known then."""
    chunks = balance_exports.csv_chunks(balances(request).export(year, as_of, position), sheet)
    suffix = "" if sheet == "balances" else "-payouts"
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers=attachment(f"balances-{year}{suffix}.csv", year),
    )


@router.get("/payouts/draft", response_model=m.PayoutDraftPublic, responses=_READ)
def payout_draft(request: Request, who: Reader, year: Year) -> dict[str, Any]:
    """The payout draft (兑付草稿): lines settling every non-zero outstanding amount now."""
    return balances(request).draft(year)


@router.get("/payouts", response_model=m.PayoutsPublic, responses=_READ)
def list_payouts(request: Request, who: Reader, year: Year) -> dict[str, Any]:
    """The payouts of a turnover year recorded in the registry's log (兑付记录)."""
    return balances(request).recorded(year)
