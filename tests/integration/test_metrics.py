"""``GET /metrics``: every service in Prometheus' text format, requests by route template.

The services run in-process here, so their metrics share this process's registry: each test
reads a counter before and after what it does and asserts the difference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.audit.app import create_app as create_audit
from services.audit.settings import AuditSettings
from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from tests.conftest import Tokens
from tests.support.stack import contract_commands, setup_commands

NOWHERE = "http://127.0.0.1:9"  # nothing listens: health reports the other service unknown


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``, parsed as Prometheus parses it: (name, labels) → value."""
    answer = client.get("/metrics", headers={"Authorization": ""})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(client: TestClient, name: str, **labels: str) -> float:
    return samples(client).get((name, frozenset(labels.items())), 0.0)


def settled(client: TestClient, name: str, expected: float, timeout: float = 2.0) -> float:
    """The metric once it reads ``expected``, or as it reads when ``timeout`` runs out: the
    writer observes a group just after it has answered the group's requests."""
    deadline = time.monotonic() + timeout
    while (found := value(client, name)) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def requests_counted(client: TestClient, method: str, route: str, status: int) -> float:
    return value(client, "tcr_http_requests_total", method=method, route=route, status=str(status))


def registry_app(tmp_path: Path, tokens: Tokens) -> FastAPI:
    return create_registry(
        RegistrySettings(
            registry_database_url=f"sqlite:///{tmp_path / 'registry.db'}",
            tokens_file=tokens.path,
            signing_key_file=tmp_path / "signing-key.pem",
            checkpoint_every=10,
        )
    )


def subsidy_app(tmp_path: Path, tokens: Tokens) -> FastAPI:
    # Imported here, after kafka-python's import-time DeprecationWarning is silenced.
    from services.subsidy.app import create_app
    from services.subsidy.settings import SubsidySettings

    return create_app(
        SubsidySettings(
            subsidy_database_url=f"sqlite:///{tmp_path / 'subsidy.db'}",
            tokens_file=tokens.path,
            registry_url=NOWHERE,
        )
    )


def audit_app(tmp_path: Path, tokens: Tokens) -> FastAPI:
    return create_audit(
        AuditSettings(tokens_file=tokens.path, registry_url=NOWHERE, subsidy_url=NOWHERE)
    )


SERVICES: dict[str, Callable[[Path, Tokens], FastAPI]] = {
    "registry": registry_app,
    "subsidy": subsidy_app,
    "audit": audit_app,
}


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest, tmp_path: Path, tokens: Tokens) -> Iterator[TestClient]:
    with TestClient(SERVICES[request.param](tmp_path, tokens)) as client:
        yield client


@pytest.fixture
def registry(tmp_path: Path, tokens: Tokens) -> Iterator[TestClient]:
    with TestClient(registry_app(tmp_path, tokens), headers=tokens.header("bureau")) as client:
        yield client


def test_every_service_counts_a_request_by_route_and_status(service: TestClient) -> None:
    before = samples(service)
    status = service.get("/v1/health").status_code
    after = samples(service)
    key = (
        "tcr_http_requests_total",
        frozenset({"method": "GET", "route": "/v1/health", "status": str(status)}.items()),
    )
    assert after[key] == before.get(key, 0.0) + 1
    timed = ("tcr_http_request_duration_seconds_count",
             frozenset({"method": "GET", "route": "/v1/health"}.items()))  # fmt: skip
    assert after[timed] == before.get(timed, 0.0) + 1


def test_metrics_need_no_token_and_stay_out_of_the_openapi_document(service: TestClient) -> None:
    assert service.get("/metrics").status_code == 200  # no Authorization header at all
    assert "/metrics" not in service.get("/openapi.json").json()["paths"]


def test_requests_are_labelled_by_route_template_never_by_path(registry: TestClient) -> None:
    route = "/v1/contracts/{registration_no}"
    before = requests_counted(registry, "GET", route, 404)
    for number in ("TC-A", "TC-B", "TC-C"):
        assert registry.get(f"/v1/contracts/{number}").status_code == 404
    assert requests_counted(registry, "GET", route, 404) == before + 3
    text = registry.get("/metrics").text
    assert "TC-A" not in text and "TC-B" not in text


def test_unknown_paths_and_methods_share_one_series(registry: TestClient) -> None:
    before = requests_counted(registry, "OTHER", "unmatched", 404)
    for path in ("/no/such/thing", "/wp-admin/setup.php"):
        registry.request("BREW", path)
    assert requests_counted(registry, "OTHER", "unmatched", 404) == before + 2
    assert "wp-admin" not in registry.get("/metrics").text


def test_the_writer_reports_its_group_sizes_and_time(registry: TestClient) -> None:
    groups = value(registry, "tcr_registry_writer_group_submissions_count")
    events = value(registry, "tcr_registry_writer_group_events_sum")
    answer = registry.post("/v1/batch", json={"commands": setup_commands()})
    assert answer.status_code == 201, answer.text
    assert settled(registry, "tcr_registry_writer_group_submissions_count", groups + 1) == (
        groups + 1
    )
    expected = events + len(setup_commands())
    assert settled(registry, "tcr_registry_writer_group_events_sum", expected) == expected
    assert value(registry, "tcr_registry_writer_group_seconds_count") >= 1


def test_refusals_are_counted_by_error_and_field(registry: TestClient, tokens: Tokens) -> None:
    labels = {"error": "not_found", "field": "registration_no"}
    before = value(registry, "tcr_registry_refusals_total", **labels)
    invoice = contract_commands(1, 1)[1]["body"]  # its contract was never registered
    number = invoice.pop("registration_no")
    answer = registry.post(
        f"/v1/contracts/{number}/invoices", json=invoice, headers=tokens.header("station")
    )
    assert answer.status_code == 404, answer.text
    assert value(registry, "tcr_registry_refusals_total", **labels) == before + 1


def test_signed_checkpoints_are_counted(registry: TestClient) -> None:
    before = value(registry, "tcr_registry_checkpoints_issued_total")
    assert registry.post("/v1/batch", json={"commands": setup_commands()}).status_code == 201
    assert registry.post("/v1/checkpoints").status_code == 201
    assert value(registry, "tcr_registry_checkpoints_issued_total") >= before + 1


def test_every_error_the_database_driver_raises_is_counted_by_class(
    tmp_path: Path, registry: TestClient
) -> None:
    import sqlalchemy.exc
    from sqlalchemy import text

    from services.common.db import make_engine

    before = value(registry, "tcr_store_errors_total", error="OperationalError")
    engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        with engine.connect() as conn, pytest.raises(sqlalchemy.exc.OperationalError):
            conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        engine.dispose()
    assert value(registry, "tcr_store_errors_total", error="OperationalError") == before + 1
