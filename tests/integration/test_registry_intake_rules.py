"""Rules of station intake: the bureau registers only for stations that exist, corrections
are not dated before the registration, and a broker not filed yet is accepted with a warning."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.common.tokens import add_principal
from tests.conftest import Tokens
from tests.support.parties import (
    amendment_body,
    broker_body,
    cancellation_body,
    contract_body,
)

NO = "2024410400000001"  # registered 2024-03-01, signed 2024-02-01


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# -- the bureau registers for stations that exist ------------------------------------------------


def test_the_bureau_may_not_register_under_a_station_id_no_token_holds(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post(
        "/v1/contracts", json=contract_body(station_id="S9"), headers=tokens.header("bureau")
    )

    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["field"], body["rule"]) == ("station_id", "unknown_station")
    assert "S9" in body["message"] and "S9" in body["message_zh"]
    assert _head(client) == 0


def test_the_bureau_registers_for_any_station_in_the_tokens_file_even_one_added_just_now(
    client: TestClient, tokens: Tokens
) -> None:
    bureau = tokens.header("bureau")
    _created(client.post("/v1/contracts", json=contract_body(station_id="S2"), headers=bureau))
    add_principal(tokens.path, "station-s9", "station", "S9")

    added = client.post(
        "/v1/contracts", json=contract_body("R-S9", station_id="S9"), headers=bureau
    )

    assert _created(added)["subject"] == "R-S9"


# -- corrections are not dated before the registration ------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param(
            "amendments",
            amendment_body(title="更正", amended_on="2024-02-15"),
            "amended_on",
            id="amendment",
        ),
        pytest.param(
            "cancellation",
            cancellation_body(cancelled_on="2024-02-15"),
            "cancelled_on",
            id="cancellation",
        ),
    ],
)
def test_a_correction_dated_after_signing_but_before_the_registration_is_refused(
    client: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    _created(client.post("/v1/contracts", json=contract_body()))
    before = client.get(f"/v1/contracts/{NO}").json()

    response = client.post(f"/v1/contracts/{NO}/{path}", json=body)

    assert response.status_code == 422, response.text
    refused = response.json()
    assert (refused["field"], refused["rule"]) == (field, "not_before_registration")
    assert "2024-03-01" in refused["message"] and "登记日期" in refused["message_zh"]
    assert client.get(f"/v1/contracts/{NO}").json() == before


@pytest.mark.parametrize(("path", "body"), [
    ("amendments", amendment_body(title="更正", amended_on="2024-03-01")),
    ("cancellation", cancellation_body(cancelled_on="2024-03-01")),
])  # fmt: skip
def test_a_correction_on_the_day_of_registration_is_accepted(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    _created(client.post("/v1/contracts", json=contract_body()))

    _created(client.post(f"/v1/contracts/{NO}/{path}", json=body))


# -- a broker not filed yet ----------------------------------------------------------------------


def test_a_contract_naming_a_broker_not_filed_yet_is_stored_with_a_warning(
    client: TestClient,
) -> None:
    answer = _created(client.post("/v1/contracts", json=contract_body(brokers=["B-0009"])))

    assert answer["type"] == "ContractRegistered"
    (warning,) = answer["warnings"]
    assert (warning["field"], warning["rule"]) == ("brokers.0", "broker_not_filed")
    assert "B-0009" in warning["message"] and "备案" in warning["message_zh"]
    assert client.get(f"/v1/contracts/{NO}").json()["brokers"] == ["B-0009"]


def test_a_contract_naming_filed_brokers_has_no_warning(client: TestClient, tokens: Tokens) -> None:
    _created(
        client.post("/v1/brokers", json=broker_body("B-0001"), headers=tokens.header("bureau"))
    )

    answer = _created(client.post("/v1/contracts", json=contract_body(brokers=["B-0001"])))

    assert "warnings" not in answer


def test_an_amendment_naming_a_broker_not_filed_yet_warns_for_that_broker_alone(
    client: TestClient, tokens: Tokens
) -> None:
    _created(
        client.post("/v1/brokers", json=broker_body("B-0001"), headers=tokens.header("bureau"))
    )
    _created(client.post("/v1/contracts", json=contract_body()))

    answer = _created(
        client.post(
            f"/v1/contracts/{NO}/amendments", json=amendment_body(brokers=["B-0001", "B-0002"])
        )
    )

    assert [(w["field"], w["rule"]) for w in answer["warnings"]] == [
        ("brokers.1", "broker_not_filed")
    ]


def test_a_batch_answers_each_commands_warnings_by_index_and_sees_brokers_filed_before_them(
    client: TestClient, tokens: Tokens
) -> None:
    commands = [
        {"op": "register_contract", "body": contract_body("R1", brokers=["B-0001"])},
        {"op": "file_broker", "body": broker_body("B-0001")},
        {"op": "register_contract", "body": contract_body("R2", brokers=["B-0001", "B-0007"])},
    ]

    answer = _created(
        client.post("/v1/batch", json={"commands": commands}, headers=tokens.header("bureau"))
    )

    assert answer["count"] == 3
    assert [(w["index"], w["field"], w["rule"]) for w in answer["warnings"]] == [
        (0, "brokers.0", "broker_not_filed"),
        (2, "brokers.1", "broker_not_filed"),
    ]
