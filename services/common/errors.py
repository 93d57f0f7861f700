"""Errors every service reports the same way: a status and a JSON body naming field and rule."""

from __future__ import annotations


class ApiError(Exception):
    """Base of every error a service reports to a client."""

    status = 400
    code = "bad_request"

    def __init__(self, field: str | None, message: str, message_zh: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.message_zh = message_zh  # the same in Chinese, for the officers who read it
        self.index: int | None = None  # the command's index within a batch

    def as_json(self) -> dict[str, object]:
        """The JSON body a client receives."""
        body: dict[str, object] = {"error": self.code, "field": self.field, "message": self.message}
        if self.message_zh is not None:
            body["message_zh"] = self.message_zh
        if self.index is not None:
            body["index"] = self.index
        return body


class Unauthenticated(ApiError):
    """No token, or one the tokens file does not know (HTTP 401)."""

    status = 401
    code = "unauthenticated"


class Forbidden(ApiError):
    """The principal may not do this (HTTP 403)."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """The request names something the service does not hold (HTTP 404)."""

    status = 404
    code = "not_found"


class Invalid(ApiError):
    """The request breaks a rule (HTTP 422)."""

    status = 422
    code = "invalid"


class Unavailable(ApiError):
    """The service could not do it now; nothing was changed, the client may retry (HTTP 503)."""

    status = 503
    code = "unavailable"
