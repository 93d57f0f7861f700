"""Batches store all their commands, in order, at contiguous positions, or none of them; and the
log pages so that a reader sees every event exactly once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.registry import writer
from services.registry.application import Registry
from tests.conftest import Tokens
from tests.support.parties import (
    OUTSIDE_ENTERPRISE,
    OUTSIDE_UNIVERSITY,
    UNIVERSITY,
    amendment_body,
    broker_body,
    cancellation_body,
    contract_body,
    invoice_body,
    transfer_body,
    void_body,
    with_wrong_check_character,
)

EXISTING = "2024410400000001"  # registered before each batch below
R1, R2 = "2024410400000101", "2024410400000102"


def register(no: str, **overrides: Any) -> dict[str, Any]:
    return {"op": "register_contract", "body": contract_body(no, **overrides)}


def invoice(no: str, invoice_no: str, amount: str = "600000.00", **kw: Any) -> dict[str, Any]:
    return {
        "op": "record_invoice",
        "body": {**invoice_body(invoice_no, amount, **kw), "registration_no": no},
    }


def transfer(no: str, serial_no: str, amount: str = "600000.00", **kw: Any) -> dict[str, Any]:
    return {
        "op": "record_transfer_proof",
        "body": {**transfer_body(serial_no, amount, **kw), "registration_no": no},
    }


def void(no: str, invoice_no: str) -> dict[str, Any]:
    return {
        "op": "void_invoice",
        "body": {**void_body(), "registration_no": no, "invoice_no": invoice_no},
    }


def amend(no: str, **changes: Any) -> dict[str, Any]:
    return {"op": "amend_contract", "body": {**amendment_body(**changes), "registration_no": no}}


def cancel(no: str) -> dict[str, Any]:
    return {"op": "cancel_contract", "body": {**cancellation_body(), "registration_no": no}}


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def _events(client: TestClient, after: int = 0) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = client.get(
        "/v1/events", params={"after": after, "limit": 5000}
    ).json()["events"]
    return events


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _refused_at(
    response: httpx.Response, status: int, index: int, field: str | None, *words: str
) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body.get("index"), body["field"]) == (index, field), body
    for word in words:
        assert word in body["message"], body


@pytest.fixture
def existing(client: TestClient) -> dict[str, Any]:
    """A contract registered before the batch, with one invoice (head 2); its state."""
    _created(client.post("/v1/contracts", json=contract_body(EXISTING)))
    _created(client.post(f"/v1/contracts/{EXISTING}/invoices", json=invoice_body("INV-0")))
    state: dict[str, Any] = client.get(f"/v1/contracts/{EXISTING}").json()
    return state


# -- all of them, in order -----------------------------------------------------------------------


def test_a_batch_stores_its_commands_in_order_at_contiguous_positions(
    client: TestClient, reader: TestClient, existing: dict[str, Any]
) -> None:
    commands = [
        register(R1),
        invoice(R1, "INV-1"),
        transfer(R1, "BANK-1"),
        register(R2, seller=OUTSIDE_UNIVERSITY),
        void(R1, "INV-1"),
        invoice(EXISTING, "INV-2"),
        amend(R1, title="改"),
    ]

    answer = _created(client.post("/v1/batch", json={"commands": commands}))

    first, last = answer["positions"]
    assert answer["count"] == len(commands) == last - first + 1
    assert first == 3
    entries = _events(reader, after=2)
    assert [e["position"] for e in entries] == list(range(first, last + 1))
    assert [(e["type"], e["subject"]) for e in entries] == [
        ("ContractRegistered", R1),
        ("InvoiceRecorded", R1),
        ("TransferProofRecorded", R1),
        ("ContractRegistered", R2),
        ("InvoiceVoided", R1),
        ("InvoiceRecorded", EXISTING),
        ("ContractAmended", R1),
    ]
    assert _head(client) == last


def test_commands_in_a_batch_see_the_ones_before_them(client: TestClient) -> None:
    commands = [
        register(R1, contract_amount="100.00", technology_amount="100.00"),
        invoice(R1, "INV-1", "100.00"),
        void(R1, "INV-1"),
        invoice(R1, "INV-2", "100.00"),  # room again once INV-1 is voided
        amend(R1, contract_amount="150.00"),
        invoice(R1, "INV-3", "50.00"),  # room made by the amendment
        cancel(R1),
    ]

    _created(client.post("/v1/batch", json={"commands": commands}))

    contract = client.get(f"/v1/contracts/{R1}").json()
    assert (contract["status"], contract["invoiced_total"]) == ("cancelled", "150.00")
    assert [i["invoice_no"] for i in contract["invoices"]] == ["INV-1", "INV-2", "INV-3"]


def test_a_batch_of_1000_commands_is_stored(
    client: TestClient, reader: TestClient, tokens: Tokens
) -> None:
    commands = [{"op": "file_broker", "body": broker_body(f"B-{i:04d}")} for i in range(1000)]

    answer = _created(
        client.post("/v1/batch", json={"commands": commands}, headers=tokens.header("bureau"))
    )

    assert answer == {"positions": [1, 1000], "count": 1000}
    assert [e["subject"] for e in _events(reader)] == [f"B-{i:04d}" for i in range(1000)]


def test_a_batch_larger_than_a_store_chunk_is_stored_chained_and_listed_whole(
    client: TestClient, reader: TestClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "STORE_CHUNK", 3)  # the writer stores 3 events at a time
    commands = [
        register(R1),
        invoice(R1, "INV-1"),
        register(R2, seller=OUTSIDE_UNIVERSITY),
        transfer(R1, "BANK-1"),
        invoice(R2, "INV-2", issuer_credit_code=OUTSIDE_UNIVERSITY["credit_code"]),
        invoice(R1, "INV-3", "100.00"),
        amend(R2, title="改"),
    ]

    answer = _created(client.post("/v1/batch", json={"commands": commands}))

    assert answer == {"positions": [1, 7], "count": 7}
    entries = _events(reader)
    assert [e["position"] for e in entries] == list(range(1, 8))
    assert [e["prev_hash"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    registry = Registry(database_url)
    try:
        verdict = list(registry.verify())[-1]
    finally:
        registry.close()
    assert (verdict["ok"], verdict["checked"]) == (True, 7)
    listed = {c["registration_no"]: c for c in client.get("/v1/contracts").json()["contracts"]}
    assert (listed[R1]["invoices"], listed[R1]["transfer_proofs"]) == (2, 1)
    assert (listed[R2]["invoices"], listed[R2]["title"]) == (1, "改")


# -- or none of them -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commands", "status", "index", "field", "words"),
    [
        pytest.param(
            [
                register(R1),
                invoice(R1, "INV-1", issuer_credit_code=OUTSIDE_ENTERPRISE["credit_code"]),
            ],
            422,
            1,
            "issuer_credit_code",
            ("seller",),
            id="invoice-not-issued-by-the-seller",
        ),
        pytest.param(
            [register(R1), transfer(R1, "BANK-1", payer_credit_code=UNIVERSITY["credit_code"])],
            422,
            1,
            "payer_credit_code",
            ("buyer",),
            id="transfer-not-paid-by-the-buyer",
        ),
        pytest.param(
            [register(R1), invoice(R1, "INV-1"), invoice(R1, "INV-2", "600000.01")],
            422,
            2,
            "amount",
            ("more than the contract amount",),
            id="invoices-over-the-contract-amount-within-the-batch",
        ),
        pytest.param(
            [invoice(EXISTING, "INV-1"), amend(EXISTING, contract_amount="1000000.00")],
            422,
            1,
            "contract_amount",
            ("below the evidence already recorded",),
            id="amendment-below-evidence-recorded-earlier-in-the-batch",
        ),
        pytest.param(
            [register(R1), register(R2), register(R1)],
            409,
            2,
            "registration_no",
            ("already used",),
            id="registration-number-used-earlier-in-the-batch",
        ),
        pytest.param(
            [register(R1), register(EXISTING)],
            409,
            1,
            "registration_no",
            ("already used",),
            id="registration-number-already-stored",
        ),
        pytest.param(
            [register(R1), register(R2), invoice(R1, "INV-9"), invoice(R2, "INV-9")],
            409,
            3,
            "invoice_no",
            (f"already recorded on contract {R1}",),
            id="invoice-number-used-earlier-in-the-batch-on-another-contract",
        ),
        pytest.param(
            [register(R1), invoice(R1, "INV-0")],
            409,
            1,
            "invoice_no",
            (f"already recorded on contract {EXISTING}",),
            id="invoice-number-already-stored-on-another-contract",
        ),
        pytest.param(
            [register(R1), transfer(R1, "BANK-1"), transfer(EXISTING, "BANK-1", "1.00")],
            409,
            2,
            "serial_no",
            ("already recorded",),
            id="bank-serial-used-earlier-in-the-batch",
        ),
        pytest.param(
            [register(R1), cancel(R1), invoice(R1, "INV-1")],
            409,
            2,
            "registration_no",
            ("cancelled",),
            id="invoice-on-a-contract-cancelled-earlier-in-the-batch",
        ),
        pytest.param(
            [register(R1), invoice(R2, "INV-1")],
            404,
            1,
            "registration_no",
            (R2,),
            id="invoice-on-an-unknown-contract",
        ),
        pytest.param(
            [register(R1), void(R1, "INV-0")],
            404,
            1,
            "invoice_no",
            ("INV-0",),
            id="void-of-an-invoice-on-another-contract",
        ),
        pytest.param(
            [register(R1), register(R2, station_id="S2")],
            403,
            1,
            "station_id",
            ("own id",),
            id="registration-under-another-station",
        ),
        pytest.param(
            [register(R1), {"op": "file_broker", "body": broker_body()}],
            403,
            1,
            None,
            ("science bureau",),
            id="station-filing-a-broker",
        ),
    ],
)
def test_a_batch_with_a_failing_command_stores_nothing_and_names_its_index(
    client: TestClient,
    existing: dict[str, Any],
    commands: list[dict[str, Any]],
    status: int,
    index: int,
    field: str,
    words: tuple[str, ...],
) -> None:
    response = client.post("/v1/batch", json={"commands": commands})

    _refused_at(response, status, index, field, *words)
    assert _head(client) == 2
    assert client.get(f"/v1/contracts/{EXISTING}").json() == existing
    for no in (R1, R2):
        assert client.get(f"/v1/contracts/{no}").status_code == 404


@pytest.mark.parametrize(
    ("command", "field", "words"),
    [
        pytest.param(
            register(
                R2,
                seller={
                    **UNIVERSITY,
                    "credit_code": with_wrong_check_character(UNIVERSITY["credit_code"]),
                },
            ),
            "seller.credit_code",
            ("check character",),
            id="credit-code-check-character",
        ),
        pytest.param(
            register(R2, contract_type="research"),
            "contract_type",
            ("development",),
            id="unknown-contract-type",
        ),
        pytest.param(
            invoice(R1, "INV-1", amount=600000),
            "amount",
            ("not a number",),
            id="amount-as-a-number",
        ),
        pytest.param(
            invoice(R1, "INV-1", issued_on="2024-02-30"),
            "issued_on",
            ("valid date",),
            id="impossible-date",
        ),
        pytest.param(
            {"op": "record_invoice", "body": invoice_body("INV-1")},
            "registration_no",
            ("required",),
            id="path-parameter-missing",
        ),
        pytest.param(
            {"op": "void_invoice", "body": {**void_body(), "registration_no": R1}},
            "invoice_no",
            ("required",),
            id="invoice-number-missing-from-a-void",
        ),
        pytest.param(
            {
                "op": "record_invoice",
                "body": {**invoice_body("INV-1"), "registration_no": R1, "x": 1},
            },
            "x",
            ("not permitted",),
            id="unknown-field",
        ),
    ],
)
def test_a_bad_body_inside_a_batch_is_refused_naming_its_index_and_field(
    client: TestClient,
    existing: dict[str, Any],
    command: dict[str, Any],
    field: str,
    words: tuple[str, ...],
) -> None:
    commands = [register(R1), invoice(R1, "INV-A", "1.00"), command]

    response = client.post("/v1/batch", json={"commands": commands})

    _refused_at(response, 422, 2, field, *words)
    assert _head(client) == 2
    assert client.get(f"/v1/contracts/{R1}").status_code == 404


def test_a_batch_with_an_unknown_op_is_refused_naming_its_index_and_stores_nothing(
    client: TestClient, existing: dict[str, Any]
) -> None:
    commands = [register(R1), {"op": "delete_contract", "body": {"registration_no": R1}}]

    response = client.post("/v1/batch", json={"commands": commands})

    _refused_at(response, 422, 1, "op", "register_contract", "file_broker")
    assert _head(client) == 2
    assert client.get(f"/v1/contracts/{R1}").status_code == 404


@pytest.mark.parametrize(
    ("body", "index", "field", "words"),
    [
        pytest.param(
            {"commands": [{"op": "file_broker", "body": {}}] * 1001},
            None,
            "commands",
            ("at most 1000",),
            id="1001-commands",
        ),
        pytest.param({"commands": []}, None, "commands", ("at least 1",), id="no-commands"),
        pytest.param({}, None, "commands", ("required",), id="commands-missing"),
        pytest.param(
            {"commands": [register(R1)], "atomic": False},
            None,
            "atomic",
            ("not permitted",),
            id="extra",
        ),
        pytest.param(
            {"commands": [register(R1), {**register(R2), "index": 1}]},
            1,
            "index",
            ("not permitted",),
            id="extra-in-command",
        ),
    ],
)
def test_a_malformed_batch_is_refused_and_stores_nothing(
    client: TestClient,
    tokens: Tokens,
    existing: dict[str, Any],
    body: dict[str, Any],
    index: int | None,
    field: str,
    words: tuple[str, ...],
) -> None:
    response = client.post("/v1/batch", json=body, headers=tokens.header("bureau"))

    _refused_at(response, 422, index, field, *words)
    assert _head(client) == 2


def test_a_refused_batch_leaves_nothing_behind_for_the_writes_after_it(
    client: TestClient, reader: TestClient, existing: dict[str, Any]
) -> None:
    doomed = [
        register(R1),
        invoice(EXISTING, "INV-1"),  # would fill the existing contract to its amount
        transfer(EXISTING, "BANK-1", "1200000.00"),
        register(R1),
    ]
    refused = client.post("/v1/batch", json={"commands": doomed})

    retried = [register(R1), invoice(EXISTING, "INV-1"), transfer(EXISTING, "BANK-1", "1.00")]
    answer = _created(client.post("/v1/batch", json={"commands": retried}))
    single = client.post(
        f"/v1/contracts/{EXISTING}/transfer-proofs", json=transfer_body("BANK-2", "1199999.00")
    )

    _refused_at(refused, 409, 3, "registration_no", "already used")
    assert answer == {"positions": [3, 5], "count": 3}
    assert _created(single)["position"] == 6
    assert [e["subject"] for e in _events(reader, after=2)] == [R1, EXISTING, EXISTING, EXISTING]


# -- reading the log page by page ----------------------------------------------------------------


def test_paging_with_next_after_sees_every_event_exactly_once_while_writes_go_on(
    client: TestClient, reader: TestClient, tokens: Tokens
) -> None:
    brokers = tokens.header("bureau")
    for round_ in range(3):
        commands = [register(f"R{round_}-{i}") for i in range(4)]
        _created(client.post("/v1/batch", json={"commands": commands}))
    seen: list[int] = []
    after, writes = 0, 0
    while True:
        page = reader.get("/v1/events", params={"after": after, "limit": 5}).json()
        if not page["events"]:
            break
        seen += [e["position"] for e in page["events"]]
        assert page["next_after"] == page["events"][-1]["position"]
        assert page["head"] >= page["next_after"]
        after = page["next_after"]
        if writes < 3:  # the log grows while it is read
            _created(client.post("/v1/brokers", json=broker_body(f"B-{writes}"), headers=brokers))
            writes += 1

    everything = [e["position"] for e in _events(reader)]
    assert len(everything) == 15
    assert seen == everything
    assert len(set(seen)) == len(seen)
    last = reader.get("/v1/events", params={"after": after, "limit": 5}).json()
    assert (last["events"], last["next_after"], last["head"]) == ([], after, everything[-1])
