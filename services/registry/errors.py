"""The registry's domain errors, each naming the field and the rule it broke."""

from __future__ import annotations

from services.common.errors import Conflict, DomainError, Forbidden, Invalid, NotFound

__all__ = ["Conflict", "Forbidden", "InvalidCommand", "NotFound", "RegistryError"]

RegistryError = DomainError


class InvalidCommand(Invalid):
    """The command breaks a rule of the domain."""
