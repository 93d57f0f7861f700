"""Balances, the payout draft, and approving it: what the page needs of issue #12's payouts.

The balances and draft are the finance service's own use cases (``app.state.balances``, as
the payouts work wires them), called in-process; the approval is a ``POST /v1/payouts`` to the
registry, sent with the officer's own token, so the log records who approved it. Until those
use cases and that route are deployed, each answer here is :class:`NotYetAvailable` and the
page says so (暂不可用) instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.datastructures import State


class NotYetAvailable(Exception):
    """The payouts part of the finance service is not deployed yet."""


def balances(state: State, year: int, **filters: Any) -> dict[str, Any]:
    """A page of the year's balances (``GET /v1/balances``'s answer)."""
    answer: dict[str, Any] = _balances(state).balances(year, **filters)
    return answer


def draft(state: State, year: int) -> dict[str, Any]:
    """The lines that would settle every outstanding amount now (``GET /v1/payouts/draft``)."""
    answer: dict[str, Any] = _balances(state).draft(year)
    return answer


def _balances(state: State) -> Any:
    found = getattr(state, "balances", None)
    if found is None:
        raise NotYetAvailable("balances")
    return found


@dataclass(frozen=True)
class Approval:
    """The registry's answer to a payout: its status, and its receipt or refusal body."""

    status: int
    body: dict[str, Any]

    @property
    def recorded(self) -> bool:
        return self.status == 201


def approve(
    registry_url: str, token: str, payout: dict[str, Any], idempotency_key: str
) -> Approval:
    """Post a payout to the registry as the officer holding ``token``."""
    try:
        with httpx.Client(base_url=registry_url, timeout=30.0) as client:
            response = client.post(
                "/v1/payouts",
                json=payout,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": idempotency_key},
            )
    except httpx.TransportError as exc:
        # Whether it was stored is unknown; the form keeps its Idempotency-Key, so sending it
        # again records the payout once whichever it was.
        return Approval(
            503,
            {
                "message_zh": "无法连接登记服务，付款可能尚未记录；请稍后再次提交本表单"
                "（不会重复记录）",
                "message": f"the registry did not answer ({type(exc).__name__}): submit this "
                "form again later; it is never recorded twice",
            },
        )
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text[:500]}
    if response.status_code == 404 and body.get("field") is None:
        raise NotYetAvailable("POST /v1/payouts")  # no such route: a 404 naming no field
    return Approval(response.status_code, body)
