"""The registry refuses bad input with a clear error naming the field, and stores nothing.

Every refusal is checked three ways: the HTTP status, the JSON body's ``field`` and ``message``
(the rule broken), and the log head (or the contract's state) left as it was.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.parties import (
    LOCAL_ENTERPRISE,
    OUTSIDE_ENTERPRISE,
    UNIVERSITY,
    amendment_body,
    cancellation_body,
    contract_body,
    invoice_body,
    transfer_body,
    void_body,
    with_wrong_check_character,
    withdrawal_body,
)

NO = contract_body()["registration_no"]
OTHER_NO = "2024410400000002"
# "The future" is judged by the programme's calendar, China time.
# Two days ahead, not one: the parameters are built at collection, and a run that crosses
# midnight in Beijing would otherwise post "tomorrow" once it has become today.
TOMORROW = (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=2)).isoformat()
MIB = 1024 * 1024


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def _contract(client: TestClient, registration_no: str = NO) -> dict[str, Any]:
    response = client.get(f"/v1/contracts/{registration_no}")
    assert response.status_code == 200, response.text
    contract: dict[str, Any] = response.json()
    return contract


def assert_refused(
    response: httpx.Response, status: int, field: str | None, *words: str
) -> dict[str, Any]:
    """The response refuses with ``status``, names ``field`` and states a rule with ``words``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    for word in words:
        assert word in body["message"], body
    return body


def _register(client: TestClient, registration_no: str = NO, **overrides: Any) -> str:
    response = client.post("/v1/contracts", json=contract_body(registration_no, **overrides))
    assert response.status_code == 201, response.text
    return registration_no


def _post(client: TestClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(path, json=body)


def _created(response: httpx.Response) -> None:
    assert response.status_code == 201, response.text


@pytest.fixture
def registered(client: TestClient) -> str:
    """The default contract, registered by station S1: 1,200,000.00, signed on 2024-02-01."""
    return _register(client)


# -- registration ------------------------------------------------------------------------------

BAD_SELLER_CODE = with_wrong_check_character(UNIVERSITY["credit_code"])


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        pytest.param(
            {"seller": {**UNIVERSITY, "credit_code": BAD_SELLER_CODE}},
            "seller.credit_code",
            ("GB 32100-2015 check character",),
            id="credit-code-check-character",
        ),
        pytest.param(
            {"buyer": {**LOCAL_ENTERPRISE, "credit_code": LOCAL_ENTERPRISE["credit_code"][:17]}},
            "buyer.credit_code",
            ("18 characters",),
            id="credit-code-17-characters",
        ),
        pytest.param(
            {"buyer": {**LOCAL_ENTERPRISE, "credit_code": "91410400MA000000IO"}},
            "buyer.credit_code",
            ("outside the GB 32100-2015 set", "I", "O"),
            id="credit-code-letters-outside-the-set",
        ),
        pytest.param(
            {"seller": {**UNIVERSITY, "region_code": "41040"}},
            "seller.region_code",
            ("6 digits",),
            id="region-code-5-digits",
        ),
        pytest.param(
            {"seller": {**UNIVERSITY, "region_code": "4104021"}},
            "seller.region_code",
            ("6 digits",),
            id="region-code-7-digits",
        ),
        pytest.param(
            {"buyer": {**LOCAL_ENTERPRISE, "region_code": "41040A"}},
            "buyer.region_code",
            ("6 digits",),
            id="region-code-letter",
        ),
        pytest.param(
            {"buyer": {**LOCAL_ENTERPRISE, "region_code": 410403}},
            "buyer.region_code",
            ("string",),
            id="region-code-number",
        ),
        pytest.param(
            {"contract_type": "research"},
            "contract_type",
            ("development", "transfer", "licensing", "consulting", "service"),
            id="unknown-contract-type",
        ),
        pytest.param(
            {"seller": {**UNIVERSITY, "kind": "college"}},
            "seller.kind",
            ("enterprise", "university", "research_institute", "new_rd_institution", "other"),
            id="unknown-party-kind",
        ),
        pytest.param(
            {"contract_amount": "0.00"},
            "contract_amount",
            ("greater than zero",),
            id="zero-amount",
        ),
        pytest.param(
            {"technology_amount": "0"},
            "technology_amount",
            ("greater than zero",),
            id="zero-amount-without-decimals",
        ),
        pytest.param(
            {"contract_amount": "-1200000.00"},
            "contract_amount",
            ("decimal string",),
            id="negative-amount",
        ),
        pytest.param(
            {"contract_amount": 1200000},
            "contract_amount",
            ("decimal string", "not a number"),
            id="amount-as-integer",
        ),
        pytest.param(
            {"contract_amount": 1200000.5},
            "contract_amount",
            ("decimal string", "not a number"),
            id="amount-as-float",
        ),
        pytest.param(
            {"contract_amount": "1200000.001"},
            "contract_amount",
            ("at most 2 decimals",),
            id="amount-with-three-decimals",
        ),
        pytest.param(
            {"contract_amount": "1,200,000.00"},
            "contract_amount",
            ("decimal string",),
            id="amount-with-separators",
        ),
        pytest.param(
            {"technology_amount": "1200000.01"},
            "technology_amount",
            ("must not exceed contract_amount",),
            id="technology-amount-above-contract-amount",
        ),
        pytest.param(
            {"signed_on": "2024-02-30"},
            "signed_on",
            ("valid date",),
            id="february-30th",
        ),
        pytest.param(
            {"registered_on": "2023-02-29"},
            "registered_on",
            ("valid date",),
            id="february-29th-of-a-common-year",
        ),
        pytest.param(
            {"registered_on": "2024/03/01"},
            "registered_on",
            ("YYYY-MM-DD",),
            id="date-with-slashes",
        ),
        pytest.param(
            {"registered_on": TOMORROW},
            "registered_on",
            ("future",),
            id="registered-tomorrow",
        ),
        pytest.param(
            {"signed_on": "2024-03-02"},
            "signed_on",
            ("after registered_on",),
            id="signed-after-registration",
        ),
        pytest.param(
            {"buyer": UNIVERSITY},
            "buyer.credit_code",
            ("differ",),
            id="buyer-is-the-seller",
        ),
        pytest.param(
            {"brokers": ["B-0001", "B-0001"]},
            "brokers",
            ("twice",),
            id="broker-named-twice",
        ),
        pytest.param(
            {"related_party": "no"},
            "related_party",
            ("boolean",),
            id="related-party-not-a-boolean",
        ),
        pytest.param(
            {"discount": "100.00"},
            "discount",
            ("not permitted",),
            id="unknown-field",
        ),
        pytest.param(
            {"seller": {**UNIVERSITY, "legal_person": "李四"}},
            "seller.legal_person",
            ("not permitted",),
            id="unknown-party-field",
        ),
    ],
)
def test_a_registration_breaking_a_rule_is_refused_naming_the_field_and_nothing_is_stored(
    client: TestClient, overrides: dict[str, Any], field: str, words: tuple[str, ...]
) -> None:
    response = client.post("/v1/contracts", json=contract_body(**overrides))

    assert_refused(response, 422, field, *words)
    assert _head(client) == 0
    assert client.get(f"/v1/contracts/{NO}").status_code == 404


def test_a_registration_without_a_required_field_is_refused_naming_it(client: TestClient) -> None:
    body = contract_body()
    del body["contract_amount"]

    assert_refused(client.post("/v1/contracts", json=body), 422, "contract_amount", "required")
    assert _head(client) == 0


def test_a_leap_day_and_amounts_with_one_or_no_decimals_are_accepted_as_fen(
    client: TestClient,
) -> None:
    body = contract_body(signed_on="2024-02-29", contract_amount="1200000", technology_amount="0.1")

    _created(client.post("/v1/contracts", json=body))

    contract = _contract(client)
    assert (contract["signed_on"], contract["contract_amount"]) == ("2024-02-29", "1200000.00")
    assert contract["technology_amount"] == "0.10"


# -- malformed bodies ----------------------------------------------------------------------------


def test_malformed_json_is_refused_and_nothing_is_stored(client: TestClient) -> None:
    response = client.post(
        "/v1/contracts",
        content=b'{"registration_no": "R1", ',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith("malformed JSON")
    assert _head(client) == 0


def test_a_malformed_json_refusal_names_no_field(client: TestClient) -> None:
    response = client.post(
        "/v1/contracts",
        content=b'{"registration_no": "R1", ',
        headers={"Content-Type": "application/json"},
    )

    assert_refused(response, 422, None, "malformed JSON")


def test_a_body_that_is_not_a_json_object_is_refused(client: TestClient) -> None:
    response = client.post("/v1/contracts", json=[contract_body()])

    assert_refused(response, 422, None, "object")
    assert _head(client) == 0


def test_a_body_over_one_mebibyte_is_refused_with_413_and_nothing_is_stored(
    client: TestClient,
) -> None:
    body = contract_body(title="技" * MIB)

    response = client.post("/v1/contracts", json=body)

    assert_refused(response, 413, None, "over 1048576 bytes")
    assert _head(client) == 0


def test_a_chunked_body_over_one_mebibyte_without_content_length_is_refused_with_413(
    client: TestClient,
) -> None:
    payload = httpx.Request("POST", "/", json=contract_body(title="x" * MIB)).content

    def chunks() -> Any:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    response = client.post(
        "/v1/contracts", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert_refused(response, 413, None, "over 1048576 bytes")
    assert _head(client) == 0


# -- invoices and transfer proofs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        pytest.param(
            {"issuer_credit_code": OUTSIDE_ENTERPRISE["credit_code"]},
            "issuer_credit_code",
            ("seller",),
            id="issuer-not-the-seller",
        ),
        pytest.param(
            {"issuer_credit_code": LOCAL_ENTERPRISE["credit_code"]},
            "issuer_credit_code",
            ("seller",),
            id="issuer-is-the-buyer",
        ),
        pytest.param(
            {"recipient_credit_code": OUTSIDE_ENTERPRISE["credit_code"]},
            "recipient_credit_code",
            ("buyer",),
            id="recipient-not-the-buyer",
        ),
        pytest.param(
            {"issuer_credit_code": BAD_SELLER_CODE},
            "issuer_credit_code",
            ("check character",),
            id="issuer-code-check-character",
        ),
        pytest.param(
            {"issued_on": "2024-01-31"},
            "issued_on",
            ("before the contract was signed", "2024-02-01"),
            id="issued-before-signing",
        ),
        pytest.param(
            {"issued_on": "2024-04-31"},
            "issued_on",
            ("valid date",),
            id="april-31st",
        ),
        pytest.param({"issued_on": TOMORROW}, "issued_on", ("future",), id="issued-tomorrow"),
        pytest.param({"amount": "0.00"}, "amount", ("greater than zero",), id="zero"),
        pytest.param({"amount": "-600000.00"}, "amount", ("decimal string",), id="negative"),
        pytest.param({"amount": 600000}, "amount", ("not a number",), id="number"),
        pytest.param({"amount": "600000.005"}, "amount", ("2 decimals",), id="three-decimals"),
        pytest.param(
            {"amount": "1200000.01"},
            "amount",
            ("invoices not voided would total more than the contract amount",),
            id="above-the-contract-amount",
        ),
        pytest.param({"invoice_no": ""}, "invoice_no", ("at least 1",), id="empty-number"),
        pytest.param({"tax": "1.00"}, "tax", ("not permitted",), id="unknown-field"),
    ],
)
def test_an_invoice_breaking_a_rule_is_refused_and_nothing_is_stored(
    client: TestClient,
    registered: str,
    overrides: dict[str, Any],
    field: str,
    words: tuple[str, ...],
) -> None:
    response = client.post(f"/v1/contracts/{registered}/invoices", json=invoice_body(**overrides))

    assert_refused(response, 422, field, *words)
    assert _head(client) == 1
    assert _contract(client)["invoices"] == []


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        pytest.param(
            {"payer_credit_code": OUTSIDE_ENTERPRISE["credit_code"]},
            "payer_credit_code",
            ("buyer",),
            id="payer-not-the-buyer",
        ),
        pytest.param(
            {"payee_credit_code": OUTSIDE_ENTERPRISE["credit_code"]},
            "payee_credit_code",
            ("seller",),
            id="payee-not-the-seller",
        ),
        pytest.param(
            {
                "payer_credit_code": UNIVERSITY["credit_code"],
                "payee_credit_code": LOCAL_ENTERPRISE["credit_code"],
            },
            "payer_credit_code",
            ("buyer",),
            id="payment-the-wrong-way-round",
        ),
        pytest.param(
            {"payee_credit_code": BAD_SELLER_CODE},
            "payee_credit_code",
            ("check character",),
            id="payee-code-check-character",
        ),
        pytest.param(
            {"paid_on": "2024-01-31"},
            "paid_on",
            ("before the contract was signed", "2024-02-01"),
            id="paid-before-signing",
        ),
        pytest.param({"paid_on": "2024-13-01"}, "paid_on", ("valid date",), id="month-13"),
        pytest.param({"paid_on": TOMORROW}, "paid_on", ("future",), id="paid-tomorrow"),
        pytest.param({"amount": "0"}, "amount", ("greater than zero",), id="zero"),
        pytest.param({"amount": "-1.00"}, "amount", ("decimal string",), id="negative"),
        pytest.param({"amount": 600000.0}, "amount", ("not a number",), id="number"),
        pytest.param({"amount": "1.999"}, "amount", ("2 decimals",), id="three-decimals"),
        pytest.param(
            {"amount": "1200000.01"},
            "amount",
            ("transfer proofs not withdrawn would total more than the contract amount",),
            id="above-the-contract-amount",
        ),
        pytest.param({"fee": "1.00"}, "fee", ("not permitted",), id="unknown-field"),
    ],
)
def test_a_transfer_proof_breaking_a_rule_is_refused_and_nothing_is_stored(
    client: TestClient,
    registered: str,
    overrides: dict[str, Any],
    field: str,
    words: tuple[str, ...],
) -> None:
    response = client.post(
        f"/v1/contracts/{registered}/transfer-proofs", json=transfer_body(**overrides)
    )

    assert_refused(response, 422, field, *words)
    assert _head(client) == 1
    assert _contract(client)["transfer_proofs"] == []


def test_invoices_not_voided_may_not_total_more_than_the_contract_amount_and_voiding_frees_room(
    client: TestClient, registered: str
) -> None:
    invoices = f"/v1/contracts/{registered}/invoices"
    _created(client.post(invoices, json=invoice_body("INV-1", "600000.00")))
    _created(client.post(invoices, json=invoice_body("INV-2", "600000.00")))

    over = client.post(invoices, json=invoice_body("INV-3", "0.01"))

    assert_refused(over, 422, "amount", "more than the contract amount")
    assert _head(client) == 3
    assert _contract(client)["invoiced_total"] == "1200000.00"

    _created(client.post(f"{invoices}/INV-2/void", json=void_body()))
    _created(client.post(invoices, json=invoice_body("INV-3", "600000.00")))
    assert_refused(client.post(invoices, json=invoice_body("INV-4", "0.01")), 422, "amount")
    assert _contract(client)["invoiced_total"] == "1200000.00"


def test_transfer_proofs_not_withdrawn_may_not_total_more_than_the_contract_amount_and_withdrawing_frees_room(  # noqa: E501
    client: TestClient, registered: str
) -> None:
    proofs = f"/v1/contracts/{registered}/transfer-proofs"
    _created(client.post(proofs, json=transfer_body("BANK-1", "1000000.00")))

    over = client.post(proofs, json=transfer_body("BANK-2", "200000.01"))

    assert_refused(over, 422, "amount", "more than the contract amount")
    assert _head(client) == 2
    assert _contract(client)["paid_total"] == "1000000.00"

    _created(client.post(f"{proofs}/BANK-1/withdraw", json=withdrawal_body()))
    _created(client.post(proofs, json=transfer_body("BANK-2", "1200000.00")))
    assert _contract(client)["paid_total"] == "1200000.00"


def test_the_invoice_and_transfer_limits_are_counted_separately(
    client: TestClient, registered: str
) -> None:
    _created(client.post(f"/v1/contracts/{registered}/invoices", json=invoice_body("I", "1200000")))

    proof = client.post(
        f"/v1/contracts/{registered}/transfer-proofs", json=transfer_body("T", "1200000")
    )

    _created(proof)


def test_a_void_dated_before_the_invoice_was_issued_is_refused(
    client: TestClient, registered: str
) -> None:
    invoices = f"/v1/contracts/{registered}/invoices"
    _created(client.post(invoices, json=invoice_body("INV-1", issued_on="2024-04-01")))

    response = client.post(f"{invoices}/INV-1/void", json=void_body(voided_on="2024-03-31"))

    assert_refused(response, 422, "voided_on", "before the invoice was issued")
    assert _contract(client)["invoices"][0]["voided"] is None


def test_a_withdrawal_dated_before_the_payment_is_refused(
    client: TestClient, registered: str
) -> None:
    proofs = f"/v1/contracts/{registered}/transfer-proofs"
    _created(client.post(proofs, json=transfer_body("BANK-1", paid_on="2024-04-15")))

    response = client.post(
        f"{proofs}/BANK-1/withdraw", json=withdrawal_body(withdrawn_on="2024-01-01")
    )

    assert_refused(response, 422, "withdrawn_on", "before")
    assert _contract(client)["transfer_proofs"][0]["withdrawn"] is None


# -- amendments and cancellations --------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        pytest.param(
            {"technology_amount": "1200000.01"},
            "technology_amount",
            ("must not exceed contract_amount",),
            id="technology-above-the-unchanged-contract-amount",
        ),
        pytest.param(
            {"contract_amount": "900000.00"},
            "technology_amount",
            ("must not exceed contract_amount",),
            id="contract-below-the-unchanged-technology-amount",
        ),
        pytest.param(
            {"contract_amount": "0.00"},
            "contract_amount",
            ("greater than zero",),
            id="zero",
        ),
        pytest.param(
            {"contract_amount": 1500000},
            "contract_amount",
            ("not a number",),
            id="number",
        ),
        pytest.param(
            {"title": "补充", "amended_on": "2024-01-31"},
            "amended_on",
            ("before the registration", "2024-03-01"),
            id="dated-before-signing",
        ),
        pytest.param(
            {"title": "补充", "amended_on": "2024-02-30"},
            "amended_on",
            ("valid date",),
            id="impossible-date",
        ),
        pytest.param(
            {"title": "补充", "amended_on": TOMORROW},
            "amended_on",
            ("future",),
            id="dated-tomorrow",
        ),
        pytest.param(
            {"brokers": ["B-1", "B-1"]},
            "brokers",
            ("twice",),
            id="broker-named-twice",
        ),
        pytest.param(
            {"seller": UNIVERSITY},
            "seller",
            ("not permitted",),
            id="parties-cannot-be-amended",
        ),
    ],
)
def test_an_amendment_breaking_a_rule_is_refused_and_the_contract_is_unchanged(
    client: TestClient,
    registered: str,
    changes: dict[str, Any],
    field: str,
    words: tuple[str, ...],
) -> None:
    _created(client.post(f"/v1/contracts/{registered}/invoices", json=invoice_body()))
    _created(
        client.post(
            f"/v1/contracts/{registered}/transfer-proofs",
            json=transfer_body(amount="700000.00"),
        )
    )
    before = _contract(client)

    response = client.post(f"/v1/contracts/{registered}/amendments", json=amendment_body(**changes))

    assert_refused(response, 422, field, *words)
    assert _contract(client) == before
    assert _head(client) == 3


@pytest.mark.parametrize(
    ("invoiced", "paid", "lowered_to"),
    [
        pytest.param("700000.00", "600000.00", "699999.99", id="below-the-invoices"),
        pytest.param(
            "600000.00", "700000.00", "650000.00", id="below-the-transfer-proofs-not-the-invoices"
        ),
    ],
)
def test_an_amendment_lowering_the_contract_amount_below_the_evidence_recorded_is_refused(
    client: TestClient, registered: str, invoiced: str, paid: str, lowered_to: str
) -> None:
    _created(client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body(amount=invoiced)))
    _created(client.post(f"/v1/contracts/{NO}/transfer-proofs", json=transfer_body(amount=paid)))
    changes = {"contract_amount": lowered_to, "technology_amount": "500000.00"}

    response = client.post(f"/v1/contracts/{NO}/amendments", json=amendment_body(**changes))

    assert_refused(
        response, 422, "contract_amount", "below the evidence already recorded (700000.00 yuan)"
    )
    assert _contract(client)["contract_amount"] == "1200000.00"
    assert _head(client) == 3


def test_an_amendment_changing_nothing_is_refused(client: TestClient, registered: str) -> None:
    body = {"amended_on": "2024-05-01", "reason": "无变更"}

    response = client.post(f"/v1/contracts/{registered}/amendments", json=body)

    assert_refused(response, 422, None, "must change at least one of")
    assert _head(client) == 1


def test_an_amendment_may_lower_the_contract_amount_down_to_the_evidence_recorded(
    client: TestClient, registered: str
) -> None:
    _created(client.post(f"/v1/contracts/{registered}/invoices", json=invoice_body()))
    changes = {"contract_amount": "600000.00", "technology_amount": "600000.00"}

    _created(client.post(f"/v1/contracts/{registered}/amendments", json=amendment_body(**changes)))

    assert _contract(client)["contract_amount"] == "600000.00"


def test_a_cancellation_dated_before_the_registration_is_refused(
    client: TestClient, registered: str
) -> None:
    response = client.post(
        f"/v1/contracts/{registered}/cancellation",
        json=cancellation_body(cancelled_on="2024-02-29"),
    )

    assert_refused(response, 422, "cancelled_on", "before the registration", "2024-03-01")
    assert _contract(client)["status"] == "registered"


# -- conflicts (409) -----------------------------------------------------------------------------


def test_a_registration_number_already_used_is_a_conflict_and_the_first_contract_stands(
    client: TestClient, registered: str
) -> None:
    again = contract_body(title="另一份合同", contract_amount="5.00", technology_amount="5.00")

    response = client.post("/v1/contracts", json=again)

    assert_refused(response, 409, "registration_no", NO, "already used")
    assert _contract(client)["title"] == contract_body()["title"]
    assert _head(client) == 1


@pytest.mark.parametrize("where", ["same-contract", "another-contract"])
def test_an_invoice_number_already_used_is_a_conflict_even_on_another_contract(
    client: TestClient, registered: str, where: str
) -> None:
    _register(client, OTHER_NO)
    _created(client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body("INV-1", "1.00")))
    target = NO if where == "same-contract" else OTHER_NO

    response = client.post(f"/v1/contracts/{target}/invoices", json=invoice_body("INV-1", "2.00"))

    assert_refused(response, 409, "invoice_no", "INV-1", f"already recorded on contract {NO}")
    assert _head(client) == 3
    assert _contract(client, OTHER_NO)["invoices"] == []


@pytest.mark.parametrize("where", ["same-contract", "another-contract"])
def test_a_bank_serial_already_used_is_a_conflict_even_on_another_contract(
    client: TestClient, registered: str, where: str
) -> None:
    _register(client, OTHER_NO)
    proofs = f"/v1/contracts/{NO}/transfer-proofs"
    _created(client.post(proofs, json=transfer_body("BANK-1", "1.00")))
    target = NO if where == "same-contract" else OTHER_NO

    response = client.post(
        f"/v1/contracts/{target}/transfer-proofs", json=transfer_body("BANK-1", "2.00")
    )

    assert_refused(response, 409, "serial_no", "BANK-1", f"already recorded on contract {NO}")
    assert _head(client) == 3
    assert _contract(client, OTHER_NO)["transfer_proofs"] == []


def test_a_voided_invoice_number_and_a_withdrawn_serial_stay_used(
    client: TestClient, registered: str
) -> None:
    _created(client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body("INV-1")))
    _created(client.post(f"/v1/contracts/{NO}/invoices/INV-1/void", json=void_body()))
    _created(client.post(f"/v1/contracts/{NO}/transfer-proofs", json=transfer_body("BANK-1")))
    _created(
        client.post(f"/v1/contracts/{NO}/transfer-proofs/BANK-1/withdraw", json=withdrawal_body())
    )

    invoice = client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body("INV-1"))
    proof = client.post(f"/v1/contracts/{NO}/transfer-proofs", json=transfer_body("BANK-1"))

    assert_refused(invoice, 409, "invoice_no", "already recorded")
    assert_refused(proof, 409, "serial_no", "already recorded")
    assert _head(client) == 5


def test_voiding_an_invoice_twice_or_withdrawing_a_proof_twice_is_a_conflict(
    client: TestClient, registered: str
) -> None:
    _created(client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body("INV-1")))
    _created(client.post(f"/v1/contracts/{NO}/invoices/INV-1/void", json=void_body()))
    _created(client.post(f"/v1/contracts/{NO}/transfer-proofs", json=transfer_body("BANK-1")))
    withdraw = f"/v1/contracts/{NO}/transfer-proofs/BANK-1/withdraw"
    _created(client.post(withdraw, json=withdrawal_body()))

    void_again = client.post(f"/v1/contracts/{NO}/invoices/INV-1/void", json=void_body())
    withdraw_again = client.post(withdraw, json=withdrawal_body())

    assert_refused(void_again, 409, "invoice_no", "already voided")
    assert_refused(withdraw_again, 409, "serial_no", "already withdrawn")
    assert _head(client) == 5


CANCELLED_WRITES = [
    pytest.param(f"/v1/contracts/{NO}/invoices", invoice_body("INV-2", "1.00"), id="invoice"),
    pytest.param(
        f"/v1/contracts/{NO}/transfer-proofs", transfer_body("BANK-2", "1.00"), id="transfer-proof"
    ),
    pytest.param(f"/v1/contracts/{NO}/amendments", amendment_body(), id="amendment"),
    pytest.param(
        f"/v1/contracts/{NO}/cancellation",
        cancellation_body(cancelled_on="2024-06-02"),
        id="second-cancellation",
    ),
    pytest.param(f"/v1/contracts/{NO}/invoices/INV-1/void", void_body(), id="void"),
    pytest.param(
        f"/v1/contracts/{NO}/transfer-proofs/BANK-1/withdraw", withdrawal_body(), id="withdrawal"
    ),
]


@pytest.mark.parametrize(("path", "body"), CANCELLED_WRITES)
def test_any_write_to_a_cancelled_contract_is_a_conflict_and_nothing_is_stored(
    client: TestClient, registered: str, path: str, body: dict[str, Any]
) -> None:
    _created(client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body("INV-1")))
    _created(client.post(f"/v1/contracts/{NO}/transfer-proofs", json=transfer_body("BANK-1")))
    _created(client.post(f"/v1/contracts/{NO}/cancellation", json=cancellation_body()))
    before = _contract(client)

    response = client.post(path, json=body)

    assert_refused(response, 409, "registration_no", "cancelled on 2024-06-01")
    assert _head(client) == 4
    assert _contract(client) == before


# -- not found (404) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/v1/contracts/NOPE/invoices", invoice_body(), id="invoice"),
        pytest.param("/v1/contracts/NOPE/transfer-proofs", transfer_body(), id="transfer-proof"),
        pytest.param("/v1/contracts/NOPE/amendments", amendment_body(), id="amendment"),
        pytest.param("/v1/contracts/NOPE/cancellation", cancellation_body(), id="cancellation"),
        pytest.param("/v1/contracts/NOPE/invoices/INV-1/void", void_body(), id="void"),
        pytest.param(
            "/v1/contracts/NOPE/transfer-proofs/BANK-1/withdraw", withdrawal_body(), id="withdraw"
        ),
    ],
)
def test_a_write_to_an_unknown_contract_is_not_found_and_nothing_is_stored(
    client: TestClient, registered: str, path: str, body: dict[str, Any]
) -> None:
    response = client.post(path, json=body)

    assert_refused(response, 404, "registration_no", "NOPE")
    assert _head(client) == 1


def test_reading_an_unknown_contract_is_not_found(client: TestClient) -> None:
    assert_refused(client.get("/v1/contracts/NOPE"), 404, "registration_no", "NOPE")


def test_voiding_an_unknown_invoice_is_not_found_even_when_it_is_on_another_contract(
    client: TestClient, registered: str
) -> None:
    _register(client, OTHER_NO)
    _created(client.post(f"/v1/contracts/{OTHER_NO}/invoices", json=invoice_body("INV-1")))

    response = client.post(f"/v1/contracts/{NO}/invoices/INV-1/void", json=void_body())

    assert_refused(response, 404, "invoice_no", "INV-1", NO)
    assert _head(client) == 3
    assert _contract(client, OTHER_NO)["invoices"][0]["voided"] is None


def test_withdrawing_an_unknown_serial_is_not_found_even_when_it_is_on_another_contract(
    client: TestClient, registered: str
) -> None:
    _register(client, OTHER_NO)
    proofs = f"/v1/contracts/{OTHER_NO}/transfer-proofs"
    _created(client.post(proofs, json=transfer_body("BANK-1")))

    response = client.post(
        f"/v1/contracts/{NO}/transfer-proofs/BANK-1/withdraw", json=withdrawal_body()
    )

    assert_refused(response, 404, "serial_no", "BANK-1", NO)
    assert _head(client) == 3
    assert _contract(client, OTHER_NO)["transfer_proofs"][0]["withdrawn"] is None


# -- reading the log -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        pytest.param({"limit": 5001}, "limit", ("5000",), id="limit-over-5000"),
        pytest.param({"limit": 0}, "limit", ("greater than or equal to 1",), id="limit-zero"),
        pytest.param({"after": -1}, "after", ("greater than or equal to 0",), id="after-negative"),
        pytest.param({"after": "x"}, "after", ("integer",), id="after-not-a-number"),
    ],
)
def test_reading_the_log_with_a_bad_page_is_refused_naming_the_parameter(
    reader: TestClient, params: dict[str, Any], field: str, words: tuple[str, ...]
) -> None:
    assert_refused(reader.get("/v1/events", params=params), 422, field, *words)


def test_a_page_of_5000_is_allowed(reader: TestClient, registered: str) -> None:
    page = reader.get("/v1/events", params={"limit": 5000})

    assert page.status_code == 200, page.text
    assert [e["position"] for e in page.json()["events"]] == [1]
