"""The registry's HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

from itertools import pairwise

from fastapi.testclient import TestClient

from tests.conftest import Tokens
from tests.support.parties import contract_body, invoice_body, transfer_body


def test_a_registered_contract_with_evidence_reads_back_with_its_totals(client: TestClient) -> None:
    registered = client.post("/v1/contracts", json=contract_body())
    assert registered.status_code == 201, registered.text
    assert registered.json()["position"] == 1
    no = contract_body()["registration_no"]
    assert client.post(f"/v1/contracts/{no}/invoices", json=invoice_body()).status_code == 201
    assert (
        client.post(f"/v1/contracts/{no}/transfer-proofs", json=transfer_body()).status_code == 201
    )

    contract = client.get(f"/v1/contracts/{no}").json()

    assert contract["status"] == "registered"
    assert contract["invoiced_total"] == "600000.00"
    assert contract["paid_total"] == "600000.00"
    assert contract["version"] == 3


def test_the_log_pages_in_order_and_chains_each_hash_to_the_previous(
    client: TestClient, reader: TestClient, tokens: Tokens
) -> None:
    for i in range(5):
        assert client.post("/v1/contracts", json=contract_body(f"R{i}")).status_code == 201

    first = reader.get("/v1/events", params={"after": 0, "limit": 3}).json()
    second = reader.get("/v1/events", params={"after": first["next_after"], "limit": 3}).json()
    entries = first["events"] + second["events"]

    assert [e["position"] for e in entries] == [1, 2, 3, 4, 5]
    assert second["head"] == 5
    assert entries[0]["prev_hash"] == "0" * 64
    assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(entries))
