"""A store written before numbers were unique ignoring case: its numbers keep their ids and
their contracts, and a new number differing from an old one only in case is refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, update

from services.registry.app import create_app
from services.registry.domain import contract_aggregate_id
from services.registry.settings import RegistrySettings
from services.registry.store import claims, migrations
from tests.conftest import Tokens
from tests.support.parties import contract_body, invoice_body


@contextmanager
def registry(database_url: str, tokens: Tokens) -> Iterator[TestClient]:
    settings = RegistrySettings(
        registry_database_url=database_url,
        tokens_file=tokens.path,
        signing_key_file=tokens.path.with_name("signing-key.pem"),
    )
    with TestClient(create_app(settings), headers=tokens.header("station")) as client:
        yield client


def _as_stored_before_the_rule(database_url: str) -> None:
    """What the registry of November 2026 left: invoice claims as written, no registration
    claims, no migration done."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(delete(claims).where(claims.c.kind == "registration"))
        conn.execute(update(claims).where(claims.c.key == "inv-old").values(key="INV-OLD"))
        conn.execute(delete(migrations))
    engine.dispose()


def test_numbers_stored_before_the_rule_are_claimed_once_and_keep_their_ids(
    database_url: str, tokens: Tokens
) -> None:
    with registry(database_url, tokens) as client:
        assert client.post("/v1/contracts", json=contract_body("TX-OLD")).status_code == 201
        posted = client.post("/v1/contracts/TX-OLD/invoices", json=invoice_body("INV-OLD", "1.00"))
        assert posted.status_code == 201, posted.text
    _as_stored_before_the_rule(database_url)

    with registry(database_url, tokens) as client:
        contract = client.get("/v1/contracts/TX-OLD")
        assert contract.status_code == 200  # found by the id derived as it always was
        assert contract.json()["invoices"][0]["invoice_no"] == "INV-OLD"
        page = client.get("/v1/events", headers=tokens.header("auditor")).json()
        assert page["events"][0]["subject"] == "TX-OLD"
        stored_id = client.app.state.registry.repository.get(contract_aggregate_id("TX-OLD")).id  # type: ignore[attr-defined]
        assert stored_id == contract_aggregate_id("TX-OLD")

        again = client.post("/v1/contracts", json=contract_body("tx-old"))
        assert again.status_code == 409, again.text
        assert again.json()["field"] == "registration_no"
        assert client.post("/v1/contracts", json=contract_body("TX-NEW")).status_code == 201
        invoice = client.post("/v1/contracts/TX-NEW/invoices", json=invoice_body("inv-old", "1.00"))
        assert invoice.status_code == 409, invoice.text
        assert invoice.json()["field"] == "invoice_no"
        assert client.get("/v1/health").json()["head"] == 3
