"""What a client is told of each domain error: one table of HTTP statuses and body names.

Apart from the error handlers (``errors.py``) so that what counts refusals (the registry's
metrics) reads the same table without importing the web framework.
"""

from __future__ import annotations

from services.common.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    TooLarge,
    Unauthenticated,
    Unavailable,
)

# What a client is told of each domain error: the HTTP status and the name the body gives it.
# An error answers as the nearest of its classes listed here (InvalidCommand as Invalid).
REFUSALS: dict[type[DomainError], tuple[int, str]] = {
    DomainError: (400, "bad_request"),
    Unauthenticated: (401, "unauthenticated"),
    Forbidden: (403, "forbidden"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    Invalid: (422, "invalid"),
    TooLarge: (413, "too_large"),
    Unavailable: (503, "unavailable"),
}


def refusal(error: DomainError) -> tuple[int, dict[str, object]]:
    """The status and JSON body of a domain error: ``{error, field, message, message_zh}``,
    ``rule`` where it names one, and ``index`` for a command inside a batch."""
    status, code = next(REFUSALS[c] for c in type(error).__mro__ if c in REFUSALS)
    body: dict[str, object] = {
        "error": code,
        "field": error.field,
        "message": error.message,
        "message_zh": error.message_zh,
    }
    if error.rule is not None:
        body["rule"] = error.rule
    if error.index is not None:
        body["index"] = error.index
    return status, body
