"""What is known about the request being served, for its log lines: id, caller, refusal."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestInfo:
    """Filled in as the request goes: its id at once, the principal once authenticated, the
    rule it broke if refused. Shared by reference, so a worker thread's notes reach the log."""

    request_id: str
    principal: str | None = None
    error: str | None = None
    field: str | None = None


_current: ContextVar[RequestInfo | None] = ContextVar("tcr_request", default=None)


def begin(request_id: str) -> RequestInfo:
    info = RequestInfo(request_id)
    _current.set(info)
    return info


def current() -> RequestInfo | None:
    """The request this code runs for, if any."""
    return _current.get()


def note_principal(name: str) -> None:
    info = _current.get()
    if info is not None:
        info.principal = name


def note_refusal(body: Mapping[str, object]) -> None:
    """Remember which rule a refusal (a body in the error shape) names."""
    info = _current.get()
    if info is not None:
        error, field = body.get("error"), body.get("field")
        info.error = error if isinstance(error, str) else None
        info.field = field if isinstance(field, str) else None
