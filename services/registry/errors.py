"""The registry's own errors, each naming the field and the rule it broke."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error the registry reports to a client."""

    status = 400
    code = "bad_request"

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.index: int | None = None  # the command's index within a batch

    def as_json(self) -> dict[str, object]:
        """The JSON body a client receives."""
        body: dict[str, object] = {"error": self.code, "field": self.field, "message": self.message}
        if self.index is not None:
            body["index"] = self.index
        return body


class InvalidCommand(RegistryError):
    """The command breaks a rule of the domain (HTTP 422)."""

    status = 422
    code = "invalid"


class Conflict(RegistryError):
    """The command collides with what is already stored (HTTP 409)."""

    status = 409
    code = "conflict"


class NotFound(RegistryError):
    """The command names something the registry does not hold (HTTP 404)."""

    status = 404
    code = "not_found"


class Forbidden(RegistryError):
    """The principal may not do this (HTTP 403)."""

    status = 403
    code = "forbidden"
