"""Who may do what: bearer tokens, roles, and each station's own contracts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.common.tokens import add_principal, load_principals
from tests.conftest import Tokens
from tests.support.parties import (
    amendment_body,
    broker_body,
    cancellation_body,
    contract_body,
    funding_body,
    invoice_body,
    transfer_body,
    void_body,
    withdrawal_body,
)

NO = contract_body()["registration_no"]

# Every write the API offers, against the default contract (which has INV-1 and BANK-1).
WRITES = [
    pytest.param("/v1/contracts", contract_body("2024410400000009"), id="register"),
    pytest.param(f"/v1/contracts/{NO}/amendments", amendment_body(), id="amend"),
    pytest.param(f"/v1/contracts/{NO}/cancellation", cancellation_body(), id="cancel"),
    pytest.param(f"/v1/contracts/{NO}/invoices", invoice_body("INV-2", "1.00"), id="invoice"),
    pytest.param(f"/v1/contracts/{NO}/invoices/INV-1/void", void_body(), id="void"),
    pytest.param(
        f"/v1/contracts/{NO}/transfer-proofs", transfer_body("BANK-2", "1.00"), id="transfer"
    ),
    pytest.param(
        f"/v1/contracts/{NO}/transfer-proofs/BANK-1/withdraw", withdrawal_body(), id="withdraw"
    ),
    pytest.param("/v1/brokers", broker_body(), id="broker"),
    pytest.param("/v1/provincial-funding", funding_body(), id="funding"),
    pytest.param(
        "/v1/batch",
        {"commands": [{"op": "file_broker", "body": broker_body()}]},
        id="batch",
    ),
]


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _refused(response: httpx.Response, status: int, field: str | None, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field, body
    for word in words:
        assert word in body["message"], body


def _entry(client: TestClient, tokens: Tokens, position: int) -> dict[str, Any]:
    page = client.get(
        "/v1/events", params={"after": position - 1, "limit": 1}, headers=tokens.header("auditor")
    ).json()
    entry: dict[str, Any] = page["events"][0]
    assert entry["position"] == position
    return entry


def _remove_principal(path: Path, name: str) -> None:
    """Rewrite the tokens file without ``name``, as an operator revoking a token would."""
    lines: list[str] = []
    for digest, p in load_principals(path).items():
        if p.name == name:
            continue
        lines += ["[[principals]]", f"name = {json.dumps(p.name)}", f"role = {json.dumps(p.role)}"]
        if p.station_id is not None:
            lines.append(f"station_id = {json.dumps(p.station_id)}")
        lines += [f"token_sha256 = {json.dumps(digest)}", ""]
    before = path.stat().st_mtime_ns
    path.write_text("\n".join(lines), encoding="utf-8")
    # A changed modification time, whatever the file system's clock granularity.
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.fixture
def with_evidence(client: TestClient) -> str:
    """The default contract of station S1, with invoice INV-1 and transfer proof BANK-1."""
    _created(client.post("/v1/contracts", json=contract_body()))
    _created(client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body("INV-1")))
    _created(client.post(f"/v1/contracts/{NO}/transfer-proofs", json=transfer_body("BANK-1")))
    return NO


# -- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "words"),
    [
        pytest.param(None, ("Bearer",), id="no-token"),
        pytest.param("Bearer not-a-known-token", ("unknown token",), id="unknown-token"),
        pytest.param("Basic c3RhdGlvbjpzZWNyZXQ=", ("Bearer",), id="not-a-bearer-token"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/v1/contracts", contract_body(), id="write"),
        pytest.param("GET", "/v1/events", None, id="read-log"),
        pytest.param("GET", f"/v1/contracts/{NO}", None, id="read-contract"),
    ],
)
def test_a_request_without_a_known_bearer_token_is_unauthenticated_with_www_authenticate(
    client: TestClient,
    authorization: str | None,
    words: tuple[str, ...],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    headers = {"Authorization": authorization or ""}
    if authorization is None:
        client.headers.pop("Authorization")
        headers = {}

    response = client.request(method, path, json=body, headers=headers)

    _refused(response, 401, "Authorization", *words)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert _head(client) == 0


def test_health_needs_no_token(client: TestClient) -> None:
    client.headers.pop("Authorization")

    response = client.get("/v1/health")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "head": 0}


def test_a_token_added_to_the_tokens_file_while_the_server_runs_is_accepted(
    client: TestClient, tokens: Tokens
) -> None:
    token = add_principal(tokens.path, "station-s3", "station", "S3")

    response = client.post(
        "/v1/contracts",
        json=contract_body(station_id="S3"),
        headers={"Authorization": f"Bearer {token}"},
    )

    position = _created(response)["position"]
    assert _entry(client, tokens, position)["principal"] == "station-s3"


def test_a_token_removed_from_the_tokens_file_while_the_server_runs_is_refused(
    client: TestClient, tokens: Tokens
) -> None:
    assert client.get("/v1/checkpoints", headers=tokens.header("other_station")).status_code == 200
    _remove_principal(tokens.path, "station-s2")

    response = client.get("/v1/checkpoints", headers=tokens.header("other_station"))

    _refused(response, 401, "Authorization", "unknown token")


# -- roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["bureau", "finance", "auditor", "service"])
def test_the_bureau_finance_auditors_and_services_may_read_the_log_and_contracts(
    client: TestClient, tokens: Tokens, with_evidence: str, reader: str
) -> None:
    events = client.get("/v1/events", headers=tokens.header(reader))
    contract = client.get(f"/v1/contracts/{with_evidence}", headers=tokens.header(reader))

    assert events.status_code == 200, events.text
    assert [e["position"] for e in events.json()["events"]] == [1, 2, 3]
    assert contract.status_code == 200, contract.text
    assert contract.json()["invoiced_total"] == "600000.00"


@pytest.mark.parametrize("reader", ["finance", "auditor", "service"])
@pytest.mark.parametrize(("path", "body"), WRITES)
def test_finance_auditors_and_services_may_not_write_anything(
    client: TestClient,
    tokens: Tokens,
    with_evidence: str,
    reader: str,
    path: str,
    body: dict[str, Any],
) -> None:
    before = client.get(f"/v1/contracts/{with_evidence}").json()

    response = client.post(path, json=body, headers=tokens.header(reader))

    assert response.status_code == 403, response.text
    assert reader in response.json()["message"] or "bureau" in response.json()["message"]
    assert _head(client) == 3
    assert client.get(f"/v1/contracts/{with_evidence}").json() == before


def test_a_station_may_not_register_under_another_station_id(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post(
        "/v1/contracts", json=contract_body(station_id="S1"), headers=tokens.header("other_station")
    )

    _refused(response, 403, "station_id", "S2", "own id")
    assert _head(client) == 0
    assert client.get(f"/v1/contracts/{NO}").status_code == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [w for w in WRITES if w.id not in {"register", "broker", "funding", "batch"}],
)
def test_a_write_on_another_stations_contract_is_answered_as_on_a_missing_one(
    client: TestClient, tokens: Tokens, with_evidence: str, path: str, body: dict[str, Any]
) -> None:
    before = client.get(f"/v1/contracts/{with_evidence}").json()
    missing = client.post(
        path.replace(NO, "NOT-REGISTERED"), json=body, headers=tokens.header("other_station")
    )

    response = client.post(path, json=body, headers=tokens.header("other_station"))

    _refused(response, 404, "registration_no", f"no contract registered as {NO}")
    assert response.json() == {
        **missing.json(),
        "message": f"no contract registered as {NO}",
        "message_zh": f"没有登记号为 {NO} 的合同",
    }
    assert _head(client) == 3
    assert client.get(f"/v1/contracts/{with_evidence}").json() == before


def test_a_station_may_not_write_on_another_stations_contract_inside_a_batch(
    client: TestClient, tokens: Tokens, with_evidence: str
) -> None:
    commands = [
        {"op": "register_contract", "body": contract_body("S2-1", station_id="S2")},
        {"op": "record_invoice", "body": {**invoice_body("INV-2", "1.00"), "registration_no": NO}},
    ]

    response = client.post(
        "/v1/batch", json={"commands": commands}, headers=tokens.header("other_station")
    )

    _refused(response, 404, "registration_no", f"no contract registered as {NO}")
    assert response.json()["index"] == 1
    assert _head(client) == 3


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/v1/brokers", broker_body(), id="broker"),
        pytest.param("/v1/provincial-funding", funding_body(), id="funding"),
    ],
)
def test_a_station_may_not_file_brokers_or_provincial_funding(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    response = client.post(path, json=body)

    _refused(response, 403, None, "only the science bureau")
    assert _head(client) == 0


def test_the_bureau_files_brokers_and_provincial_funding_under_its_own_name(
    client: TestClient, tokens: Tokens
) -> None:
    bureau = tokens.header("bureau")

    broker = _created(client.post("/v1/brokers", json=broker_body(), headers=bureau))
    funding = _created(client.post("/v1/provincial-funding", json=funding_body(), headers=bureau))

    assert (broker["type"], funding["type"]) == ("BrokerFiled", "ProvincialFundingRecorded")
    assert _entry(client, tokens, broker["position"])["principal"] == "bureau"
    assert _entry(client, tokens, funding["position"])["principal"] == "bureau"


def test_the_bureau_may_correct_and_cancel_any_stations_contract(
    client: TestClient, tokens: Tokens, with_evidence: str
) -> None:
    bureau = tokens.header("bureau")
    path = f"/v1/contracts/{with_evidence}"

    amended = client.post(f"{path}/amendments", json=amendment_body(title="更正"), headers=bureau)
    voided = client.post(f"{path}/invoices/INV-1/void", json=void_body(), headers=bureau)
    withdrawn = client.post(
        f"{path}/transfer-proofs/BANK-1/withdraw", json=withdrawal_body(), headers=bureau
    )
    cancelled = client.post(f"{path}/cancellation", json=cancellation_body(), headers=bureau)

    for response in (amended, voided, withdrawn, cancelled):
        assert _entry(client, tokens, _created(response)["position"])["principal"] == "bureau"
    contract = client.get(path).json()
    assert (contract["title"], contract["status"]) == ("更正", "cancelled")
    assert (contract["invoiced_total"], contract["paid_total"]) == ("0.00", "0.00")


def test_every_event_records_the_name_of_the_principal_who_posted_it(
    client: TestClient, tokens: Tokens
) -> None:
    _created(client.post("/v1/contracts", json=contract_body()))
    _created(
        client.post(
            "/v1/contracts",
            json=contract_body("S2-1", station_id="S2"),
            headers=tokens.header("other_station"),
        )
    )
    _created(client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body()))
    _created(client.post("/v1/brokers", json=broker_body(), headers=tokens.header("bureau")))
    _created(
        client.post(
            f"/v1/contracts/{NO}/amendments",
            json=amendment_body(),
            headers=tokens.header("bureau"),
        )
    )

    events = client.get("/v1/events", headers=tokens.header("auditor")).json()["events"]

    assert [(e["type"], e["principal"]) for e in events] == [
        ("ContractRegistered", "station-s1"),
        ("ContractRegistered", "station-s2"),
        ("InvoiceRecorded", "station-s1"),
        ("BrokerFiled", "bureau"),
        ("ContractAmended", "bureau"),
    ]
