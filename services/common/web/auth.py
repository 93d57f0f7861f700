"""Bearer-token authentication: who is calling, from the tokens file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.errors import Forbidden, Unauthenticated
from services.common.tokens import Principal, TokenBook
from services.common.web.context import note_principal

_bearer = HTTPBearer(auto_error=False, description="A token from `tcr tokens add`")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The principal whose bearer token came with the request.

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency in a worker
    thread, and that hand-off was a seventh of the registry's request handling."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(
            "Authorization",
            "send Authorization: Bearer <token>",
            "请发送 Authorization: Bearer <令牌>",
        )
    book: TokenBook = request.app.state.tokens
    principal = book.holder(credentials.credentials)
    if principal is None:
        raise Unauthenticated("Authorization", "unknown token", "令牌无效")
    note_principal(principal.name)  # for the request's log line; the token never is
    return principal


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only principals holding one of ``roles``."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden(
                None,
                f"role {principal.role} may not read this; {', '.join(roles)} may",
                f"角色 {principal.role} 无权查询此项；可查询的角色：{'、'.join(roles)}",
            )
        return principal

    return check
