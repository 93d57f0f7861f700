"""``POST /v1/batch?dry_run=true``: every command checked, by its schema and against the
registry's state as if the earlier ones were stored, every error answered with its index in
English and Chinese, and nothing stored."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Tokens
from tests.support.parties import (
    amendment_body,
    contract_body,
    invoice_body,
    with_wrong_check_character,
)

EXISTING = "2024410400000001"


def _register(no: str, **overrides: Any) -> dict[str, Any]:
    return {"op": "register_contract", "body": contract_body(no, **overrides)}


def _invoice(no: str, invoice_no: str, amount: str = "600000.00") -> dict[str, Any]:
    return {
        "op": "record_invoice",
        "body": {**invoice_body(invoice_no, amount), "registration_no": no},
    }


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def _dry_run(client: TestClient, commands: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/v1/batch", params={"dry_run": "true"}, json={"commands": commands})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_dry_run_answers_every_error_with_its_index_and_stores_nothing(
    client: TestClient,
) -> None:
    assert client.post("/v1/contracts", json=contract_body(EXISTING)).status_code == 201
    seller = contract_body()["seller"]
    commands = [
        _register("R1"),  # fine
        _register("R2", seller={**seller, "credit_code": with_wrong_check_character(
            seller["credit_code"])}),  # schema: check character
        _invoice("R1", "INV-1", "700000.00"),  # fine: R1 is registered by command 0
        _invoice("R1", "INV-2", "600000.00"),  # state: over R1's amount after INV-1
        {"op": "amend_contract", "body": {
            **amendment_body(title="改", amended_on="2024-02-15"), "registration_no": "R1"}},
        _register(EXISTING),  # state: already registered
        _invoice("R2", "INV-3"),  # state: R2 was refused, so it does not exist
        _register("R3", station_id="S2"),  # state: another station's id
    ]  # fmt: skip

    answer = _dry_run(client, commands)

    assert answer["valid"] is False
    assert answer["commands"] == 8
    assert [(e["index"], e["field"], e["rule"]) for e in answer["errors"]] == [
        (1, "seller.credit_code", "value_error"),
        (3, "amount", "invalid"),
        (4, "amended_on", "not_before_registration"),
        (5, "registration_no", "conflict"),
        (6, "registration_no", "not_found"),
        (7, "station_id", "forbidden"),
    ]
    for error in answer["errors"]:
        assert error["message"] and error["message_zh"], error
    assert "校验码" in answer["errors"][0]["message_zh"]
    assert "1300000.00 元" in answer["errors"][1]["message_zh"]
    assert _head(client) == 1
    assert client.get("/v1/contracts/R1").status_code == 404


def test_a_valid_dry_run_stores_nothing_and_the_same_batch_then_stores_everything(
    client: TestClient,
) -> None:
    commands = [_register("R1", brokers=["B-0009"]), _invoice("R1", "INV-1")]

    answer = _dry_run(client, commands)

    assert (answer["valid"], answer["errors"]) == (True, [])
    assert [(w["index"], w["rule"]) for w in answer["warnings"]] == [(0, "broker_not_filed")]
    assert _head(client) == 0
    stored = client.post("/v1/batch", json={"commands": commands})
    assert stored.status_code == 201, stored.text
    assert stored.json()["positions"] == [1, 2]


def test_a_dry_run_of_the_bureau_names_a_station_that_does_not_exist(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post(
        "/v1/batch?dry_run=true",
        json={"commands": [_register("R1", station_id="S9"), _register("R2", station_id="S2")]},
        headers=tokens.header("bureau"),
    )

    assert response.status_code == 200, response.text
    assert [(e["index"], e["field"], e["rule"]) for e in response.json()["errors"]] == [
        (0, "station_id", "unknown_station")
    ]
    assert _head(client) == 0
