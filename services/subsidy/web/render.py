"""Templates, rendered with the page's labels and the headers every page carries."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from services.common.money import format_fen
from services.common.policy.model import ALL_CATEGORIES
from services.common.policy.present import CATEGORY_ZH
from services.common.web import page
from services.common.web.page import PAGE_HEADERS
from services.subsidy.web import labels

_env = Environment(
    loader=PackageLoader("services.subsidy.web", "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    yuan=page.yuan,
    wan=labels.wan,
    county=labels.county,
    sum_amounts=labels.sum_amounts,
    percent=labels.percent,
    beijing=page.beijing,
    fen=format_fen,
)
_env.globals.update(
    CATEGORY_ZH=CATEGORY_ZH,
    KIND_ZH=labels.KIND_ZH,
    EVENT_ZH=page.EVENT_ZH,
    # A figure column per category, for tables that spread categories across.
    CATEGORIES=ALL_CATEGORIES,
    CATEGORY_COLUMNS=[(CATEGORY_ZH[c], c, "num") for c in ALL_CATEGORIES],
)


def render(
    request: Request, name: str, who: Any, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """A template as an HTML answer; ``who`` is the (session, principal) signed in, or None."""
    session, principal = who if who is not None else (None, None)
    html = _env.get_template(name).render(
        request=request,
        officer=principal,
        csrf=session.csrf if session is not None else None,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
