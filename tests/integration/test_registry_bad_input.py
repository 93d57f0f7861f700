"""Input that once got a 500 from the registry now gets a 422 naming the field, on real stores,
and nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.parties import contract_body

TOO_BIG = str(2**63)  # one past the largest BIGINT a position or tree size can be


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def assert_invalid(response: httpx.Response, field: str, status: int = 422) -> dict[str, Any]:
    """Refused with ``status`` in the error shape, naming ``field``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    assert body["error"] and body["message"], body
    return body


# -- log positions in query parameters ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/events", {"after": TOO_BIG}, "after"),
        ("/v1/events", {"after": "-1"}, "after"),
        ("/v1/proofs/inclusion", {"position": TOO_BIG, "tree_size": "1"}, "position"),
        ("/v1/proofs/inclusion", {"position": "1", "tree_size": TOO_BIG}, "tree_size"),
        ("/v1/proofs/consistency", {"from": TOO_BIG, "to": "1"}, "from"),
        ("/v1/proofs/consistency", {"from": "1", "to": TOO_BIG}, "to"),
        ("/v1/proofs/consistency", {"from": "1", "to": "99"}, "to"),
        ("/v1/proofs/inclusion", {"position": "1", "tree_size": "99"}, "tree_size"),
    ],
)
def test_a_position_no_log_can_hold_is_refused_naming_the_parameter(
    client: TestClient, path: str, params: dict[str, str], field: str
) -> None:
    assert client.post("/v1/contracts", json=contract_body()).status_code == 201
    assert_invalid(client.get(path, params=params), field)


def test_reading_after_the_head_answers_the_real_head_not_the_position_asked(
    client: TestClient,
) -> None:
    assert client.post("/v1/contracts", json=contract_body()).status_code == 201
    page = client.get("/v1/events", params={"after": 1_000_000}).json()
    assert page["events"] == []
    assert page["head"] == 1
    assert page["next_after"] == 1_000_000  # the client's own place, unchanged
