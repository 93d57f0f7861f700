"""The registry's domain errors, each naming the field and the rule it broke."""

from __future__ import annotations

from services.common.errors import ApiError, Forbidden, Invalid, NotFound

__all__ = ["Conflict", "Forbidden", "InvalidCommand", "NotFound", "RegistryError"]

RegistryError = ApiError


class InvalidCommand(Invalid):
    """The command breaks a rule of the domain (HTTP 422)."""


class Conflict(ApiError):
    """The command collides with what is already stored (HTTP 409)."""

    status = 409
    code = "conflict"
