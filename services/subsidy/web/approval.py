"""Approving a payout draft: a ``POST /v1/payouts`` to the registry, sent with the officer's
own token, so the log records who approved it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


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
    return Approval(response.status_code, body)
