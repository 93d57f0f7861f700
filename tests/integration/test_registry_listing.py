"""``GET /v1/contracts``: the listing, searched, filtered, paged and scoped, on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from services.registry.application import Registry
from services.registry.listing import ListingQuery
from services.registry.migrations import CONTRACT_ROWS
from services.registry.store import contracts, migrations
from tests.conftest import Tokens
from tests.support.parties import (
    OUTSIDE_ENTERPRISE,
    OUTSIDE_UNIVERSITY,
    UNIVERSITY,
    cancellation_body,
    contract_body,
    invoice_body,
)

# (registration no, registered on, title, buyer): stored in this order, listed by date.
CONTRACTS = [
    ("2024410400000001", "2024-03-01", "煤矿智能巡检机器人技术开发", None),
    ("2024410400000002", "2024-05-10", "尼龙新材料中试技术转让", OUTSIDE_ENTERPRISE),
    ("2024410400000003", "2024-01-15", "Smart Grid 100% Consulting_Service", None),
    ("2024410400000004", "2024-05-10", "陶瓷釉料配方技术许可", OUTSIDE_UNIVERSITY),
]


def _register(client: TestClient, tokens: Tokens) -> None:
    for number, day, title, buyer in CONTRACTS:
        extra: dict[str, Any] = {"buyer": buyer} if buyer else {}
        body = contract_body(
            number, registered_on=day, signed_on="2024-01-02", title=title, **extra
        )
        answer = client.post("/v1/contracts", json=body)
        assert answer.status_code == 201, answer.text
    other = contract_body("2024410400000099", station_id="S2", title="另一站点的巡检合同")
    answer = client.post("/v1/contracts", json=other, headers=tokens.header("other_station"))
    assert answer.status_code == 201, answer.text


def _numbers(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [c["registration_no"] for c in answer.json()["contracts"]]


@pytest.fixture
def listed(client: TestClient, tokens: Tokens) -> TestClient:
    _register(client, tokens)
    return client


def test_a_station_lists_its_own_contracts_newest_registration_first(listed: TestClient) -> None:
    answer = listed.get("/v1/contracts")

    assert _numbers(answer) == [
        "2024410400000004",  # 2024-05-10, the larger number first
        "2024410400000002",
        "2024410400000001",
        "2024410400000003",
    ]
    assert answer.json()["next_cursor"] is None
    first = answer.json()["contracts"][2]
    assert first == {
        "registration_no": "2024410400000001",
        "station_id": "S1",
        "registered_on": "2024-03-01",
        "signed_on": "2024-01-02",
        "title": "煤矿智能巡检机器人技术开发",
        "contract_type": "development",
        "seller": {"name": UNIVERSITY["name"], "credit_code": UNIVERSITY["credit_code"]},
        "buyer": {"name": "平顶山煤矿机械有限公司", "credit_code": first["buyer"]["credit_code"]},
        "contract_amount": "1200000.00",
        "technology_amount": "1000000.00",
        "status": "active",
        "invoiced_total": "0.00",
        "paid_total": "0.00",
        "invoices": 0,
        "transfer_proofs": 0,
    }


def test_evidence_and_cancellation_change_the_row_in_the_same_write(listed: TestClient) -> None:
    no = "2024410400000001"
    assert listed.post(f"/v1/contracts/{no}/invoices", json=invoice_body()).status_code == 201
    assert (
        listed.post(f"/v1/contracts/{no}/cancellation", json=cancellation_body()).status_code == 201
    )

    (row,) = listed.get("/v1/contracts", params={"q": no}).json()["contracts"]

    assert (row["status"], row["invoiced_total"], row["invoices"]) == ("cancelled", "600000.00", 1)
    assert _numbers(listed.get("/v1/contracts", params={"status": "cancelled"})) == [no]
    active = _numbers(listed.get("/v1/contracts", params={"status": "active"}))
    assert no not in active and len(active) == 3


# q: what it finds (listed by S1, so never S2's contract).
SEARCHES = [
    ("00000002", ["2024410400000002"]),  # part of a registration number
    ("巡检", ["2024410400000001"]),  # part of a title (S2's "巡检" contract is not S1's)
    ("smart grid", ["2024410400000003"]),  # case aside
    ("100%", ["2024410400000003"]),  # % and _ are themselves, not wildcards
    ("d_1", []),  # would match "grid 100" if _ were a wildcard
    ("北京理工", ["2024410400000004"]),  # a buyer's name
    ("平顶山学院", ["2024410400000004", "2024410400000002", "2024410400000001",
                   "2024410400000003"]),  # the seller of all four
]  # fmt: skip


def test_q_matches_number_title_and_party_names(listed: TestClient) -> None:
    found = {q: _numbers(listed.get("/v1/contracts", params={"q": q})) for q, _ in SEARCHES}
    assert found == dict(SEARCHES)


def test_party_matches_the_seller_or_the_buyer_credit_code(listed: TestClient) -> None:
    buyer = OUTSIDE_ENTERPRISE["credit_code"]
    assert _numbers(listed.get("/v1/contracts", params={"party": buyer})) == ["2024410400000002"]
    seller = UNIVERSITY["credit_code"]
    assert len(_numbers(listed.get("/v1/contracts", params={"party": seller}))) == 4
    assert _numbers(listed.get("/v1/contracts", params={"party": "91000000MA00000000"})) == []


def test_registration_dates_bound_the_listing_inclusively(listed: TestClient) -> None:
    answer = listed.get(
        "/v1/contracts", params={"registered_from": "2024-03-01", "registered_to": "2024-05-09"}
    )
    assert _numbers(answer) == ["2024410400000001"]
    later = listed.get("/v1/contracts", params={"registered_from": "2024-05-10"})
    assert _numbers(later) == ["2024410400000004", "2024410400000002"]


@pytest.mark.parametrize("params", [{}, {"party": UNIVERSITY["credit_code"]}, {"q": "2024"}])
def test_pages_follow_their_cursors_to_the_whole_listing(
    listed: TestClient, params: dict[str, str]
) -> None:
    whole = _numbers(listed.get("/v1/contracts", params=params))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        answer = listed.get("/v1/contracts", params={**params, "limit": 3, "cursor": cursor})
        seen += _numbers(answer)
        pages += 1
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert len(whole) == 4 and seen == whole and pages == 2


def test_a_station_sees_only_its_own_and_the_bureau_every_station(
    listed: TestClient, tokens: Tokens
) -> None:
    s2 = tokens.header("other_station")
    assert _numbers(listed.get("/v1/contracts", headers=s2)) == ["2024410400000099"]
    # Another station's id answers an empty page, not its contracts.
    assert _numbers(listed.get("/v1/contracts", params={"station": "S1"}, headers=s2)) == []
    assert _numbers(listed.get("/v1/contracts", params={"q": "巡检"}, headers=s2)) == [
        "2024410400000099"
    ]
    bureau = tokens.header("bureau")
    assert len(_numbers(listed.get("/v1/contracts", headers=bureau))) == 5
    only_s2 = listed.get("/v1/contracts", params={"station": "S2"}, headers=bureau)
    assert _numbers(only_s2) == ["2024410400000099"]
    assert listed.get("/v1/contracts", headers={"Authorization": "Bearer nope"}).status_code == 401


BAD_PARAMETERS = [
    ({"registered_from": "2024-13-01"}, "registered_from"),
    ({"registered_to": "1 May 2024"}, "registered_to"),
    ({"registered_to": ""}, "registered_to"),
    ({"registered_from": "2024-06-01", "registered_to": "2024-05-01"}, "registered_to"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"status": "registered"}, "status"),
    ({"cursor": "not-a-cursor"}, "cursor"),
]


def test_bad_parameters_are_refused_naming_the_parameter(listed: TestClient) -> None:
    for params, field in BAD_PARAMETERS:
        answer = listed.get("/v1/contracts", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["field"] == field, (params, answer.text)
        assert answer.json()["message"]


def test_contracts_stored_before_the_listing_are_listed_after_a_restart(
    database_url: str, listed: TestClient, tokens: Tokens
) -> None:
    registry: Registry = listed.app.state.registry  # type: ignore[attr-defined]
    with registry.engine.begin() as conn:  # as a store from before the listing was
        conn.execute(delete(contracts))
        conn.execute(delete(migrations).where(migrations.c.name == CONTRACT_ROWS))
    assert _numbers(listed.get("/v1/contracts")) == []

    reopened = Registry(database_url)
    try:
        page = reopened.contracts(None)
        assert page == {"contracts": [], "next_cursor": None}
        everything = reopened.contracts(ListingQuery.parse())
    finally:
        reopened.close()
    assert len(everything["contracts"]) == 5
    assert everything["contracts"][0]["registration_no"] == "2024410400000004"
