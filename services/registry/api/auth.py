"""Bearer-token authentication: who is calling, from the tokens file."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.tokens import Principal, TokenBook
from services.registry.errors import RegistryError

_bearer = HTTPBearer(auto_error=False, description="A token from `tcr tokens add`")


class Unauthenticated(RegistryError):
    """No token, or one the tokens file does not know (HTTP 401)."""

    status = 401
    code = "unauthenticated"


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The principal whose bearer token came with the request."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("Authorization", "send Authorization: Bearer <token>")
    book: TokenBook = request.app.state.tokens
    principal = book.holder(credentials.credentials)
    if principal is None:
        raise Unauthenticated("Authorization", "unknown token")
    return principal
