"""The services' domain errors: each names the field and the rule it broke.

They know nothing of HTTP: what a client is told for each (a status and a JSON body) is one
table in ``services.common.web.errors``. A CLI or an import job catches them as they are.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal a service reports: nothing was done, and this is why."""

    def __init__(
        self, field: str | None, message: str, message_zh: str, *, rule: str | None = None
    ) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.message_zh = message_zh  # the same in Chinese, for the officers who read it
        self.rule = rule  # a short id of the rule broken, where one is named
        self.index: int | None = None  # the command's index within a batch


class Unauthenticated(DomainError):
    """No credentials, or ones nobody was given."""


class Forbidden(DomainError):
    """The principal may not do this."""


class NotFound(DomainError):
    """The request names something the service does not hold."""


class Invalid(DomainError):
    """The request breaks a rule."""


class Conflict(DomainError):
    """The request collides with what is already stored."""


class TooLarge(DomainError):
    """The request is too big to take in one piece (a file over its size or row limit)."""


class Unavailable(DomainError):
    """The service could not do it now; nothing was changed, the caller may retry."""


_KINDS: tuple[tuple[type[DomainError], str], ...] = (
    (Unauthenticated, "unauthenticated"),
    (Forbidden, "forbidden"),
    (NotFound, "not_found"),
    (Invalid, "invalid"),
    (Conflict, "conflict"),
    (Unavailable, "unavailable"),
)


def rule_of(error: DomainError) -> str:
    """The rule an error names: its own where it has one, else its kind (``conflict``…)."""
    if error.rule:
        return error.rule
    return next((kind for cls, kind in _KINDS if isinstance(error, cls)), "bad_request")
