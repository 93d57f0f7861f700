"""Input that once got a 500 from the registry now gets a 422 naming the field, on real stores,
and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.parties import (
    UNIVERSITY,
    broker_body,
    cancellation_body,
    contract_body,
    invoice_body,
    transfer_body,
    void_body,
)

NO = contract_body()["registration_no"]

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
    client: TestClient, reader: TestClient, path: str, params: dict[str, str], field: str
) -> None:
    assert client.post("/v1/contracts", json=contract_body()).status_code == 201
    assert_invalid(reader.get(path, params=params), field)


def test_reading_after_the_head_answers_the_real_head_not_the_position_asked(
    client: TestClient, reader: TestClient
) -> None:
    assert client.post("/v1/contracts", json=contract_body()).status_code == 201
    page = reader.get("/v1/events", params={"after": 1_000_000}).json()
    assert page["events"] == []
    assert page["head"] == 1
    assert page["next_after"] == 1_000_000  # the client's own place, unchanged


# -- numbers that name records in URL paths ----------------------------------------------------


def test_a_registration_number_with_a_slash_is_refused_and_nothing_stored(
    client: TestClient,
) -> None:
    body = assert_invalid(
        client.post("/v1/contracts", json=contract_body("2024/0001")), "registration_no"
    )
    assert '"/"' in body["message"]
    assert _head(client) == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("invoices", invoice_body("INV/1"), "invoice_no"),
        ("transfer-proofs", transfer_body("BANK/1"), "serial_no"),
    ],
)
def test_an_invoice_or_serial_number_with_a_slash_is_refused_and_nothing_stored(
    client: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    assert client.post("/v1/contracts", json=contract_body()).status_code == 201
    assert_invalid(client.post(f"/v1/contracts/{NO}/{path}", json=body), field)
    assert _head(client) == 1


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (
            {"op": "record_invoice", "body": {**invoice_body("INV/1"), "registration_no": NO}},
            "invoice_no",
        ),
        (
            {
                "op": "void_invoice",
                "body": {**void_body(), "registration_no": NO, "invoice_no": "I/1"},
            },
            "invoice_no",
        ),
        (
            {"op": "cancel_contract", "body": {**cancellation_body(), "registration_no": "A/1"}},
            "registration_no",
        ),
    ],
)
def test_a_number_with_a_slash_is_refused_inside_a_batch_too(
    client: TestClient, command: dict[str, Any], field: str
) -> None:
    commands = [{"op": "register_contract", "body": contract_body()}, command]
    body = assert_invalid(client.post("/v1/batch", json={"commands": commands}), field)
    assert body["index"] == 1
    assert _head(client) == 0


# -- text fields: no control characters, no bidirectional controls -----------------------------

BAD_TEXT = {
    "NUL": "煤矿\x00机器人",
    "escape": "\x1b[31m红色",
    "C1": "a\x85b",
    "DEL": "a\x7fb",
    "right-to-left override": "invoice\u202egnp.exe",
    "left-to-right isolate": "\u2066name\u2069",
    "lone surrogate": "a\ud800b",
}
ONE_LINE_ONLY = {"tab": "a\tb", "newline": "a\nb"}


def _post(client: TestClient, path: str, body: dict[str, Any]) -> httpx.Response:
    """Posted as ASCII JSON, so a lone surrogate travels as the escape a client would send."""
    return client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


def _party(**overrides: str) -> dict[str, str]:
    return {**UNIVERSITY, **overrides}


@pytest.mark.parametrize(
    "text", [*BAD_TEXT.values(), *ONE_LINE_ONLY.values()], ids=[*BAD_TEXT, *ONE_LINE_ONLY]
)
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (lambda t: {"title": t}, "title"),
        (lambda t: {"domain": t}, "domain"),
        (lambda t: {"seller": _party(name=t)}, "seller.name"),
    ],
    ids=["title", "domain", "seller.name"],
)
def test_one_line_text_with_control_or_bidi_characters_is_refused_and_nothing_stored(
    client: TestClient, text: str, overrides: Any, field: str
) -> None:
    response = _post(client, "/v1/contracts", contract_body(**overrides(text)))
    body = assert_invalid(response, field)
    if "\ud800" not in text:  # pydantic's JSON parser refuses that one itself, on the field
        assert "must not hold" in body["message"]
    assert _head(client) == 0


@pytest.mark.parametrize("text", BAD_TEXT.values(), ids=BAD_TEXT)
def test_a_reason_with_control_or_bidi_characters_is_refused(client: TestClient, text: str) -> None:
    assert client.post("/v1/contracts", json=contract_body()).status_code == 201
    response = _post(client, f"/v1/contracts/{NO}/cancellation", cancellation_body(reason=text))
    assert_invalid(response, "reason")
    assert _head(client) == 1


def test_a_reason_may_run_to_several_lines(client: TestClient) -> None:
    assert client.post("/v1/contracts", json=contract_body()).status_code == 201
    reason = "合同解除：\n\t一、双方协商一致"
    response = client.post(
        f"/v1/contracts/{NO}/cancellation", json=cancellation_body(reason=reason)
    )
    assert response.status_code == 201, response.text
    assert client.get(f"/v1/contracts/{NO}").json()["cancellation"]["reason"] == reason


def test_a_broker_name_passes_the_same_rule(client: TestClient) -> None:
    broker = {**broker_body("B1"), "name": "=HYPERLINK(\x00)"}
    assert_invalid(client.post("/v1/brokers", json=broker), "name")
    assert _head(client) == 0


# -- numbers are unique ignoring case (NFKC, case-folded, trimmed) -----------------------------


def test_a_registration_number_differing_only_in_case_is_a_conflict(client: TestClient) -> None:
    assert client.post("/v1/contracts", json=contract_body("TX-2024-0001")).status_code == 201
    response = client.post("/v1/contracts", json=contract_body("tx-2024-0001"))
    body = assert_invalid(response, "registration_no", status=409)
    assert "tx-2024-0001" in body["message"] and "TX-2024-0001" in body["message"]
    assert _head(client) == 1
    assert client.get("/v1/contracts/tx-2024-0001").status_code == 404


@pytest.mark.parametrize(
    ("path", "first", "second", "field"),
    [
        ("invoices", invoice_body("INV-1", "1.00"), invoice_body("inv-1", "1.00"), "invoice_no"),
        (
            "transfer-proofs",
            transfer_body("BANK-1", "1.00"),
            transfer_body("Bank-1", "1.00"),
            "serial_no",
        ),
    ],
)
def test_an_invoice_or_serial_number_differing_only_in_case_is_a_conflict_on_any_contract(
    client: TestClient, path: str, first: dict[str, Any], second: dict[str, Any], field: str
) -> None:
    for number in (NO, "2024410400000002"):
        assert client.post("/v1/contracts", json=contract_body(number)).status_code == 201
    assert client.post(f"/v1/contracts/{NO}/{path}", json=first).status_code == 201
    for number in (NO, "2024410400000002"):
        response = client.post(f"/v1/contracts/{number}/{path}", json=second)
        body = assert_invalid(response, field, status=409)
        assert f"already recorded on contract {NO}" in body["message"]
    assert _head(client) == 3


def test_two_numbers_differing_only_in_case_in_one_batch_store_nothing(
    client: TestClient,
) -> None:
    commands = [
        {"op": "register_contract", "body": contract_body("TX-1")},
        {"op": "register_contract", "body": contract_body("Tx-1")},
    ]
    body = assert_invalid(
        client.post("/v1/batch", json={"commands": commands}), "registration_no", 409
    )
    assert body["index"] == 1
    assert _head(client) == 0
