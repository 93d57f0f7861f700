"""``GET /v1/contracts``: a station's own contracts (every station's for the bureau), searched,
filtered and paged, newest registration first."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from services.common.tokens import Principal
from services.common.web.auth import authenticate
from services.common.web.fields import about
from services.registry.application import Registry
from services.registry.listing import DEFAULT_LIMIT, MAX_LIMIT, ListingQuery
from services.registry.visibility import station_scope

router = APIRouter()

_CURSOR = "WyIyMDI0LTAzLTAxIiwiMjAyNDQxMDQwMDAwMDAwMSJd"


class PartySummary(BaseModel):
    """当事方 A party as the listing shows it."""

    name: str = about("名称 Registered name", "平顶山学院")
    credit_code: str = about("统一社会信用代码 Unified social credit code", "12410000MB0000000X")


class ContractSummaryPublic(BaseModel):
    """合同摘要 One contract as the listing shows it."""

    registration_no: str = about("登记号 Registration number", "2024410400000001")
    station_id: str = about("登记机构 The station it is registered under", "S0001")
    registered_on: str = about("登记日期 Registration date", "2024-03-01")
    signed_on: str = about("签订日期 Signing date", "2024-02-20")
    title: str = about("合同名称 Contract title", "煤矿智能巡检机器人技术开发")
    contract_type: str = about("合同类型 Contract type", "development")
    seller: PartySummary = Field(description="卖方 Seller")
    buyer: PartySummary = Field(description="买方 Buyer")
    contract_amount: str = about("合同成交额（元） Contract amount in yuan", "1200000.00")
    technology_amount: str = about("技术交易额（元） Technology amount in yuan", "1000000.00")
    status: Literal["active", "cancelled"] = about(
        "状态 active (有效) or cancelled (已注销)", "active"
    )
    invoiced_total: str = about("已开票（元） Invoices not voided, in yuan", "600000.00")
    paid_total: str = about("已付款（元） Transfer proofs not withdrawn, in yuan", "600000.00")
    invoices: int = about("发票数 Invoices not voided", 1)
    transfer_proofs: int = about("转账凭证数 Transfer proofs not withdrawn", 1)


class ContractPagePublic(BaseModel):
    """合同列表 A page of the listing, newest registration first."""

    contracts: list[ContractSummaryPublic] = Field(description="合同 The page's contracts")
    next_cursor: str | None = about(
        "下一页 Pass as ``cursor`` for the next page; null on the last page", _CURSOR
    )


def _text(description: str, example: str, max_length: int = 128) -> Any:
    return Query(max_length=max_length, description=description, examples=[example])


def _day(description: str, example: str) -> Any:
    # Checked by ListingQuery, whose refusal says what a date is, in Chinese too.
    return Query(description=description, examples=[example], json_schema_extra={"format": "date"})


@router.get("/contracts", response_model=ContractPagePublic)
def list_contracts(
    request: Request,
    who: Annotated[Principal, Depends(authenticate)],
    station: Annotated[
        str | None,
        _text("登记机构 Only this station's contracts (a station sees only its own)", "S0001"),
    ] = None,
    party: Annotated[
        str | None,
        _text("当事方 Only contracts with this seller or buyer credit code", "12410000MB0000000X"),
    ] = None,
    status: Annotated[
        Literal["active", "cancelled"] | None,
        Query(description="状态 active (有效) or cancelled (已注销)", examples=["active"]),
    ] = None,
    registered_from: Annotated[
        str | None, _day("登记日期起 Registered on or after (YYYY-MM-DD)", "2024-01-01")
    ] = None,
    registered_to: Annotated[
        str | None, _day("登记日期止 Registered on or before (YYYY-MM-DD)", "2024-12-31")
    ] = None,
    q: Annotated[
        str | None,
        _text(
            "关键词 Part of a registration number, title or party name (case aside)",
            "巡检机器人",
            max_length=200,
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1, le=MAX_LIMIT, description="条数 Contracts per page (at most 500)", examples=[50]
        ),
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, _text("游标 next_cursor of the previous page", _CURSOR, max_length=600)
    ] = None,
) -> dict[str, Any]:
    """A page of contracts, newest registration first: search with ``q``, filter, and page on
    with ``cursor=next_cursor``. A station reads only its own (another station's id: empty)."""
    query = ListingQuery.parse(
        station=station,
        party=party,
        status=status,
        registered_from=registered_from,
        registered_to=registered_to,
        q=q,
        limit=limit,
        cursor=cursor,
    )
    app: Registry = request.app.state.registry
    return app.contracts(query.within(station_scope(who)))
