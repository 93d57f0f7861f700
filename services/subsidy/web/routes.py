"""The finance page's routes: sign in and out, a year, a beneficiary, the payout draft.

Each reads the session cookie, asks the finance application in-process, and renders HTML;
refusals are pages in Chinese and English, never JSON. Forms are urlencoded, parsed here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from services.common.errors import DomainError
from services.common.instants import BEIJING
from services.common.money import AmountError, parse_yuan
from services.common.policy.model import ALL_CATEGORIES
from services.common.tokens import Principal, TokenBook
from services.common.web.refusals import refusal
from services.common.web.session import (
    COOKIE,
    PRE_COOKIE,
    Session,
    Sessions,
    signed_in,
    signed_out,
    with_pre_session,
)
from services.subsidy import balance_exports
from services.subsidy.api.routes import XLSX, attachment
from services.subsidy.application import Subsidy
from services.subsidy.balances import Balances
from services.subsidy.web import approval
from services.subsidy.web.render import render

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (50, 100, 500)  # offered; any count from 1 to MAX_ROWS is accepted
PAGE_SIZE = 50
# The orders the year's entitlements are offered in, each applied before paging.
SORTS = {
    "category": ("类别、受益方", "category, beneficiary"),
    "-entitlement": ("补贴额从高到低", "largest entitlement first"),
    "entitlement": ("补贴额从低到高", "smallest entitlement first"),
    "county": ("县市区", "county"),
}
MAX_ROWS = 1000
MAX_FORM_BYTES = 16 * 1024


def _subsidy(request: Request) -> Subsidy:
    app: Subsidy = request.app.state.subsidy
    return app


def _balances(request: Request) -> Balances:
    balances: Balances = request.app.state.balances
    return balances


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def _officer(request: Request) -> tuple[Session, Principal] | None:
    """The signed-in finance officer, or None. The token is looked up on every request, so a
    principal removed from the tokens file is signed out at once."""
    session = _sessions(request).open(request.cookies.get(COOKIE))
    if session is None:
        return None
    book: TokenBook = request.app.state.tokens
    principal = book.holder(session.token)
    if principal is None or principal.role != "finance":
        return None
    return session, principal


def _to_sign_in() -> Response:
    return RedirectResponse("/", status_code=303)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _refused(request: Request, who: Any, error: DomainError) -> Response:
    status, body = refusal(error)
    return render(request, "refused.html", who, status=status, error=body)


def _forbidden_form(request: Request, who: Any) -> Response:
    """A POST that did not come from one of the page's own forms."""
    error = {
        "message_zh": "表单已失效或来源不明，请重新打开页面后再提交",
        "message": "The form is stale or did not come from this page: reload it and try again",
    }
    return render(request, "refused.html", who, status=403, error=error)


# -- signing in and out -------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    """The sign-in form, or the years in force for a signed-in officer."""
    who = _officer(request)
    if who is None:
        return _sign_in_form(request)
    schedule = _subsidy(request).schedule
    years = range(schedule.last_year, schedule.first_year - 1, -1)
    return render(request, "home.html", who, years=years)


def _sign_in_form(
    request: Request, *, status: int = 200, problem: dict[str, str] | None = None
) -> Response:
    """The sign-in form with its CSRF token, bound to the browser's pre-session cookie (set
    here when it has none)."""
    pre = request.cookies.get(PRE_COOKIE) or Sessions.pre_session()
    response = render(
        request, "sign_in.html", None, status=status, problem=problem,
        sign_in_csrf=_sessions(request).sign_in_csrf(pre),
    )  # fmt: skip
    return with_pre_session(request, response, pre, PRE_COOKIE)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Exchange a finance token for a session cookie (HttpOnly, SameSite=Strict); the form's
    CSRF token must match the browser's pre-session cookie."""
    form = await _form(request)
    if not _sessions(request).sign_in_allowed(request.cookies.get(PRE_COOKIE), form.get("csrf")):
        return _forbidden_form(request, None)
    token = form.get("token", "").strip()
    book: TokenBook = request.app.state.tokens
    principal = book.holder(token) if token else None
    if principal is None or principal.role != "finance":
        problem = (
            ("令牌无效，请检查后重新输入", "This token is not known", 401)
            if principal is None
            else (
                "此令牌不属于财务人员，无权使用本页面",
                "This token is not a finance officer's",
                403,
            )
        )
        return _sign_in_form(
            request, status=problem[2], problem={"message_zh": problem[0], "message": problem[1]}
        )
    cookie, _ = _sessions(request).seal(token)
    return signed_in(request, cookie, COOKIE, PRE_COOKIE)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session (the form's CSRF secret required)."""
    who = _officer(request)
    if who is None:
        return _to_sign_in()
    if not who[0].csrf_matches((await _form(request)).get("csrf")):
        return _forbidden_form(request, who)
    return signed_out(COOKIE)


# -- a year ---------------------------------------------------------------------------------------


@router.get("/years/{year}")
def year_screen(
    request: Request,
    year: int,
    category: str = "",
    county: str = "",
    min_amount: str = "",
    rows: str = str(PAGE_SIZE),
    sort: str = "category",
    cursor: str = "",
    before: str = "",
    balances_after: str = "",
) -> Response:
    """A year's entitlements and balances, with totals by category and by county, a page of
    ``rows`` at a time: entitlements in ``sort`` order (after ``cursor``, or before
    ``before``), balances in key order (after ``balances_after``)."""
    who = _officer(request)
    if who is None:
        return _to_sign_in()
    filters = {"category": category, "county": county, "min_amount": min_amount, "rows": rows,
               "sort": sort}  # fmt: skip
    problems = _filter_problems(category, county, min_amount, rows, sort)
    if problems:
        return render(
            request, "year.html", who, status=422, year=year, filters=filters, problems=problems,
            page_sizes=PAGE_SIZES, sorts=SORTS,
        )  # fmt: skip
    subsidy = _subsidy(request)
    try:
        answer = subsidy.entitlements(
            year,
            category or None,
            county=county or None,
            min_fen=_min_fen(min_amount),
            sort=sort,
            cursor=cursor or None,
            before=before or None,
            limit=int(rows),
        )
        counties = subsidy.county_totals(year)
        balances = _balances(request).balances(
            year, category=category or None, county=county or None,
            cursor=balances_after or None, limit=int(rows),
        )  # fmt: skip
    except DomainError as error:
        return _refused(request, who, error)
    here = f"/years/{year}?"
    next_cursor, previous_cursor = answer["next_cursor"], answer["previous_cursor"]
    return render(
        request,
        "year.html",
        who,
        year=year,
        filters=filters,
        page_sizes=sorted({*PAGE_SIZES, int(rows)}),
        answer=answer,
        counties=counties["counties"],
        balances=balances,
        sorts=SORTS,
        sorted_by={s: here + urlencode({**filters, "sort": s}) for s in SORTS},
        next_page=here + urlencode({**filters, "cursor": next_cursor}) if next_cursor else None,
        previous_page=(
            here + urlencode({**filters, "before": previous_cursor}) if previous_cursor else None
        ),
        first_page=here + urlencode(filters) if previous_cursor else None,
        balances_next=(
            here + urlencode({**filters, "balances_after": balances["next_cursor"]}) + "#balances"
            if balances["next_cursor"]
            else None
        ),
        balances_first=here + urlencode(filters) + "#balances" if balances_after else None,
    )


def _filter_problems(
    category: str, county: str, min_amount: str, rows: str, sort: str
) -> list[dict[str, str]]:
    problems = []
    if sort not in SORTS:
        problems.append(
            {"field": "sort", "message_zh": "排序须为列表中的一项",
             "message": "must be one of the orders listed"}
        )  # fmt: skip
    if not (rows.isdigit() and 1 <= int(rows) <= MAX_ROWS):
        problems.append(
            {"field": "rows", "message_zh": f"每页行数须为 1 至 {MAX_ROWS} 的整数",
             "message": f"must be a whole number from 1 to {MAX_ROWS}"}
        )  # fmt: skip
    if category and category not in ALL_CATEGORIES:
        problems.append(
            {"field": "category", "message_zh": "类别须为列表中的一项",
             "message": "must be one of the categories listed"}
        )  # fmt: skip
    if county and not (len(county) == 6 and county.isdigit()):
        problems.append(
            {"field": "county", "message_zh": "县市区代码须为 6 位数字，如 410402",
             "message": "must be a 6-digit region code, e.g. 410402"}
        )  # fmt: skip
    if min_amount:
        try:
            _min_fen(min_amount)
        except AmountError:
            problems.append(
                {"field": "min_amount", "message_zh": "最低金额须为最多两位小数的元金额",
                 "message": "must be yuan with at most 2 decimals, e.g. 10000.00"}
            )  # fmt: skip
    return problems


def _min_fen(min_amount: str) -> int | None:
    if not min_amount:
        return None
    return 0 if min_amount.strip("0.") == "" else parse_yuan(min_amount.replace(",", ""))


# -- a beneficiary -------------------------------------------------------------------------------


@router.get("/years/{year}/beneficiaries/{beneficiary}")
def beneficiary_screen(request: Request, year: int, beneficiary: str) -> Response:
    """One beneficiary: every contract behind each category, rate, cap, balances, revisions."""
    who = _officer(request)
    if who is None:
        return _to_sign_in()
    subsidy = _subsidy(request)
    try:
        answer = subsidy.beneficiary(beneficiary, year)
        balances = _balances(request).balances(year, beneficiary=beneficiary)
    except DomainError as error:
        return _refused(request, who, error)
    rules = subsidy.schedule.for_year(year).categories
    return render(
        request,
        "beneficiary.html",
        who,
        year=year,
        beneficiary=beneficiary,
        answer=answer,
        balances=balances,
        rules=rules,
    )


# -- the payout draft, its approval, the receipt ------------------------------------------------


@router.get("/years/{year}/payouts/draft")
def draft_screen(request: Request, year: int) -> Response:
    """The lines that would settle every outstanding amount now, with the approval form."""
    who = _officer(request)
    if who is None:
        return _to_sign_in()
    return _draft(request, who, year, {})


def _draft(
    request: Request, who: tuple[Session, Principal], year: int, entered: dict[str, str],
    *, status: int = 200, problem: dict[str, Any] | None = None,
) -> Response:  # fmt: skip
    try:
        draft = _balances(request).draft(year)
    except DomainError as error:
        return _refused(request, who, error)
    today = datetime.now(BEIJING).date().isoformat()
    form = {
        "payout_no": entered.get("payout_no", ""),
        "paid_on": entered.get("paid_on", today),
        "key": entered.get("key") or str(uuid.uuid4()),
    }
    return render(
        request, "draft.html", who, status=status, year=year, draft=draft, form=form,
        problem=problem,
    )  # fmt: skip


@router.post("/years/{year}/payouts")
async def approve(request: Request, year: int) -> Response:
    """Approve the draft: post it to the registry as the officer, then show the receipt."""
    who = _officer(request)
    if who is None:
        return _to_sign_in()
    entered = await _form(request)
    if not who[0].csrf_matches(entered.get("csrf")):
        return _forbidden_form(request, who)
    return await run_in_threadpool(_approve, request, who, year, entered)


def _approve(
    request: Request, who: tuple[Session, Principal], year: int, entered: dict[str, str]
) -> Response:
    try:
        draft = _balances(request).draft(year)
    except DomainError as error:
        return _refused(request, who, error)
    if str(draft["basis_position"]) != entered.get("basis_position"):
        problem = {
            "message_zh": f"草稿已随登记日志更新（位置 {entered.get('basis_position')} → "
            f"{draft['basis_position']}），请核对后重新批准",
            "message": "The draft changed since it was opened: check it and approve again",
        }
        return _draft(request, who, year, entered, status=409, problem=problem)
    payout = {
        "payout_no": entered.get("payout_no", "").strip(),
        "year": year,
        "paid_on": entered.get("paid_on", ""),
        "basis_position": draft["basis_position"],
        "lines": [
            {k: line[k] for k in ("beneficiary", "category", "amount", "kind")}
            for line in draft["lines"]
        ],
    }
    registry_url: str = request.app.state.registry_url
    answer = approval.approve(registry_url, who[0].token, payout, entered.get("key", ""))
    if not answer.recorded:
        return _draft(request, who, year, entered, status=answer.status, problem=answer.body)
    return render(
        request, "receipt.html", who, status=201, year=year, payout=payout, draft=draft,
        receipt=answer.body,
    )  # fmt: skip


# -- downloads -----------------------------------------------------------------------------------


@router.get("/years/{year}/entitlements.{extension}")
def download(request: Request, year: int, extension: str) -> Response:
    """The year's entitlements as the API exports them, XLSX or CSV, for a signed-in officer
    (the API wants a bearer token, which a browser's link cannot send)."""
    who = _officer(request)
    if who is None:
        return _to_sign_in()
    subsidy = _subsidy(request)
    try:
        if extension == "xlsx":
            chunks, media = subsidy.xlsx(year), XLSX
        elif extension == "csv":
            chunks, media = subsidy.csv(year), "text/csv; charset=utf-8"
        else:
            error = {"message_zh": "只提供 xlsx 与 csv", "message": f"{extension}: not offered"}
            return render(request, "refused.html", who, status=404, error=error)
    except DomainError as error:
        return _refused(request, who, error)
    headers = attachment(f"entitlements-{year}.{extension}", year)
    return StreamingResponse(chunks, media_type=media, headers=headers)


@router.get("/years/{year}/balances.{extension}")
def download_balances(request: Request, year: int, extension: str) -> Response:
    """The year's balances as the API exports them, XLSX or CSV, for a signed-in officer."""
    who = _officer(request)
    if who is None:
        return _to_sign_in()
    if extension not in ("xlsx", "csv"):
        error = {"message_zh": "只提供 xlsx 与 csv", "message": f"{extension}: not offered"}
        return render(request, "refused.html", who, status=404, error=error)
    try:
        export = _balances(request).export(year)
    except DomainError as error:
        return _refused(request, who, error)
    if extension == "xlsx":
        chunks, media = balance_exports.xlsx_chunks(export), XLSX
    else:
        chunks, media = balance_exports.csv_chunks(export, "balances"), "text/csv; charset=utf-8"
    headers = attachment(f"balances-{year}.{extension}", year)
    return StreamingResponse(chunks, media_type=media, headers=headers)
