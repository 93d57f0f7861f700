"""The station page's routes: sign in and out, my contracts, one contract, upload a
spreadsheet (dry run, then commit), the template.

Each reads the session cookie, asks the registry application in-process, and renders HTML;
refusals are pages in Chinese and English, never JSON. A station sees only its own contracts
(another's is "not found", as if it did not exist); the bureau sees every station's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from services.common.errors import DomainError, NotFound
from services.common.tokens import Principal, TokenBook
from services.common.web.refusals import refusal
from services.common.web.session import (
    Session,
    Sessions,
    signed_in,
    signed_out,
    with_pre_session,
)
from services.registry.application import Registry
from services.registry.imports import ImportReport, errors_workbook, run_import, template_xlsx
from services.registry.imports.reading import MAX_BYTES
from services.registry.listing import ListingQuery
from services.registry.visibility import station_scope
from services.registry.web.render import render
from services.registry.web.uploads import UploadSpool

router = APIRouter(include_in_schema=False)

# Not the finance page's cookie names: both pages may be served from one host, and a browser
# keeps a host's cookies whatever the port.
COOKIE = "tcr_station_session"
PRE_COOKIE = "tcr_station_pre_session"  # binds the sign-in form's CSRF token
PAGE_ROWS = 50
MAX_FORM_BYTES = 16 * 1024
MAX_BACK = 100  # pages remembered for "previous"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PAGE_ROLES = frozenset({"station", "bureau"})

Who = tuple[Session, Principal]


def _registry(request: Request) -> Registry:
    app: Registry = request.app.state.registry
    return app


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def _uploads(request: Request) -> UploadSpool:
    spool: UploadSpool = request.app.state.uploads
    return spool


def _clerk(request: Request) -> Who | None:
    """The signed-in station clerk (or bureau official), or None. The token is looked up on
    every request, so a principal removed from the tokens file is signed out at once."""
    session = _sessions(request).open(request.cookies.get(COOKIE))
    if session is None:
        return None
    book: TokenBook = request.app.state.tokens
    principal = book.holder(session.token)
    if principal is None or principal.role not in _PAGE_ROLES:
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


def _refused(request: Request, who: Who | None, error: DomainError) -> Response:
    status, body = refusal(error)
    return render(request, "refused.html", who, status=status, error=body)


def _not_found(request: Request, who: Who, registration_no: str) -> Response:
    # The same words whether it does not exist or is another station's: nothing leaks.
    error = NotFound(
        "registration_no",
        f"no contract registered as {registration_no}",
        f"没有登记号为 {registration_no} 的合同",
    )
    return _refused(request, who, error)


def _forbidden_form(request: Request, who: Who | None) -> Response:
    """A POST that did not come from one of the page's own forms."""
    error = {
        "message_zh": "表单已失效或来源不明，请重新打开页面后再提交",
        "message": "The form is stale or did not come from this page: reload it and try again",
    }
    return render(request, "refused.html", who, status=403, error=error)


# -- signing in and out -------------------------------------------------------------------------


def _sign_in_page(
    request: Request, *, status: int = 200, problem: dict[str, str] | None = None
) -> Response:
    """The sign-in form, its CSRF token bound to a pre-session cookie: a sign-in posted from
    anywhere else is refused, so no one can sign a clerk's browser in as someone else."""
    pre = request.cookies.get(PRE_COOKIE) or Sessions.pre_session()
    response = render(
        request, "sign_in.html", None, status=status, problem=problem,
        sign_in_csrf=_sessions(request).sign_in_csrf(pre),
    )  # fmt: skip
    return with_pre_session(request, response, pre, PRE_COOKIE)


@router.get("/")
def home(
    request: Request,
    q: str = "",
    status: str = "",
    party: str = "",
    station: str = "",
    registered_from: str = "",
    registered_to: str = "",
    rows: str = "",
    cursor: str = "",
    back: str = "",
) -> Response:
    """The sign-in form, or my contracts: searched, filtered, a page at a time."""
    who = _clerk(request)
    if who is None:
        return _sign_in_page(request)
    filters = {
        "q": q,
        "status": status,
        "party": party,
        "station": station,
        "registered_from": registered_from,
        "registered_to": registered_to,
        "rows": rows,
    }
    try:
        # A form's empty field is a filter not set.
        given = {k: v or None for k, v in filters.items() if k != "rows"}
        query = ListingQuery.parse(**given, limit=rows or PAGE_ROWS, cursor=cursor or None)
    except DomainError as error:
        _, body = refusal(error)
        return render(
            request, "contracts.html", who, status=422, filters=filters, problem=body,
            answer=None, pages={},
        )  # fmt: skip
    try:
        answer = _registry(request).contracts(query.within(station_scope(who[1])))
    except DomainError as error:
        return _refused(request, who, error)
    return render(
        request, "contracts.html", who, filters=filters, problem=None, answer=answer,
        pages=_pages(filters, cursor, back, answer["next_cursor"]),
    )  # fmt: skip


def _pages(
    filters: dict[str, str], cursor: str, back: str, next_cursor: str | None
) -> dict[str, Any]:
    """Links to the previous and next pages: ``back`` holds the cursors of the pages between
    the first and this one, so "previous" needs no query in reverse."""
    shown = {k: v for k, v in filters.items() if v}
    trail = back.split(".") if back and cursor else []  # the first page's is left out
    pages: dict[str, Any] = {"number": len(trail) + 2 if cursor else 1}
    if cursor:
        link = {**shown, "cursor": trail[-1] if trail else "", "back": ".".join(trail[:-1])}
        pages["previous"] = "/?" + urlencode({k: v for k, v in link.items() if v})
    if next_cursor:
        ahead = [*trail, cursor][-MAX_BACK:] if cursor else []
        link = {**shown, "cursor": next_cursor, "back": ".".join(ahead)}
        pages["next"] = "/?" + urlencode({k: v for k, v in link.items() if v})
    return pages


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Exchange a station (or bureau) token for a session cookie (HttpOnly, SameSite=Strict)."""
    form = await _form(request)
    if not _sessions(request).sign_in_allowed(request.cookies.get(PRE_COOKIE), form.get("csrf")):
        problem = {
            "message_zh": "登录表单已失效，请重新输入令牌",
            "message": "The sign-in form was stale or not this page's: enter the token again",
        }
        return _sign_in_page(request, status=403, problem=problem)
    token = form.get("token", "").strip()
    book: TokenBook = request.app.state.tokens
    principal = book.holder(token) if token else None
    if principal is None or principal.role not in _PAGE_ROLES:
        problem = (
            {"message_zh": "令牌无效，请检查后重新输入", "message": "This token is not known"}
            if principal is None
            else {
                "message_zh": "此令牌不属于登记机构或科技局，无权使用本页面",
                "message": "This token is not a registration station's or the bureau's",
            }
        )
        return _sign_in_page(request, status=401 if principal is None else 403, problem=problem)
    cookie, _ = _sessions(request).seal(token)
    return signed_in(request, cookie, COOKIE, PRE_COOKIE)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session (the form's CSRF secret required)."""
    who = _clerk(request)
    if who is None:
        return _to_sign_in()
    if not who[0].csrf_matches((await _form(request)).get("csrf")):
        return _forbidden_form(request, who)
    return signed_out(COOKIE)


# -- one contract --------------------------------------------------------------------------------


@router.get("/contracts/{registration_no}")
def contract_screen(request: Request, registration_no: str) -> Response:
    """One contract: parties, amounts, invoices, transfer proofs and its history in the log."""
    who = _clerk(request)
    if who is None:
        return _to_sign_in()
    registry = _registry(request)
    try:
        # Another station's contract is refused as one not registered.
        contract = registry.contract(registration_no, who[1])
        history = registry.history(registration_no)
    except NotFound:
        return _not_found(request, who, registration_no)
    except DomainError as error:
        return _refused(request, who, error)
    return render(request, "contract.html", who, contract=contract, history=history)


# -- uploads -------------------------------------------------------------------------------------


@router.get("/upload")
def upload_screen(request: Request) -> Response:
    """The upload form, and the template to fill in."""
    who = _clerk(request)
    if who is None:
        return _to_sign_in()
    return render(request, "upload.html", who, problem=None)


@router.post("/upload")
async def upload(request: Request) -> Response:
    """Check an uploaded spreadsheet (a dry run: nothing is stored) and show every problem."""
    who = _clerk(request)
    if who is None:
        return _to_sign_in()
    form = await request.form(max_files=1, max_fields=4)
    try:
        csrf = form.get("csrf")
        if not who[0].csrf_matches(csrf if isinstance(csrf, str) else None):
            return _forbidden_form(request, who)
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            problem = {"message_zh": "请选择要上传的文件", "message": "Choose a file to upload"}
            return render(request, "upload.html", who, status=422, problem=problem)
        data = await file.read(MAX_BYTES + 1)
        filename = file.filename
    finally:
        await form.close()
    try:
        report = await run_in_threadpool(
            run_import, _registry(request), who[1], data, filename=filename
        )
    except DomainError as error:
        status, body = refusal(error)
        return render(request, "upload.html", who, status=status, problem=body)
    upload_id = await run_in_threadpool(_uploads(request).keep, who[1].name, filename, data)
    return _report_page(request, who, report, upload_id, filename)


def _report_page(
    request: Request, who: Who, report: ImportReport, upload_id: str, filename: str,
    *, status: int = 200,
) -> Response:  # fmt: skip
    return render(
        request, "report.html", who, status=status, report=report, upload_id=upload_id,
        filename=filename,
    )  # fmt: skip


@router.get("/upload/{upload_id}/errors.xlsx")
def upload_errors(request: Request, upload_id: str) -> Response:
    """The uploaded workbook with every bad cell marked and commented."""
    who = _clerk(request)
    if who is None:
        return _to_sign_in()
    kept = _uploads(request).take(upload_id, who[1].name)
    if kept is None:
        return _upload_gone(request, who)
    try:
        report = run_import(_registry(request), who[1], kept.data, filename=kept.filename)
        marked = errors_workbook(kept.data, kept.filename, report)
    except DomainError as error:
        return _refused(request, who, error)
    return Response(
        marked,
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="import-errors.xlsx"'},
    )


@router.post("/upload/{upload_id}/commit")
async def commit(request: Request, upload_id: str) -> Response:
    """Store the checked file: every row in one transaction, or nothing and the problems."""
    who = _clerk(request)
    if who is None:
        return _to_sign_in()
    if not who[0].csrf_matches((await _form(request)).get("csrf")):
        return _forbidden_form(request, who)
    spool = _uploads(request)
    kept = await run_in_threadpool(spool.take, upload_id, who[1].name)
    if kept is None:
        return _upload_gone(request, who)
    try:
        report = await run_in_threadpool(
            run_import, _registry(request), who[1], kept.data, filename=kept.filename,
            dry_run=False,
        )  # fmt: skip
    except DomainError as error:
        return _refused(request, who, error)
    if not report.stored:  # the registry changed since the dry run: the problems now
        return _report_page(request, who, report, upload_id, kept.filename, status=422)
    await run_in_threadpool(spool.drop, upload_id)
    return render(request, "stored.html", who, status=201, report=report, filename=kept.filename)


def _upload_gone(request: Request, who: Who) -> Response:
    error = {
        "message_zh": "上传的文件已过期或不存在，请重新上传",
        "message": "The upload has expired or is not yours: upload the file again",
    }
    return render(request, "refused.html", who, status=404, error=error)


@router.get("/template.xlsx")
def template(request: Request) -> Response:
    """The empty import template, with its notes sheet."""
    who = _clerk(request)
    if who is None:
        return _to_sign_in()
    return Response(
        template_xlsx(),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="tcr-import-template.xlsx"'},
    )
