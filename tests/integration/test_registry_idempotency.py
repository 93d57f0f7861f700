"""Idempotency keys: a retried request returns the original answer and stores nothing new."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from tests.conftest import Tokens
from tests.support.parties import (
    amendment_body,
    broker_body,
    cancellation_body,
    contract_body,
    invoice_body,
    transfer_body,
    void_body,
    withdrawal_body,
)

NO = contract_body()["registration_no"]
KEY = {"Idempotency-Key": "retry-0001"}
LATER_KEY = {"Idempotency-Key": "retry-0002"}
BATCH_KEY = {"Idempotency-Key": "retry-0003"}

# Each write, keyed, against the default contract (which already has INV-1 and BANK-1).
KEYED_WRITES = [
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
    pytest.param(
        "/v1/batch",
        {
            "commands": [
                {"op": "register_contract", "body": contract_body("B-1")},
                {
                    "op": "record_invoice",
                    "body": {**invoice_body("INV-B"), "registration_no": "B-1"},
                },
            ]
        },
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


def _conflict_on_the_key(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["field"] == "Idempotency-Key", body
    assert "already used with a different request" in body["message"], body


@pytest.fixture
def with_evidence(client: TestClient) -> str:
    """The default contract of station S1, with invoice INV-1 and transfer proof BANK-1."""
    _created(client.post("/v1/contracts", json=contract_body()))
    _created(client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body("INV-1")))
    _created(client.post(f"/v1/contracts/{NO}/transfer-proofs", json=transfer_body("BANK-1")))
    return NO


@pytest.fixture
def open_registry(database_url: str, tokens: Tokens) -> Callable[[], TestClient]:
    """Builds a new registry application over the same store and tokens: a restart."""
    settings = RegistrySettings(
        registry_database_url=database_url,
        tokens_file=tokens.path,
        signing_key_file=tokens.path.with_name("signing-key.pem"),
    )

    def open_() -> TestClient:
        return TestClient(create_app(settings), headers=tokens.header("station"))

    return open_


@contextmanager
def _store_locked(database_url: str) -> Iterator[None]:
    """Hold the event store's write lock, so that the registry's writer waits for it."""
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    else:
        url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url) as conn:
            conn.execute("LOCK TABLE registry_events IN EXCLUSIVE MODE")
            yield
            conn.rollback()


# -- same key, same request ----------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body"), KEYED_WRITES)
def test_a_retry_with_the_same_key_and_body_returns_the_original_answer_and_stores_nothing(
    client: TestClient, with_evidence: str, path: str, body: dict[str, Any]
) -> None:
    first = client.post(path, json=body, headers=KEY)
    head = _head(client)
    contract = client.get(f"/v1/contracts/{with_evidence}").json()

    retry = client.post(path, json=body, headers=KEY)

    assert first.status_code == 201, first.text
    assert (retry.status_code, retry.json()) == (first.status_code, first.json())
    assert _head(client) == head
    assert client.get(f"/v1/contracts/{with_evidence}").json() == contract


def test_a_retry_returns_the_original_answer_even_after_the_contract_has_changed(
    client: TestClient, with_evidence: str
) -> None:
    invoices = f"/v1/contracts/{with_evidence}/invoices"
    first = _created(client.post(invoices, json=invoice_body("INV-2", "1.00"), headers=KEY))
    _created(client.post(f"{invoices}/INV-2/void", json=void_body()))

    retry = client.post(invoices, json=invoice_body("INV-2", "1.00"), headers=KEY)

    assert (retry.status_code, retry.json()) == (201, first)
    assert _head(client) == 5
    invoice = client.get(f"/v1/contracts/{with_evidence}").json()["invoices"][1]
    assert (invoice["invoice_no"], invoice["voided"]["reason"]) == ("INV-2", void_body()["reason"])


def test_the_same_amount_written_differently_is_the_same_request(client: TestClient) -> None:
    first = _created(client.post("/v1/contracts", json=contract_body(), headers=KEY))

    retry = client.post(
        "/v1/contracts",
        json=contract_body(contract_amount="1200000", technology_amount="1000000.0"),
        headers=KEY,
    )

    assert (retry.status_code, retry.json()) == (201, first)
    assert _head(client) == 1


def test_a_retry_racing_its_original_returns_the_original_answer(
    client: TestClient, tokens: Tokens, database_url: str
) -> None:
    answers: dict[str, httpx.Response] = {}

    def post(name: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        answers[name] = client.post(path, json=body, headers=headers)

    blocker = threading.Thread(
        target=post, args=("blocker", "/v1/brokers", broker_body(), tokens.header("bureau"))
    )
    original, retry = (
        threading.Thread(target=post, args=(name, "/v1/contracts", contract_body(), KEY))
        for name in ("original", "retry")
    )
    with _store_locked(database_url):
        blocker.start()
        time.sleep(0.3)  # the writer has taken the blocker and waits for the store
        original.start()
        retry.start()
        time.sleep(0.5)  # both are queued behind it: the writer takes them as one group
    for thread in (blocker, original, retry):
        thread.join(timeout=60)

    _created(answers["blocker"])
    assert _created(answers["original"]) == answers["retry"].json()
    assert _head(client) == 2


# -- same key, another request -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/v1/contracts", contract_body(title="另一标题"), id="another-body"),
        pytest.param(
            "/v1/contracts", contract_body("2024410400000002"), id="another-registration-no"
        ),
        pytest.param(f"/v1/contracts/{NO}/invoices", invoice_body(), id="another-path"),
        pytest.param(
            "/v1/batch",
            {"commands": [{"op": "register_contract", "body": contract_body()}]},
            id="the-same-command-as-a-batch",
        ),
    ],
)
def test_the_same_key_with_another_request_is_a_conflict_and_nothing_is_stored(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    _created(client.post("/v1/contracts", json=contract_body(), headers=KEY))

    response = client.post(path, json=body, headers=KEY)

    _conflict_on_the_key(response)
    assert _head(client) == 1
    assert client.get(f"/v1/contracts/{NO}").json()["title"] == contract_body()["title"]


def test_keys_are_kept_per_principal(client: TestClient, tokens: Tokens) -> None:
    s1 = _created(client.post("/v1/contracts", json=contract_body(), headers=KEY))

    s2 = client.post(
        "/v1/contracts",
        json=contract_body("S2-1", station_id="S2"),
        headers={**tokens.header("other_station"), **KEY},
    )
    s1_retry = client.post("/v1/contracts", json=contract_body(), headers=KEY)

    assert _created(s2)["subject"] == "S2-1"
    assert (s1_retry.status_code, s1_retry.json()) == (201, s1)
    assert _head(client) == 2


def test_a_request_refused_by_the_rules_does_not_use_up_its_key(
    client: TestClient, with_evidence: str
) -> None:
    invoices = f"/v1/contracts/{with_evidence}/invoices"
    refused = client.post(invoices, json=invoice_body("INV-2", "600000.01"), headers=KEY)

    corrected = client.post(invoices, json=invoice_body("INV-2", "600000.00"), headers=KEY)

    assert refused.status_code == 422, refused.text
    assert _created(corrected)["position"] == 4


@pytest.mark.parametrize(
    ("key", "words"),
    [
        pytest.param("", ("at least 1",), id="empty"),
        pytest.param("k" * 257, ("at most 256",), id="257-characters"),
    ],
)
def test_an_empty_or_overlong_key_is_refused_naming_the_header_and_nothing_is_stored(
    client: TestClient, key: str, words: tuple[str, ...]
) -> None:
    response = client.post("/v1/contracts", json=contract_body(), headers={"Idempotency-Key": key})

    assert response.status_code == 422, response.text
    assert response.json()["field"] == "Idempotency-Key", response.json()
    for word in words:
        assert word in response.json()["message"], response.json()
    assert _head(client) == 0


# -- restarts ------------------------------------------------------------------------------------


def test_a_key_survives_a_restart_of_the_registry(
    open_registry: Callable[[], TestClient],
) -> None:
    with open_registry() as before_restart:
        first = _created(before_restart.post("/v1/contracts", json=contract_body(), headers=KEY))

    with open_registry() as after_restart:
        retry = after_restart.post("/v1/contracts", json=contract_body(), headers=KEY)
        other = after_restart.post("/v1/contracts", json=contract_body(title="改"), headers=KEY)

        assert (retry.status_code, retry.json()) == (201, first)
        _conflict_on_the_key(other)
        assert _head(after_restart) == 1


def _as_stored_before_receipts(database_url: str) -> None:
    """Give the idempotency table the layout of the registry before it kept receipts: each
    row an HTTP answer, ``status`` and ``body`` (always a 201 and the receipt)."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE registry_idempotency RENAME COLUMN result TO body"))
            conn.execute(
                text(
                    "ALTER TABLE registry_idempotency "
                    "ADD COLUMN status INTEGER NOT NULL DEFAULT 201"
                )
            )
    finally:
        engine.dispose()


def test_a_key_stored_as_an_http_answer_by_an_older_registry_is_answered_as_it_was(
    open_registry: Callable[[], TestClient], database_url: str
) -> None:
    with open_registry() as older:
        first = _created(older.post("/v1/contracts", json=contract_body(), headers=KEY))
        batch = {"commands": [{"op": "register_contract", "body": contract_body("B-1")}]}
        first_batch = _created(older.post("/v1/batch", json=batch, headers=BATCH_KEY))
    _as_stored_before_receipts(database_url)

    with open_registry() as upgraded:
        retry = upgraded.post("/v1/contracts", json=contract_body(), headers=KEY)
        retry_batch = upgraded.post("/v1/batch", json=batch, headers=BATCH_KEY)
        other = upgraded.post("/v1/contracts", json=contract_body(title="改"), headers=KEY)
        later = _created(
            upgraded.post(f"/v1/contracts/{NO}/invoices", json=invoice_body(), headers=LATER_KEY)
        )
        later_retry = upgraded.post(
            f"/v1/contracts/{NO}/invoices", json=invoice_body(), headers=LATER_KEY
        )

        assert (retry.status_code, retry.json()) == (201, first)
        assert (retry_batch.status_code, retry_batch.json()) == (201, first_batch)
        _conflict_on_the_key(other)
        assert (later_retry.status_code, later_retry.json()) == (201, later)
        assert _head(upgraded) == 3
