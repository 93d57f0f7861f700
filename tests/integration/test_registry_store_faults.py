"""The registry as a real process behind a proxy that loses COMMIT answers or the whole store.

Exactly once: a request whose COMMIT's answer is lost (the server committed, the connection
dropped) is stored once and answered as it would have been, with or without an Idempotency-Key.
Outages: with the store unreachable every request gets a 503 in the error shape at once, and
writes succeed again once it is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Tokens
from tests.support.broker import free_port
from tests.support.databases import fresh_postgres_database
from tests.support.parties import amendment_body, contract_body, invoice_body
from tests.support.pg_proxy import PostgresProxy
from tests.support.stack import TCR, Service, _base_env

NO = contract_body()["registration_no"]
OUTAGE_CLIENTS = 128


class Registry:
    """``tcr registry serve`` on a PostgreSQL database reached through a proxy."""

    def __init__(self, tmp_path: Path, database_url: str, tokens: Tokens) -> None:
        self.proxy = PostgresProxy().start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **_base_env(),
            "TCR_REGISTRY_DATABASE_URL": self.proxy.url(database_url),
            "TCR_TOKENS_FILE": str(tokens.path),
            "TCR_SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem"),
        }
        argv = [TCR, "registry", "serve", "--port", str(self.port), "--no-access-log"]
        self.service = Service("registry", argv, env, tmp_path / "registry.log").start()
        self.http = httpx.Client(base_url=self.url, headers=tokens.header("station"), timeout=30)
        self.reader = httpx.Client(base_url=self.url, headers=tokens.header("auditor"), timeout=30)
        deadline = time.monotonic() + 30
        while not self._healthy():
            if self.service.exited() is not None or time.monotonic() > deadline:
                pytest.fail(f"the registry did not start:\n{self.service.tail()}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return self.http.get("/v1/health").status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        while page := self.reader.get("/v1/events", params={"after": len(entries)}).json()[
            "events"
        ]:
            entries += page
        return entries

    def close(self) -> None:
        self.http.close()
        self.reader.close()
        self.service.stop()
        self.proxy.stop()


@pytest.fixture
def registry(tmp_path: Path, tokens: Tokens) -> Iterator[Registry]:
    with fresh_postgres_database() as url:
        started = Registry(tmp_path, url, tokens)
        try:
            assert started.http.post("/v1/contracts", json=contract_body()).status_code == 201
            yield started
        finally:
            started.close()


def entries_of(log: list[dict[str, Any]], answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The log entries with the type and payload of the one at the answer's position."""
    (stored,) = [e for e in log if e["position"] == answer["position"]]
    return [e for e in log if e["type"] == stored["type"] and e["payload"] == stored["payload"]]


def assert_answered_as_stored(answer: dict[str, Any], log: list[dict[str, Any]]) -> None:
    (entry,) = entries_of(log, answer)  # stored once
    for name in ("position", "event_id", "type", "hash", "recorded_at"):
        assert answer[name] == entry[name], name


# -- a COMMIT whose answer is lost ---------------------------------------------------------


@pytest.mark.parametrize("keyed", [False, True], ids=["without-key", "with-key"])
def test_a_write_whose_commit_answer_is_lost_is_stored_once_and_answered_as_stored(
    registry: Registry, keyed: bool
) -> None:
    headers = {"Idempotency-Key": "lost-answer-1"} if keyed else {}
    registry.proxy.drop_next_commit_answer()

    response = registry.http.post(
        f"/v1/contracts/{NO}/invoices", json=invoice_body("INV-LOST"), headers=headers
    )

    assert registry.proxy.dropped_commits == 1  # the fault did strike this request
    assert response.status_code == 201, response.text
    log = registry.log()
    assert_answered_as_stored(response.json(), log)
    assert [e["type"] for e in log] == ["ContractRegistered", "InvoiceRecorded"]
    if keyed:
        again = registry.http.post(
            f"/v1/contracts/{NO}/invoices", json=invoice_body("INV-LOST"), headers=headers
        )
        assert again.status_code == 201
        assert again.json() == response.json()
        assert len(registry.log()) == 2


def test_a_group_whose_commit_answer_is_lost_answers_every_request_once(
    registry: Registry,
) -> None:
    """Several concurrent requests, some keyed, share the group whose answer is lost."""
    registry.proxy.drop_next_commit_answer()

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=registry.url, headers=dict(registry.http.headers), timeout=30
        ) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"/v1/contracts/{NO}/amendments",
                        json=amendment_body(title=f"技术开发 第{i}版"),
                        headers={"Idempotency-Key": f"group-{i}"} if i % 2 else {},
                    )
                    for i in range(16)
                )
            )

    responses = asyncio.run(post_all())

    assert registry.proxy.dropped_commits == 1
    assert [r.status_code for r in responses] == [201] * 16, [r.text for r in responses]
    log = registry.log()
    assert len(log) == 1 + 16
    for response in responses:
        assert_answered_as_stored(response.json(), log)


def test_a_write_whose_commit_outcome_cannot_be_learnt_is_a_503_that_says_so(
    registry: Registry,
) -> None:
    headers = {"Idempotency-Key": "unknown-1"}
    body = invoice_body("INV-UNKNOWN")
    registry.proxy.drop_next_commit_answer(then_close=True)  # and nobody can ask

    response = registry.http.post(f"/v1/contracts/{NO}/invoices", json=body, headers=headers)

    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"
    assert "outcome unknown" in response.json()["message"]
    assert "same Idempotency-Key" in response.json()["message"]
    registry.proxy.reopen()
    retried = wait_for_201(registry, f"/v1/contracts/{NO}/invoices", body, headers)
    log = registry.log()
    assert_answered_as_stored(retried, log)  # the original write, answered; not a second one
    assert len(log) == 2


# -- the store unreachable --------------------------------------------------------------------


def wait_for_201(
    registry: Registry,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    timeout: float = 20,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = registry.http.post(path, json=body, headers=headers or {})
        if response.status_code == 201:
            answer: dict[str, Any] = response.json()
            return answer
        assert response.status_code == 503, response.text
        if time.monotonic() > deadline:
            pytest.fail(f"still 503 after {timeout} s: {response.text}")
        time.sleep(0.2)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "unavailable"
    assert set(body) >= {"error", "field", "message"}


def test_with_the_store_unreachable_every_request_is_a_503_and_writes_resume_after(
    registry: Registry,
) -> None:
    registry.proxy.close()

    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=OUTAGE_CLIENTS)
        async with httpx.AsyncClient(
            base_url=registry.url, headers=dict(registry.http.headers), timeout=30, limits=limits
        ) as client:
            return await asyncio.gather(
                *(
                    client.post(f"/v1/contracts/{NO}/invoices", json=invoice_body(f"INV-{i}", "1"))
                    for i in range(OUTAGE_CLIENTS)
                )
            )

    responses = asyncio.run(post_all())

    assert len(responses) == OUTAGE_CLIENTS
    for response in responses:
        assert_unavailable(response)
    assert_unavailable(registry.http.get("/v1/health"))
    assert_unavailable(registry.http.get(f"/v1/contracts/{NO}"))
    assert_unavailable(registry.reader.get("/v1/events"))
    assert_unavailable(registry.http.get("/v1/checkpoints/latest"))
    assert "Traceback" not in registry.service.tail(400)

    registry.proxy.reopen()
    stored = wait_for_201(registry, f"/v1/contracts/{NO}/invoices", invoice_body("INV-AFTER"))
    assert registry.http.get("/v1/health").status_code == 200
    assert [e["position"] for e in registry.log()][-1] == stored["position"]
