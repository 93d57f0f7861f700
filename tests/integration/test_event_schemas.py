"""Every envelope the registry emits validates against schemas/envelope.v1.json."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import JSONTranscoder

from services.common.schemas import envelope_validator
from services.registry.application import Registry
from services.registry.commands import Command, Principal
from services.registry.log import EVENT_TYPES, event_type
from tests.support.parties import credit_code

SELLER = {
    "credit_code": credit_code("12410400MB1234567"),
    "name": "平顶山学院",
    "kind": "university",
    "region_code": "410402",
}
BUYER = {
    "credit_code": credit_code("91410400MA1234567"),
    "name": "平顶山某某科技有限公司",
    "kind": "enterprise",
    "region_code": "410403",
}
STATION = Principal("station-S1", "station", "S1")
BUREAU = Principal("bureau", "bureau")
FINANCE = Principal("finance", "finance")

COMMANDS: list[tuple[Principal, str, dict[str, Any]]] = [
    (
        BUREAU,
        "file_broker",
        {
            "broker_id": "B1",
            "name": "张三",
            "organisation_credit_code": SELLER["credit_code"],
            "filed_on": "2024-01-10",
        },
    ),
    (
        BUREAU,
        "record_provincial_funding",
        {
            "credit_code": SELLER["credit_code"],
            "year": 2024,
            "programme": "河南省重大科技专项",
            "amount_fen": 50_000_000,
        },
    ),
    (
        BUREAU,
        "recognise_institution",
        {
            "credit_code": SELLER["credit_code"],
            "name": "平顶山学院技术转移中心",
            "level": "provincial",
            "recognised_on": "2024-01-15",
            "document_no": "豫科〔2024〕8号",
        },
    ),
    (
        BUREAU,
        "decide_grant",
        {
            "grant_no": "YC-2024-001",
            "credit_code": SELLER["credit_code"],
            "programme": "demonstration_institution",
            "amount_fen": 20_000_000,
            "decided_on": "2024-02-01",
            "document_no": "平科〔2024〕3号",
        },
    ),
    (
        STATION,
        "register_contract",
        {
            "registration_no": "2024410400000001",
            "station_id": "S1",
            "registered_on": "2024-03-01",
            "signed_on": "2024-02-01",
            "title": "智能矿山传感器技术开发",
            "contract_type": "development",
            "domain": "电子信息",
            "seller": SELLER,
            "buyer": BUYER,
            "brokers": ["B1"],
            "contract_amount_fen": 100_000_00,
            "technology_amount_fen": 90_000_00,
            "related_party": False,
            "certificate_no": "410400-2024-000123",
        },
    ),
    (
        STATION,
        "amend_contract",
        {
            "registration_no": "2024410400000001",
            "amended_on": "2024-04-01",
            "reason": "补充协议",
            "changes": {"contract_amount_fen": 120_000_00, "title": "智能矿山传感器"},
        },
    ),
    (
        STATION,
        "record_invoice",
        {
            "registration_no": "2024410400000001",
            "invoice_no": "INV-1",
            "issued_on": "2024-04-02",
            "amount_fen": 60_000_00,
            "issuer_credit_code": SELLER["credit_code"],
            "recipient_credit_code": BUYER["credit_code"],
        },
    ),
    (
        STATION,
        "void_invoice",
        {
            "registration_no": "2024410400000001",
            "invoice_no": "INV-1",
            "voided_on": "2024-04-03",
            "reason": "金额有误",
        },
    ),
    (
        STATION,
        "record_transfer_proof",
        {
            "registration_no": "2024410400000001",
            "serial_no": "SN-1",
            "paid_on": "2024-04-05",
            "amount_fen": 60_000_00,
            "payer_credit_code": BUYER["credit_code"],
            "payee_credit_code": SELLER["credit_code"],
            "bank": "中国银行平顶山分行",
            "currency": "CNY",
        },
    ),
    (
        STATION,
        "withdraw_transfer_proof",
        {
            "registration_no": "2024410400000001",
            "serial_no": "SN-1",
            "withdrawn_on": "2024-04-06",
            "reason": "重复录入",
        },
    ),
    (
        STATION,
        "cancel_contract",
        {
            "registration_no": "2024410400000001",
            "cancelled_on": "2024-05-01",
            "reason": "合同解除",
        },
    ),
    (
        FINANCE,
        "record_payout",
        {
            "payout_no": "ZF-2025-001",
            "year": 2024,
            "paid_on": "2025-06-30",
            "basis_position": 9,
            "lines": [
                {
                    "beneficiary": BUYER["credit_code"],
                    "category": "absorption",
                    "amount_fen": 5_000_00,
                    "kind": "payment",
                },
                {"beneficiary": "B1", "category": "broker", "amount_fen": 300, "kind": "recovery"},
            ],
        },
    ),
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Registry:
    db: Path = tmp_path_factory.mktemp("registry") / "registry.db"
    app = Registry(f"sqlite:///{db}")
    request.addfinalizer(app.close)
    app.start()
    for principal, op, args in COMMANDS:
        app.submit(principal, [Command(op, args)]).result(timeout=30)
    return app


@pytest.fixture(scope="module")
def envelopes(registry: Registry) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = registry.read_log(0, 100)["events"]
    return events


def test_every_stored_event_is_encoded_as_the_librarys_own_transcoder_would(
    registry: Registry,
) -> None:
    # The registry encodes with orjson for speed; the bytes must stay the library's.
    library = JSONTranscoder()
    registry.register_transcodings(library)
    stored = registry.recorder.select_notifications(start=1, limit=100)
    assert {event_type(n.topic) for n in stored} == set(EVENT_TYPES)
    ours = registry.mapper.transcoder
    assert type(ours) is not JSONTranscoder
    for notification in stored:
        state = library.decode(notification.state)
        assert isinstance(state["timestamp"], datetime), "the timestamp lost its type tag"
        assert ours.encode(state) == library.encode(state) == notification.state


def test_every_event_the_registry_emits_validates_against_its_schema(
    envelopes: list[dict[str, Any]],
) -> None:
    validator = envelope_validator()
    listed = validator.schema["properties"]["type"]["enum"]
    for envelope in envelopes:
        if envelope["type"] in listed:
            errors = [e.message for e in validator.iter_errors(envelope)]
        else:  # until the envelope lists every type of schemas/events/: its payload alone
            kind = f"https://tcr.example/schemas/events/{envelope['type']}.v1.json"
            payload = validator.evolve(schema={"$ref": kind})
            errors = [e.message for e in payload.iter_errors(envelope["payload"])]
        assert errors == [], (envelope["type"], errors)


def test_the_registry_emits_every_event_type_the_schemas_describe(
    envelopes: list[dict[str, Any]],
) -> None:
    assert len(envelopes) == len(COMMANDS)
    assert {e["type"] for e in envelopes} == set(EVENT_TYPES)
    assert len(EVENT_TYPES) == 12


def _by_type(envelopes: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(e for e in envelopes if e["type"] == kind))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, leaf = path.split(".")

    def tamper(envelope: dict[str, Any]) -> None:
        target: Any = envelope
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[leaf] = value

    return tamper


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, leaf = path.split(".")

    def tamper(envelope: dict[str, Any]) -> None:
        target = envelope
        for key in parents:
            target = target[key]
        del target[leaf]

    return tamper


TAMPERINGS = {
    "amount as a yuan string": ("InvoiceRecorded", _set("payload.amount_fen", "600000.00")),
    "amount zero": ("TransferProofRecorded", _set("payload.amount_fen", 0)),
    "amount as a float": ("ProvincialFundingRecorded", _set("payload.amount_fen", 1.5)),
    "unknown payload field": ("ContractCancelled", _set("payload.approved_by", "someone")),
    "missing payload field": ("InvoiceVoided", _delete("payload.reason")),
    "unknown contract type": ("ContractRegistered", _set("payload.contract_type", "sale")),
    "unknown party kind": ("ContractRegistered", _set("payload.seller.kind", "government")),
    "credit code of 16 characters": (
        "BrokerFiled",
        _set("payload.organisation_credit_code", "91410400MA123456"),
    ),
    "bad region code": ("ContractRegistered", _set("payload.buyer.region_code", "4104")),
    "date not a real day": ("TransferProofWithdrawn", _set("payload.withdrawn_on", "2024-02-30")),
    "amendment changing nothing": ("ContractAmended", _set("payload.changes", {})),
    "amendment of an unamendable field": (
        "ContractAmended",
        _set("payload.changes.seller", BUYER),
    ),
    "payload of another type": ("InvoiceVoided", _set("type", "ContractCancelled")),
    "unknown event type": ("BrokerFiled", _set("type", "BrokerRevoked")),
    "unknown envelope field": ("BrokerFiled", _set("signature", "x")),
    "schema version 2": ("BrokerFiled", _set("schema_version", 2)),
    "schema version 3 of a type with 2": ("ContractRegistered", _set("schema_version", 3)),
    "version 2 fields under version 1": ("TransferProofRecorded", _set("schema_version", 1)),
    "version 2 without a field it added": (
        "ContractRegistered",
        _delete("payload.certificate_no"),
    ),
    "certificate number in lower case": (
        "ContractRegistered",
        _set("payload.certificate_no", "410400-2024-00012a"),
    ),
    "currency other than CNY": ("TransferProofRecorded", _set("payload.currency", "USD")),
    "hash not hex": ("BrokerFiled", _set("hash", "Z" * 64)),
    "recorded_at without zone": ("BrokerFiled", _set("recorded_at", "2024-01-10T08:00:00.000000")),
    "position zero": ("BrokerFiled", _set("position", 0)),
    "payout without lines": ("PayoutRecorded", _set("payload.lines", [])),
    "payout line neither payment nor recovery": (
        "PayoutRecorded",
        _set("payload.lines.0.kind", "refund"),
    ),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_a_tampered_envelope_fails_validation(
    envelopes: list[dict[str, Any]], tampering: str
) -> None:
    kind, tamper = TAMPERINGS[tampering]
    envelope = _by_type(envelopes, kind)
    assert envelope_validator().is_valid(envelope)
    tamper(envelope)
    assert not envelope_validator().is_valid(envelope)


def test_a_transfer_proof_may_name_no_bank(envelopes: list[dict[str, Any]]) -> None:
    envelope = _by_type(envelopes, "TransferProofRecorded")
    envelope["payload"]["bank"] = None
    assert envelope_validator().is_valid(envelope)


@pytest.mark.parametrize(
    ("kind", "added"),
    [("ContractRegistered", "certificate_no"), ("TransferProofRecorded", "currency")],
)
def test_a_version_1_payload_as_the_registry_wrote_it_before_version_2_still_validates(
    envelopes: list[dict[str, Any]], kind: str, added: str
) -> None:
    envelope = _by_type(envelopes, kind)
    assert envelope["schema_version"] == 2
    del envelope["payload"][added]
    envelope["schema_version"] = 1
    assert envelope_validator().is_valid(envelope)
