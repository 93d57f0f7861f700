"""Payouts recorded in the registry's log (兑付): finance alone records one, every rule the API
contract names is refused with its field and nothing is stored, and a retry is idempotent."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tokens
from tests.integration.test_registry_bad_input import assert_invalid
from tests.support.parties import LOCAL_ENTERPRISE, contract_body

BUYER = LOCAL_ENTERPRISE["credit_code"]


def payout_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payout_no": "ZF-2025-001",
        "year": 2024,
        "paid_on": "2025-06-30",
        "basis_position": 1,
        "lines": [
            {"beneficiary": BUYER, "category": "absorption", "amount": "500.00", "kind": "payment"},
            {"beneficiary": "B-1", "category": "broker", "amount": "12.50", "kind": "recovery"},
        ],
    }
    return {**body, **overrides}


@pytest.fixture
def finance(client: TestClient, tokens: Tokens) -> TestClient:
    """The registry with one contract registered (head 1), spoken to as finance."""
    assert client.post("/v1/contracts", json=contract_body()).status_code == 201
    client.headers.update(tokens.header("finance"))
    return client


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def test_a_payout_is_stored_as_one_event_with_amounts_in_fen(finance: TestClient) -> None:
    recorded = finance.post("/v1/payouts", json=payout_body())

    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["type"] == "PayoutRecorded"
    assert recorded.json()["subject"] == "ZF-2025-001"
    entry = finance.get("/v1/events", params={"after": 1}).json()["events"][0]
    assert entry["position"] == recorded.json()["position"] == 2
    assert entry["payload"]["lines"] == [
        {"beneficiary": BUYER, "category": "absorption", "amount_fen": 50000, "kind": "payment"},
        {"beneficiary": "B-1", "category": "broker", "amount_fen": 1250, "kind": "recovery"},
    ]


@pytest.mark.parametrize("who", ["station", "bureau", "auditor"])
def test_only_finance_records_a_payout(client: TestClient, tokens: Tokens, who: str) -> None:
    refused = client.post(
        "/v1/payouts", json=payout_body(basis_position=0), headers=tokens.header(who)
    )

    assert refused.status_code == 403, refused.text
    assert _head(client) == 0


def test_a_payout_number_used_before_is_a_conflict_whatever_its_case(finance: TestClient) -> None:
    assert finance.post("/v1/payouts", json=payout_body()).status_code == 201

    assert_invalid(finance.post("/v1/payouts", json=payout_body()), "payout_no", 409)
    assert_invalid(
        finance.post("/v1/payouts", json=payout_body(payout_no="zf-2025-001")), "payout_no", 409
    )
    assert _head(finance) == 2


_LINE = {"beneficiary": BUYER, "category": "absorption", "amount": "1.00", "kind": "payment"}
_TOMORROW = (date.today() + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"year": 2019}, "year"),
        ({"year": 2026}, "year"),
        ({"lines": []}, "lines"),
        ({"lines": [_LINE, {**_LINE, "amount": "2.00"}]}, "lines.1"),
        ({"lines": [{**_LINE, "amount": "0.00"}]}, "lines.0.amount"),
        ({"lines": [{**_LINE, "amount": "-5.00"}]}, "lines.0.amount"),
        ({"lines": [{**_LINE, "amount": "1.005"}]}, "lines.0.amount"),
        ({"lines": [{**_LINE, "amount": 100}]}, "lines.0.amount"),
        ({"lines": [{**_LINE, "kind": "refund"}]}, "lines.0.kind"),
        ({"lines": [{**_LINE, "category": "bonus"}]}, "lines.0.category"),
        ({"paid_on": _TOMORROW}, "paid_on"),
        ({"paid_on": "2025-02-30"}, "paid_on"),
        ({"basis_position": 2}, "basis_position"),
        ({"basis_position": -1}, "basis_position"),
        ({"payout_no": "ZF/1"}, "payout_no"),
    ],
)
def test_a_payout_breaking_a_rule_is_refused_naming_the_field_and_nothing_is_stored(
    finance: TestClient, overrides: dict[str, Any], field: str
) -> None:
    assert_invalid(finance.post("/v1/payouts", json=payout_body(**overrides)), field)

    assert _head(finance) == 1


def test_a_retried_payout_with_its_key_gets_the_original_receipt_and_stores_nothing(
    finance: TestClient,
) -> None:
    key = {"Idempotency-Key": "payout-0001"}
    first = finance.post("/v1/payouts", json=payout_body(), headers=key)
    again = finance.post("/v1/payouts", json=payout_body(), headers=key)
    changed = finance.post("/v1/payouts", json=payout_body(year=2023), headers=key)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert changed.status_code == 409, changed.text
    assert _head(finance) == 2


def test_a_payout_may_rest_on_an_earlier_command_of_its_own_batch(finance: TestClient) -> None:
    first = {"op": "record_payout", "body": payout_body(basis_position=1)}
    second = {"op": "record_payout", "body": payout_body(payout_no="ZF-2025-002", basis_position=2)}
    beyond = {"op": "record_payout", "body": payout_body(payout_no="ZF-2025-003", basis_position=4)}

    assert_invalid(finance.post("/v1/batch", json={"commands": [first, beyond]}), "basis_position")
    stored = finance.post("/v1/batch", json={"commands": [first, second]})

    assert stored.status_code == 201, stored.text
    assert stored.json()["positions"] == [2, 3]
