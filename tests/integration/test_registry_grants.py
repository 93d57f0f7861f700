"""Demonstration institutions (技术转移示范机构认定) and one-time grants (一次性补助): the bureau
alone records them, every rule is refused naming its field, and a refusal stores nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tokens
from tests.integration.test_registry_bad_input import assert_invalid
from tests.support.parties import UNIVERSITY, credit_code, with_wrong_check_character

INSTITUTION = UNIVERSITY["credit_code"]
BASE = credit_code("91410400MA0000077")  # an enterprise running a pilot base
TOMORROW = (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)).isoformat()


def institution_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "credit_code": INSTITUTION,
        "name": "平顶山学院技术转移中心",
        "level": "provincial",
        "recognised_on": "2021-06-30",
        "document_no": "豫科〔2021〕88号",
    }
    return {**body, **overrides}


def grant_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "grant_no": "YC-2021-001",
        "credit_code": INSTITUTION,
        "programme": "demonstration_institution",
        "amount": "200000.00",
        "decided_on": "2021-09-30",
        "document_no": "平科〔2021〕15号",
    }
    return {**body, **overrides}


@pytest.fixture
def bureau(client: TestClient, tokens: Tokens) -> TestClient:
    client.headers.update(tokens.header("bureau"))
    return client


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def test_a_recognition_and_a_grant_are_stored_as_events_with_the_amount_in_fen(
    bureau: TestClient,
) -> None:
    recognised = bureau.post("/v1/demonstration-institutions", json=institution_body())
    granted = bureau.post("/v1/one-time-grants", json=grant_body())

    assert recognised.status_code == 201, recognised.text
    assert granted.status_code == 201, granted.text
    assert (recognised.json()["type"], recognised.json()["subject"]) == (
        "DemonstrationInstitutionRecognised",
        INSTITUTION,
    )
    assert (granted.json()["type"], granted.json()["subject"]) == (
        "OneTimeGrantDecided",
        "YC-2021-001",
    )
    events = bureau.get("/v1/events").json()["events"]
    assert events[0]["payload"] == institution_body()
    assert events[1]["payload"] == {
        **{k: v for k, v in grant_body().items() if k != "amount"},
        "amount_fen": 20_000_000,
    }


@pytest.mark.parametrize("who", ["station", "finance", "auditor"])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/demonstration-institutions", institution_body()),
        ("/v1/one-time-grants", grant_body(programme="pilot_base", credit_code=BASE)),
    ],
)
def test_only_the_bureau_records_institutions_and_grants(
    client: TestClient, tokens: Tokens, who: str, path: str, body: dict[str, Any]
) -> None:
    refused = client.post(path, json=body, headers=tokens.header(who))

    assert refused.status_code == 403, refused.text
    assert "only the science bureau" in refused.json()["message"]
    assert _head(client) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"credit_code": with_wrong_check_character(INSTITUTION)}, "credit_code"),
        ({"credit_code": "12410400MB000000"}, "credit_code"),
        ({"level": "county"}, "level"),
        ({"recognised_on": TOMORROW}, "recognised_on"),
        ({"recognised_on": "2021-02-30"}, "recognised_on"),
        ({"name": ""}, "name"),
        ({"document_no": "豫科\n88号"}, "document_no"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_recognition_is_refused_naming_the_field_and_nothing_is_stored(
    bureau: TestClient, overrides: dict[str, Any], field: str
) -> None:
    refused = bureau.post("/v1/demonstration-institutions", json=institution_body(**overrides))

    assert_invalid(refused, field)
    assert _head(bureau) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"credit_code": with_wrong_check_character(BASE)}, "credit_code"),
        ({"programme": "incubator"}, "programme"),
        ({"amount": "0.00"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "100.001"}, "amount"),
        ({"amount": 100}, "amount"),
        ({"decided_on": TOMORROW}, "decided_on"),
        ({"grant_no": "YC/1"}, "grant_no"),
        ({"document_no": ""}, "document_no"),
    ],
)
def test_a_bad_grant_is_refused_naming_the_field_and_nothing_is_stored(
    bureau: TestClient, overrides: dict[str, Any], field: str
) -> None:
    body = grant_body(**{"programme": "transfer_base", "credit_code": BASE, **overrides})

    assert_invalid(bureau.post("/v1/one-time-grants", json=body), field)
    assert _head(bureau) == 0


def test_the_same_institution_recognised_twice_at_one_level_is_a_conflict(
    bureau: TestClient,
) -> None:
    assert bureau.post("/v1/demonstration-institutions", json=institution_body()).is_success
    again = institution_body(recognised_on="2022-01-05")

    assert_invalid(bureau.post("/v1/demonstration-institutions", json=again), "level", 409)
    # Recognised at another level, it is another recognition.
    national = institution_body(level="national", recognised_on="2023-03-01")
    assert bureau.post("/v1/demonstration-institutions", json=national).status_code == 201
    assert _head(bureau) == 2


def test_a_grant_number_used_before_is_a_conflict_whatever_its_case(bureau: TestClient) -> None:
    base = {"programme": "pilot_base", "credit_code": BASE}
    assert bureau.post("/v1/one-time-grants", json=grant_body(**base)).status_code == 201

    assert_invalid(bureau.post("/v1/one-time-grants", json=grant_body(**base)), "grant_no", 409)
    lower = grant_body(**base, grant_no="yc-2021-001")
    assert_invalid(bureau.post("/v1/one-time-grants", json=lower), "grant_no", 409)
    assert _head(bureau) == 1


def test_a_demonstration_grant_needs_a_provincial_recognition_by_the_day_decided(
    bureau: TestClient,
) -> None:
    unknown = bureau.post("/v1/one-time-grants", json=grant_body())
    assert "not recognised as a provincial" in assert_invalid(unknown, "credit_code")["message"]

    municipal = institution_body(level="municipal")
    assert bureau.post("/v1/demonstration-institutions", json=municipal).status_code == 201
    assert_invalid(bureau.post("/v1/one-time-grants", json=grant_body()), "credit_code")

    later = institution_body(recognised_on="2021-10-01")
    assert bureau.post("/v1/demonstration-institutions", json=later).status_code == 201
    before = bureau.post("/v1/one-time-grants", json=grant_body())
    assert "2021-10-01" in assert_invalid(before, "decided_on")["message"]
    assert _head(bureau) == 2

    on_the_day = grant_body(decided_on="2021-10-01")
    assert bureau.post("/v1/one-time-grants", json=on_the_day).status_code == 201


def test_an_institution_gets_one_demonstration_grant_and_bases_are_not_limited(
    bureau: TestClient,
) -> None:
    assert bureau.post("/v1/demonstration-institutions", json=institution_body()).is_success
    assert bureau.post("/v1/one-time-grants", json=grant_body()).status_code == 201

    second = grant_body(grant_no="YC-2022-001", decided_on="2022-03-01")
    refused = assert_invalid(bureau.post("/v1/one-time-grants", json=second), "programme")
    assert "YC-2021-001" in refused["message"]
    assert _head(bureau) == 2

    for no, programme in (("YC-2022-002", "transfer_base"), ("YC-2022-003", "pilot_base")):
        other = grant_body(grant_no=no, programme=programme, decided_on="2022-03-01")
        assert bureau.post("/v1/one-time-grants", json=other).status_code == 201


def test_a_batch_refuses_a_second_demonstration_grant_within_itself(bureau: TestClient) -> None:
    assert bureau.post("/v1/demonstration-institutions", json=institution_body()).is_success
    second = {**grant_body(grant_no="YC-2", decided_on="2021-10-01"), "amount": "1.00"}
    batch = {
        "commands": [
            {"op": "decide_grant", "body": grant_body()},
            {"op": "decide_grant", "body": second},
        ]
    }

    refused = assert_invalid(bureau.post("/v1/batch", json=batch), "programme")
    assert refused["index"] == 1
    assert _head(bureau) == 1
