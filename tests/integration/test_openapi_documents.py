"""Each service's OpenAPI document and its /docs page: every field described with an example
that the server accepts, every path's methods in ``Allow``, and Swagger UI served by the
service itself, with no URL outside it (an intranet has no CDN)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.common.tokens import add_principal
from services.registry.api import models as m
from services.registry.api.batch import BatchCreate
from tests.conftest import Tokens
from tests.integration.test_error_shape import SERVICES


@pytest.fixture(params=sorted(SERVICES))
def app(request: pytest.FixtureRequest, tmp_path: Path, tokens: Tokens) -> TestClient:
    """One service's app, not started: a document and /docs need no store."""
    return TestClient(
        SERVICES[request.param](tmp_path, tokens.path), headers=tokens.header("auditor")
    )


def _properties(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, schema in document["components"]["schemas"].items():
        for prop, spec in schema.get("properties", {}).items():
            yield f"{name}.{prop}", spec


def _refers(spec: dict[str, Any]) -> bool:
    """Whether the property is a model (or list of models) with examples of its own."""
    text = str(spec)
    return "$ref" in text and "examples" not in spec


def test_every_field_has_a_description_naming_its_chinese_term_and_an_example(
    app: TestClient,
) -> None:
    document = app.get("/openapi.json").json()
    missing = [
        name
        for name, spec in _properties(document)
        if not re.search(r"[\u4e00-\u9fff]", spec.get("description", ""))
        or not (spec.get("examples") or _refers(spec))
    ]
    assert missing == []


def test_every_operation_documents_its_refusals_with_the_error_body(app: TestClient) -> None:
    document = app.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            refusals = {s: r for s, r in operation["responses"].items() if s.startswith(("4", "5"))}
            assert "503" in refusals, f"{method} {path}"
            for status, answer in refusals.items():
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_options_on_any_path_is_a_405_allowing_exactly_the_documented_methods(
    app: TestClient,
) -> None:
    document = app.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "X", path)
        response = app.options(concrete)
        assert response.status_code == 405, path
        allowed = set(response.headers["Allow"].split(", "))
        assert allowed == {method.upper() for method in operations}, path


def test_docs_loads_swagger_ui_from_the_service_itself(app: TestClient) -> None:
    page = app.get("/docs")

    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    assert [u for u in urls if re.match(r"(https?:)?//", u)] == []
    assert '"validatorUrl": null' in page.text  # no badge fetched from validator.swagger.io
    for url in urls:
        asset = app.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url


def test_the_documented_examples_are_accepted_as_they_stand(
    client: TestClient, tokens: Tokens
) -> None:
    """What /docs "Try it out" sends first: each example of the registry's bodies, in an
    order that makes sense, on a fresh store (the batch registers the example contract)."""
    no = m.EXAMPLE_REGISTRATION_NO
    bureau = tokens.header("bureau")
    # The examples' station, as the demo's tokens file holds it: the bureau registers only
    # under a station id that holds a token.
    add_principal(tokens.path, "station-demo", "station", "S0001")
    posts = [
        ("/v1/batch", BatchCreate),
        ("/v1/brokers", m.BrokerCreate),
        ("/v1/provincial-funding", m.ProvincialFundingCreate),
        (f"/v1/contracts/{no}/transfer-proofs", m.TransferProofCreate),
        (f"/v1/contracts/{no}/amendments", m.ContractAmendment),
        (f"/v1/contracts/{no}/invoices/INV-0001/void", m.InvoiceVoid),
        (f"/v1/contracts/{no}/transfer-proofs/BANK-0001/withdraw", m.TransferProofWithdrawal),
        (f"/v1/contracts/{no}/cancellation", m.ContractCancellation),
    ]
    for path, model in posts:
        example = model.model_json_schema()["examples"][0]
        response = client.post(path, json=example, headers=bureau)
        assert response.status_code == 201, (path, response.text)
    assert client.get(f"/v1/contracts/{no}", headers=bureau).json()["status"] == "cancelled"
