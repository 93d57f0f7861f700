"""Finance routes: parse, ask the subsidy application, answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.common.errors import Invalid
from services.common.money import POSITIVE_YUAN_PATTERN, AmountError, parse_yuan
from services.common.tokens import Principal
from services.common.web.auth import require_roles
from services.common.web.openapi import refusals
from services.common.web.params import MAX_POSITION, optional_instant, required_instant
from services.subsidy.api import models as m
from services.subsidy.application import (
    DEFAULT_LIMIT,
    DEFAULT_REVISIONS_LIMIT,
    MAX_LIMIT,
    Subsidy,
)

router = APIRouter(prefix="/v1")

Reader = Annotated[Principal, Depends(require_roles("finance", "auditor"))]
Year = Annotated[
    int,
    Query(
        ge=1900,
        le=9999,
        description="年度 Turnover year (the year money arrived); a year the policy is not in "
        "force for is a 404",
    ),
]
# 401, 422 and 503 are added to every operation by the document itself.
_READ = refusals(403, 404)


def subsidy(request: Request) -> Subsidy:
    app: Subsidy = request.app.state.subsidy
    return app


def _amount(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return 0 if value in ("0", "0.00") else parse_yuan(value)
    except AmountError as exc:
        raise Invalid(name, str(exc), "须为 0 或最多两位小数的正数元金额，如 10000.00") from None


AsOf = Annotated[
    datetime | None,
    Depends(
        optional_instant(
            "as_of",
            "As known at this instant (a date alone: the end of that day, Beijing time): "
            "the log up to its last entry recorded then",
        )
    ),
]
Position = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_POSITION,
        description="As known at this log position (not with as_of); at most the applied "
        "position, /v1/health's applied_position (a 422 beyond it)",
    ),
]
MinAmount = Annotated[
    str | None,
    Query(
        description="最低金额 Only entitlements of at least this many yuan (0, or positive "
        "with at most 2 decimals)",
        examples=["10000.00"],
        json_schema_extra={"pattern": f"^(0|0\\.00|{POSITIVE_YUAN_PATTERN[1:-1]})$"},
    ),
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/entitlements", response_model=m.EntitlementsPage, responses=_READ)
def list_entitlements(
    request: Request,
    who: Reader,
    year: Year,
    as_of: AsOf,
    category: Literal["absorption", "output", "broker", "one_time"] | None = None,
    position: Position = None,
    county: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{6}$",
            description="Only beneficiaries of this GB/T 2260 region code (县市区), e.g. 410411",
        ),
    ] = None,
    min_amount: MinAmount = None,
    sort: Annotated[
        Literal["category", "-entitlement", "entitlement", "county"],
        Query(
            description="排序 category: by category, then beneficiary (the default); "
            "-entitlement: largest entitlement first; entitlement: smallest first; county: by "
            "region code. Applied before paging: cursors are for one order"
        ),
    ] = "category",
    cursor: Annotated[
        str | None,
        Query(max_length=600, description="下一页 next_cursor of the previous page, as it came"),
    ] = None,
    before: Annotated[
        str | None,
        Query(
            max_length=600,
            description="上一页 previous_cursor of a page: the page before it (not with cursor)",
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Entitlements per page (at most 10,000)")
    ] = DEFAULT_LIMIT,
    include: Annotated[
        Literal["claims"] | None,
        Query(
            description="合同明细 claims: each entitlement with the contracts counted and left "
            "out (up to 20 times the bytes); without it, their count only. One beneficiary's "
            "explanation, term by term, is GET /v1/entitlements/{beneficiary}"
        ),
    ] = None,
) -> dict[str, Any]:
    """A page of a turnover year's entitlements with the year's totals by category (of the
    county, when one is given), in ``sort`` order; ``include=claims`` adds the contracts
    behind each; ``as_of`` or ``position`` answers as known then."""
    return subsidy(request).entitlements(
        year,
        category,
        as_of,
        position=position,
        county=county,
        min_fen=_amount("min_amount", min_amount),
        sort=sort,
        cursor=cursor,
        before=before,
        limit=limit,
        claims=include == "claims",
    )


@router.get(
    "/entitlements.xlsx",
    responses={**_READ, 200: {"content": {XLSX: {}}, "description": "The workbook"}},
    response_class=StreamingResponse,
)
def entitlements_xlsx(
    request: Request,
    who: Reader,
    year: Year,
    as_of: AsOf,
    position: Position = None,
    min_amount: MinAmount = None,
) -> StreamingResponse:
    """The year's entitlements for Excel: sheet 1 one row per beneficiary and category with
    totals rows, sheet 2 every contract counted or excluded; Chinese headers over English;
    ``as_of`` or ``position`` answers as known then, ``min_amount`` leaves out smaller
    entitlements (the totals stay the year's)."""
    chunks = subsidy(request).xlsx(year, as_of, position, _amount("min_amount", min_amount))
    return StreamingResponse(
        chunks, media_type=XLSX, headers=attachment(f"entitlements-{year}.xlsx", year)
    )


@router.get(
    "/entitlements.csv",
    responses={**_READ, 200: {"content": {"text/csv": {}}, "description": "The sheet as CSV"}},
    response_class=StreamingResponse,
)
def entitlements_csv(
    request: Request,
    who: Reader,
    year: Year,
    as_of: AsOf,
    position: Position = None,
    min_amount: MinAmount = None,
    sheet: Annotated[
        Literal["entitlements", "contracts"],
        Query(
            description="表 entitlements: one row per beneficiary and category, with totals; "
            "contracts: one row per contract counted or excluded"
        ),
    ] = "entitlements",
) -> StreamingResponse:
    """One sheet of the workbook as CSV (UTF-8 with BOM, Chinese headers over English, amounts
    in yuan); ``as_of`` or ``position`` answers as known then."""
    chunks = subsidy(request).csv(
        year, as_of, position, _amount("min_amount", min_amount), sheet=sheet
    )
    suffix = "" if sheet == "entitlements" else "-contracts"
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers=attachment(f"entitlements-{year}{suffix}.csv", year),
    )


_FILE_ZH = {
    "entitlements": "补助",
    "contracts": "合同明细",
    "balances": "余额",
    "payouts": "兑付明细",
}


def attachment(filename: str, year: int) -> dict[str, str]:
    """Content-Disposition naming the file in ASCII, and in Chinese for browsers that read
    RFC 5987's ``filename*``."""
    stem, extension = filename.split(".", 1)
    words = stem.split("-")  # what, year[, which sheet]
    chinese = quote(
        f"技术转移{_FILE_ZH[words[-1] if len(words) > 2 else words[0]]}-{year}年度.{extension}"
    )
    return {
        "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{chinese}"
    }


@router.get("/entitlements/{beneficiary}", response_model=m.BeneficiaryPublic, responses=_READ)
def beneficiary_entitlements(
    request: Request,
    beneficiary: Annotated[
        str,
        Path(
            description="受益方 A credit code (buyer or seller) or a broker id",
            examples=["91410403MA00000028"],
        ),
    ],
    who: Reader,
    year: Year,
) -> dict[str, Any]:
    """One beneficiary's entitlements (credit code or broker id), each explained contract by
    contract: paid, invoiced, ceiling, evidenced, brokers' shares, reasons; rate and cap."""
    return subsidy(request).beneficiary(beneficiary, year)


@router.get("/revisions", response_model=m.RevisionsPublic, responses=_READ)
def revisions(
    request: Request,
    who: Reader,
    year: Year,
    since: Annotated[
        datetime,
        Depends(
            required_instant(
                "since", "Show what changed after this instant (a date: after that day, Beijing)"
            )
        ),
    ],
    cursor: Annotated[
        str | None, Query(max_length=600, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Revisions per page (at most 10,000)")
    ] = DEFAULT_REVISIONS_LIMIT,
    include: Annotated[
        Literal["claims"] | None,
        Query(
            description="claims: before and after list every contract behind them (larger)",
            examples=["claims"],
        ),
    ] = None,
) -> Response:
    """Entitlements changed after ``since`` (e.g. the payout), a page at a time: before,
    after, the contracts whose part changed, and the events about them since."""
    page = subsidy(request).revisions(
        year, since, cursor=cursor, limit=limit, claims=include == "claims"
    )
    # Written by orjson, not validated again by the model, which still documents it (a test
    # holds the answers to it): a page of 1,000 revisions at 1M events, 2 MB with 9,369
    # events, took 141-173 ms through the model and takes 7-12 ms here.
    return Response(orjson.dumps(page), media_type="application/json")


@router.get("/health", response_model=m.HealthPublic)
def health(request: Request) -> dict[str, Any]:
    """How far the entitlements reach in the registry log; needs no token."""
    return subsidy(request).health()
