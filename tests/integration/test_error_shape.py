"""Every service answers every route, including unknown ones, in the project's error shape
``{error, field, message, message_zh}`` (Chinese beside English), and marks every answer
``nosniff`` and ``no-store``.

The three apps are built by their own composition roots; the refusals here happen before any
store is opened, so the apps run without their start-up (no registry, Kafka or database).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from services.audit.app import create_app as create_audit
from services.audit.settings import AuditSettings
from services.common.web.api import build_api
from services.common.web.errors import MAX_ERRORS_LISTED
from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from services.subsidy.app import create_app as create_subsidy
from services.subsidy.settings import SubsidySettings
from tests.conftest import Tokens, make_tokens


def _registry(folder: Path, tokens: Path) -> FastAPI:
    return create_registry(
        RegistrySettings(
            registry_database_url=f"sqlite:///{folder / 'registry.db'}",
            tokens_file=tokens,
            signing_key_file=folder / "signing-key.pem",
        )
    )


def _subsidy(folder: Path, tokens: Path) -> FastAPI:
    return create_subsidy(
        SubsidySettings(subsidy_database_url=f"sqlite:///{folder / 's.db'}", tokens_file=tokens)
    )


def _audit(folder: Path, tokens: Path) -> FastAPI:
    return create_audit(AuditSettings(tokens_file=tokens, registry_url="http://127.0.0.1:9"))


SERVICES: dict[str, Callable[[Path, Path], FastAPI]] = {
    "registry": _registry,
    "subsidy": _subsidy,
    "audit": _audit,
}


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return make_tokens(tmp_path)


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest, tmp_path: Path, tokens: Tokens) -> TestClient:
    """One service's app, not started, as the auditor (who may read on all three)."""
    app = SERVICES[request.param](tmp_path, tokens.path)
    return TestClient(app, headers=tokens.header("auditor"), raise_server_exceptions=False)


def assert_error_shape(response: httpx.Response, status: int, error: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body: dict[str, object] = response.json()
    assert body["error"] == error, body
    assert {"error", "field", "message", "message_zh"} <= body.keys(), body
    assert re.search(r"[\u4e00-\u9fff]", str(body["message_zh"])), body
    assert "detail" not in body, body
    return body


def test_an_unknown_route_is_a_404_in_the_error_shape(service: TestClient) -> None:
    body = assert_error_shape(service.get("/v1/no-such-thing"), 404, "not_found")
    assert body["field"] is None
    assert "/v1/no-such-thing" in str(body["message"])


def test_a_wrong_method_is_a_405_naming_every_allowed_method(service: TestClient) -> None:
    response = service.delete("/v1/health")
    body = assert_error_shape(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET"
    assert "DELETE" in str(body["message"])


def test_405_allows_the_methods_of_every_route_sharing_the_path(tmp_path: Path) -> None:
    """``GET /v1/checkpoints`` and ``POST /v1/checkpoints`` are two routes: Allow names both."""
    tokens = make_tokens(tmp_path)
    client = TestClient(_registry(tmp_path, tokens.path), headers=tokens.header("bureau"))
    response = client.delete("/v1/checkpoints")
    assert_error_shape(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"


def test_a_trailing_slash_is_a_404_never_a_redirect_built_from_the_host_header(
    service: TestClient,
) -> None:
    response = service.get("/v1/health/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert_error_shape(response, 404, "not_found")
    assert "location" not in response.headers


def test_every_answer_is_nosniff_and_no_store(service: TestClient) -> None:
    for response in (
        service.get("/v1/health"),  # fails in two of them: the apps are not started
        service.get("/v1/no-such-thing"),
        service.get("/v1/health", headers={"Authorization": "Bearer nope"}),
        service.get("/openapi.json"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
        assert response.headers["Cache-Control"] == "no-store", response.url


def test_an_unexpected_failure_is_a_500_in_the_error_shape(tmp_path: Path) -> None:
    router = APIRouter()

    @router.get("/v1/broken")
    def broken() -> None:
        raise RuntimeError("a bug")

    app = build_api(title="t", description="d", router=router, tokens_file=tmp_path / "t.toml")
    response = TestClient(app, raise_server_exceptions=False).get("/v1/broken")
    body = assert_error_shape(response, 500, "internal")
    assert "a bug" not in str(body["message"])  # the log has it, not the client
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


# -- bodies the registry cannot read, on real stores: refused, nothing stored ----------------


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def test_deeply_nested_json_is_a_400_in_the_error_shape(client: TestClient) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    for path in ("/v1/contracts", "/v1/batch"):
        response = client.post(path, content=deep, headers={"Content-Type": "application/json"})
        assert_error_shape(response, 400, "bad_request")
    assert _head(client) == 0


def test_an_error_list_is_capped_with_a_count_of_all_errors(client: TestClient) -> None:
    unknown = {f"k{i}": 0 for i in range(70_000)}
    response = client.post("/v1/brokers", json=unknown)
    body = assert_error_shape(response, 422, "invalid")
    assert isinstance(body["errors"], list)
    assert len(body["errors"]) == MAX_ERRORS_LISTED
    assert body["error_count"] == 70_000 + 4  # every unknown key, and the 4 fields missing
    assert len(response.content) < 10_000
    assert _head(client) == 0


def test_a_body_over_1_mib_is_a_413_in_the_error_shape(client: TestClient) -> None:
    response = client.post(
        "/v1/contracts",
        content=b"{" + b" " * (1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert_error_shape(response, 413, "too_large")
    assert _head(client) == 0


def test_every_error_listed_in_an_invalid_request_carries_chinese(client: TestClient) -> None:
    body = {"registration_no": "a/b", "station_id": "", "contract_amount": 12, "extra": 1}
    response = client.post("/v1/contracts", json=body)
    refused = assert_error_shape(response, 422, "invalid")
    assert isinstance(refused["errors"], list)
    for error in refused["errors"]:
        assert re.search(r"[\u4e00-\u9fff]", error["message_zh"]), error
        assert not error["message_zh"].startswith("不符合要求"), error  # worded, not a fallback
