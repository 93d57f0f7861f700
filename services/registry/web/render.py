"""Templates, rendered with the page's labels and the headers every page carries."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from services.common.web import page
from services.registry.web import labels

_env = Environment(
    loader=PackageLoader("services.registry.web", "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(yuan=page.yuan, beijing=page.beijing)
_env.globals.update(
    EVENT_ZH=page.EVENT_ZH,
    CONTRACT_TYPE_ZH=labels.CONTRACT_TYPE_ZH,
    PARTY_KIND_ZH=labels.PARTY_KIND_ZH,
    STATUS_ZH=labels.STATUS_ZH,
    SHEET_EN=labels.SHEET_EN,
    EVENT_DATES=labels.EVENT_DATES,
)


def render(
    request: Request, name: str, who: Any, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """A template as an HTML answer; ``who`` is the (session, principal) signed in, or None."""
    session, principal = who if who is not None else (None, None)
    html = _env.get_template(name).render(
        request=request,
        clerk=principal,
        csrf=session.csrf if session is not None else None,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=page.PAGE_HEADERS)
