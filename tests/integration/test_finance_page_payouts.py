"""The finance page's payout screens against the payouts contract of issue #12: the finance
service's draft as the contract shapes it (``app.state.balances``, where the payouts work
wires its use cases), and a registry (a real HTTP server on a port) that
answers ``POST /v1/payouts`` as the contract says. Approving posts the draft with the officer's
own token and shows the stored position; a draft that moved meanwhile is not posted."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.testclient import TestClient

from services.subsidy.app import create_app
from services.subsidy.settings import SubsidySettings
from tests.conftest import Tokens
from tests.support.broker import free_port

YEAR = 2024
DRAFT = {
    "year": YEAR,
    "basis_position": 120,
    "policy_version": "pingdingshan-2020.1",
    "lines": [
        {"beneficiary": "91410402MAE2E0001J", "name": "平顶山鹰城重工有限公司",
         "category": "absorption", "amount": "10000.00", "kind": "payment"},
        {"beneficiary": "12410481MBE2E00105", "name": "舞钢市特钢研究所",
         "category": "output", "amount": "30000.00", "kind": "recovery"},
    ],
    "totals": {"payment": "10000.00", "recovery": "30000.00"},
}  # fmt: skip


class Balances:
    """The finance service's balances use cases, answering the contract's draft."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def draft(self, year: int) -> dict[str, Any]:
        return {**self.answer, "year": year}


class Registry:
    """``POST /v1/payouts`` as the contract answers it, served over HTTP; what it was sent."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        app = FastAPI()

        @app.post("/v1/payouts")
        async def payouts(request: Request) -> JSONResponse:
            self.received.append((dict(request.headers), await request.json()))
            if self.status != 201:
                body = {"error": "conflict", "field": "payout_no", "message": "used before"}
                return JSONResponse(body, status_code=self.status)
            return JSONResponse({"position": 121, "event_id": "e-1"}, status_code=201)

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, port=self.port, log_level="warning", lifespan="off")
        )


@pytest.fixture
def registry() -> Iterator[Registry]:
    served = Registry()
    thread = threading.Thread(target=served.server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not served.server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield served
    served.server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(tmp_path: Path, tokens: Tokens, registry: Registry) -> Iterator[TestClient]:
    """The finance service, its officer signed in, its application given the draft."""
    settings = SubsidySettings(
        subsidy_database_url=f"sqlite:///{tmp_path}/subsidy.db",
        tokens_file=tokens.path,
        registry_url=registry.url,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        app.state.balances = Balances(DRAFT)
        csrf = _form(client.get("/").text)["csrf"]  # the sign-in form's, with its cookie
        signed_in = client.post("/sign-in", data={"token": tokens.finance, "csrf": csrf})
        assert signed_in.status_code == 200, signed_in.text
        yield client


def _form(html: str) -> dict[str, str]:
    """The approval form's hidden fields, as the browser would send them."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


def test_approving_the_draft_posts_it_with_the_officers_token_and_shows_the_stored_position(
    page: TestClient, registry: Registry, tokens: Tokens
) -> None:
    draft = page.get(f"/years/{YEAR}/payouts/draft")
    assert draft.status_code == 200 and "舞钢市特钢研究所" in draft.text
    assert "30,000.00" in draft.text
    form = {**_form(draft.text), "payout_no": "ZF-2025-001", "paid_on": "2025-06-30"}

    receipt = page.post(f"/years/{YEAR}/payouts", data=form)

    assert receipt.status_code == 201, receipt.text
    assert re.search(r'id="receipt-position">121<', receipt.text)
    ((headers, body),) = registry.received
    assert headers["authorization"] == f"Bearer {tokens.finance}"
    assert headers["idempotency-key"] == form["key"]
    assert body == {
        "payout_no": "ZF-2025-001",
        "year": YEAR,
        "paid_on": "2025-06-30",
        "basis_position": 120,
        "lines": [
            {k: line[k] for k in ("beneficiary", "category", "amount", "kind")}
            for line in DRAFT["lines"]
        ],
    }


def test_a_draft_that_moved_since_it_was_shown_is_not_posted(
    page: TestClient, registry: Registry
) -> None:
    form = {**_form(page.get(f"/years/{YEAR}/payouts/draft").text), "payout_no": "ZF-1"}
    page.app.state.balances.answer = {**DRAFT, "basis_position": 130}  # type: ignore[attr-defined]

    answer = page.post(f"/years/{YEAR}/payouts", data={**form, "paid_on": "2025-06-30"})

    assert answer.status_code == 409
    assert "草稿已随登记日志更新" in answer.text
    assert registry.received == []


def test_the_registrys_refusal_is_shown_and_the_draft_kept(
    page: TestClient, registry: Registry
) -> None:
    registry.status = 409
    form = {**_form(page.get(f"/years/{YEAR}/payouts/draft").text), "payout_no": "ZF-1"}

    answer = page.post(f"/years/{YEAR}/payouts", data={**form, "paid_on": "2025-06-30"})

    assert answer.status_code == 409
    assert "payout_no: used before" in answer.text
    assert 'value="ZF-1"' in answer.text


def test_an_unreachable_registry_records_nothing_and_keeps_the_form(
    page: TestClient, registry: Registry
) -> None:
    page.app.state.registry_url = f"http://127.0.0.1:{free_port()}"  # type: ignore[attr-defined]
    form = {**_form(page.get(f"/years/{YEAR}/payouts/draft").text), "payout_no": "ZF-2"}

    answer = page.post(f"/years/{YEAR}/payouts", data={**form, "paid_on": "2025-06-30"})

    assert answer.status_code == 503
    assert "无法连接登记服务" in answer.text
    assert f'value="{form["key"]}"' in answer.text  # sent again, it is the same request
    assert registry.received == []
