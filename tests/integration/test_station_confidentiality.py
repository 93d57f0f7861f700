"""What a station may read: its own contracts only. Another station's contract answers exactly
as a missing one (existence does not leak); the log is not for stations, and inclusion proofs
only of their own entries; the bureau, finance, auditors and services read everything.

Every GET route of the registry has a rule here: a route added without one fails the first
test, so no read path is left open by forgetting it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount

from services.common.tokens import Principal
from services.registry.visibility import may_read, station_scope
from tests.conftest import Tokens
from tests.support.parties import broker_body, contract_body, invoice_body

OURS = "2024410400000001"  # registered by S1
THEIRS = "2024410400000002"  # registered by S2
MISSING = "2024410400000003"  # registered by nobody

# Each GET route and what a station may read there.
OWN_ONLY = "own contracts only; another's answers as a missing one (404)"
REFUSED = "refused to stations (403): every station's entries are in it"
OWN_ENTRIES = "proofs of own entries only; another's entry refused (403)"
NO_CONTRACT_DATA = "open to every token: signed tree heads and hashes, no contract data"
PUBLIC = "needs no token: holds no contract data"
SCOPED = "lists the station's own contracts only (station_scope); another station's id: empty"
OWN_UPLOAD = "a file the signed-in official uploaded, kept for its owner alone"
PAGE_FORM = "the page's upload form or blank template for the signed-in: no contract data"
RULES = {
    "/v1/contracts/{registration_no}": OWN_ONLY,
    "/v1/events": REFUSED,
    "/v1/proofs/inclusion": OWN_ENTRIES,
    "/v1/checkpoints": NO_CONTRACT_DATA,
    "/v1/checkpoints/latest": NO_CONTRACT_DATA,
    "/v1/proofs/consistency": NO_CONTRACT_DATA,
    "/v1/checkpoints/public-key": PUBLIC,
    "/v1/health": PUBLIC,
    "/metrics": PUBLIC,
    "/docs": PUBLIC,
    "/openapi.json": PUBLIC,
    "/static/swagger": PUBLIC,
    "/v1/contracts": SCOPED,
    "/v1/imports/template.xlsx": NO_CONTRACT_DATA,
    # The station page: the same rules, read through the same application.
    "/": SCOPED,
    "/contracts/{registration_no}": OWN_ONLY,
    "/upload": PAGE_FORM,
    "/upload/{upload_id}/errors.xlsx": OWN_UPLOAD,
    "/template.xlsx": PAGE_FORM,
    "/static": PUBLIC,
}
# Parameters that make each route answer with data.
PARAMS: dict[str, dict[str, Any]] = {
    "/v1/events": {"after": 0},
    "/v1/proofs/consistency": {"from": 1, "to": 2},
    "/static/swagger": {},
}


def _get_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[str]:
    """The paths of every route answering GET, routers included (under their prefix), static
    mounts too."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _get_routes(included.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, Mount):
            yield prefix + route.path
        elif "GET" in (getattr(route, "methods", None) or ()):
            yield prefix + getattr(route, "path")  # noqa: B009 - every Route has one


@pytest.fixture
def two_stations(client: TestClient, tokens: Tokens) -> TestClient:
    """S1's contract with an invoice, and S2's contract; the client is station S1."""
    for response in (
        client.post("/v1/contracts", json=contract_body(OURS)),
        client.post(f"/v1/contracts/{OURS}/invoices", json=invoice_body("INV-1")),
        client.post(
            "/v1/contracts",
            json=contract_body(THEIRS, station_id="S2", title="另一机构的合同"),
            headers=tokens.header("other_station"),
        ),
    ):
        assert response.status_code == 201, response.text
    return client


def test_every_get_route_of_the_registry_has_a_rule_for_stations(client: TestClient) -> None:
    routes = set(_get_routes(client.app.router.routes))  # type: ignore[attr-defined]

    assert routes - RULES.keys() == set(), "a GET route without a rule for stations"
    assert RULES.keys() - routes == set(), "a rule for a route that no longer exists"


def test_a_station_reads_its_own_contract(two_stations: TestClient) -> None:
    response = two_stations.get(f"/v1/contracts/{OURS}")

    assert response.status_code == 200, response.text
    assert (response.json()["station_id"], response.json()["invoiced_total"]) == ("S1", "600000.00")


def test_another_stations_contract_answers_exactly_as_a_missing_one(
    two_stations: TestClient,
) -> None:
    theirs = two_stations.get(f"/v1/contracts/{THEIRS}")
    missing = two_stations.get(f"/v1/contracts/{MISSING}")

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == {
        k: v.replace(MISSING, THEIRS) if isinstance(v, str) else v
        for k, v in missing.json().items()
    }
    assert theirs.headers.keys() == missing.headers.keys()
    assert "另一机构" not in theirs.text


@pytest.mark.parametrize("path", [p for p, rule in RULES.items() if rule == REFUSED])
def test_the_log_is_refused_to_stations(
    two_stations: TestClient, tokens: Tokens, path: str
) -> None:
    response = two_stations.get(path, params=PARAMS[path])

    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert response.json()["message_zh"]
    assert THEIRS not in response.text
    as_auditor = two_stations.get(path, params=PARAMS[path], headers=tokens.header("auditor"))
    assert as_auditor.status_code == 200, as_auditor.text


@pytest.mark.parametrize(
    "path", [p for p, rule in RULES.items() if rule in (NO_CONTRACT_DATA, PUBLIC)]
)
def test_what_a_station_may_read_beyond_its_contracts_holds_no_contract_data(
    two_stations: TestClient, tokens: Tokens, path: str
) -> None:
    two_stations.post("/v1/checkpoints", headers=tokens.header("bureau"))
    if path == "/static/swagger":
        path += "/swagger-ui.css"
    if path == "/static":
        path += "/page.css"
    headers = {} if RULES.get(path) != PUBLIC else {"Authorization": ""}

    response = two_stations.get(path, params=PARAMS.get(path, {}), headers=headers)

    assert response.status_code == 200, response.text
    for secret in (THEIRS, "另一机构的合同"):
        assert secret not in response.text


def test_a_station_has_inclusion_proofs_of_its_own_entries_only(
    two_stations: TestClient, tokens: Tokens
) -> None:
    # Positions: 1 S1's registration, 2 S1's invoice, 3 S2's registration, 4 a broker.
    bureau = tokens.header("bureau")
    assert two_stations.post("/v1/brokers", json=broker_body(), headers=bureau).status_code == 201

    def proof(position: int, who: str = "station") -> int:
        params = {"position": position, "tree_size": 4}
        return two_stations.get(
            "/v1/proofs/inclusion", params=params, headers=tokens.header(who)
        ).status_code

    assert [proof(p) for p in (1, 2, 3, 4)] == [200, 200, 403, 403]
    assert [proof(p, "other_station") for p in (1, 2, 3, 4)] == [403, 403, 200, 403]
    assert [proof(p, "service") for p in (1, 2, 3, 4)] == [200, 200, 200, 200]
    refused = two_stations.get("/v1/proofs/inclusion", params={"position": 3, "tree_size": 4})
    assert refused.json()["field"] == "position" and refused.json()["message_zh"]
    assert THEIRS not in refused.text


@pytest.mark.parametrize("reader", ["bureau", "finance", "auditor", "service"])
def test_the_bureau_finance_auditors_and_services_read_every_stations_contract(
    two_stations: TestClient, tokens: Tokens, reader: str
) -> None:
    for number, station in ((OURS, "S1"), (THEIRS, "S2")):
        response = two_stations.get(f"/v1/contracts/{number}", headers=tokens.header(reader))
        assert response.status_code == 200, response.text
        assert response.json()["station_id"] == station


def test_one_rule_says_which_stations_contracts_a_principal_reads() -> None:
    station = Principal("station-s1", "station", "S1")

    assert (station_scope(station), may_read(station, "S1"), may_read(station, "S2")) == (
        "S1",
        True,
        False,
    )
    for role in ("bureau", "finance", "auditor", "service"):
        reader = Principal(role, role)
        assert (station_scope(reader), may_read(reader, "S2")) == (None, True)
