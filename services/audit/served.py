"""What the subsidy service serves, read whole: every page of a year's entitlements."""

from __future__ import annotations

from typing import Any

import httpx

PAGE = 10_000  # the finance API's largest page


def served_entitlements(client: httpx.Client, year: int, position: int | None) -> dict[str, Any]:
    """``GET /v1/entitlements?year=&include=claims`` (at ``position``, or now), every page
    followed; the first page's answer with all entitlements, each with the contracts counted
    and left out, which the audit compares too. Raises httpx's errors."""
    params: dict[str, Any] = {"year": year, "limit": PAGE, "include": "claims"}
    if position is not None:
        params["position"] = position
    response = client.get("/v1/entitlements", params=params)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    cursor = answer.get("next_cursor")
    while cursor:
        # Later pages are read at the first page's position, so all speak of one log.
        page = client.get(
            "/v1/entitlements", params={**params, "position": answer["position"], "cursor": cursor}
        )
        page.raise_for_status()
        body = page.json()
        answer["entitlements"] += body["entitlements"]
        cursor = body.get("next_cursor")
    return answer
