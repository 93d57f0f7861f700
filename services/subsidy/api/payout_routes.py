"""Finance routes about payouts: balances, the draft that settles them, the payouts recorded."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.common.policy.model import Category
from services.common.web.openapi import refusals
from services.subsidy.api import payout_models as m
from services.subsidy.api.routes import Reader, Year
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
    """A page of a turnover year's balances (余额): entitled now, paid, recovered, outstanding
    (positive 补拨, negative 追回), the payouts and the events since the last one."""
    return balances(request).balances(
        year, category=category, beneficiary=beneficiary, county=county, cursor=cursor, limit=limit
    )


@router.get("/payouts/draft", response_model=m.PayoutDraftPublic, responses=_READ)
def payout_draft(request: Request, who: Reader, year: Year) -> dict[str, Any]:
    """The payout draft (兑付草稿): lines settling every non-zero outstanding amount now."""
    return balances(request).draft(year)


@router.get("/payouts", response_model=m.PayoutsPublic, responses=_READ)
def list_payouts(request: Request, who: Reader, year: Year) -> dict[str, Any]:
    """The payouts of a turnover year recorded in the registry's log (兑付记录)."""
    return balances(request).recorded(year)
