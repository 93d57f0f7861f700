"""``recorded_at`` never decreases along the log, however many processes write to it.

A cut of the log by time ("as known at instant T") must be a prefix of the log: the subsidy
service reads ``as_of=T`` as the longest prefix whose entries were recorded at or before T.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.registry import writer
from services.registry.application import Registry
from services.registry.commands import Principal
from tests.conftest import Tokens, make_tokens
from tests.integration.test_registry_concurrency import (
    assert_one_intact_chain,
    invoice,
    register,
    registries,
)
from tests.support.broker import free_port
from tests.support.databases import fresh_postgres_database
from tests.support.parties import contract_body
from tests.support.stack import TCR

STATION = Principal("station-s1", "station", "S1")
CLIENTS = 12
REQUESTS_PER_CLIENT = 24
BATCH_SIZE = 15  # every other request; the rest are single registrations


@dataclass
class Served:
    """``tcr registry serve --workers N``: N processes, each with its own writer."""

    url: str
    database_url: str
    tokens: Tokens
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.tokens.header(who), timeout=60.0)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # uvicorn's supervisor stops its workers
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture(
    params=[("postgresql", 3), ("sqlite", 2)], ids=["postgresql-3-workers", "sqlite-2-workers"]
)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    backend, workers = request.param
    if backend == "postgresql":
        with fresh_postgres_database() as url:
            yield from _serve(tmp_path, url, workers)
    else:
        yield from _serve(tmp_path, f"sqlite:///{tmp_path / 'registry.db'}", workers)


def _serve(folder: Path, database_url: str, workers: int) -> Iterator[Served]:
    tokens = make_tokens(folder)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCR_")}
    env |= {
        "TCR_REGISTRY_DATABASE_URL": database_url,
        "TCR_TOKENS_FILE": str(tokens.path),
        "TCR_SIGNING_KEY_FILE": str(folder / "registry-signing-key.pem"),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = folder / "registry.log"
    argv = [TCR, "registry", "serve", "--port", str(port), "--workers", str(workers)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*argv, "--no-access-log"],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(f"http://127.0.0.1:{port}", database_url, tokens, process, log_path)
    try:
        deadline = time.monotonic() + 60
        # Every worker up, so that the clients' connections spread over all of them.
        while log_path.read_text(errors="replace").count("Application startup complete") < workers:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the registry did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield served
    finally:
        served.stop()


def _post_for(served: Served, client_no: int) -> int:
    """One client's requests, alternating batches and single registrations; events stored."""
    stored = 0
    with served.client("station") as http:
        for n in range(REQUESTS_PER_CLIENT):
            first = (client_no * REQUESTS_PER_CLIENT + n) * BATCH_SIZE
            if n % 2:
                commands = [
                    {"op": "register_contract", "body": contract_body(_registration_no(k))}
                    for k in range(first, first + BATCH_SIZE)
                ]
                response = http.post("/v1/batch", json={"commands": commands})
                assert response.status_code == 201, response.text
                stored += response.json()["count"]
            else:
                response = http.post("/v1/contracts", json=contract_body(_registration_no(first)))
                assert response.status_code == 201, response.text
                stored += 1
    return stored


def _registration_no(k: int) -> str:
    return f"20244104{k:08d}"


def _whole_feed(served: Served) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with served.client("auditor") as http:
        after = 0
        while True:
            page = http.get("/v1/events", params={"after": after, "limit": 5000}).json()
            if not page["events"]:
                return events
            events += page["events"]
            after = page["next_after"]


def test_recorded_at_never_decreases_along_the_log_written_by_several_server_processes(
    served: Served,
) -> None:
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        stored = sum(pool.map(lambda c: _post_for(served, c), range(CLIENTS)))

    feed = _whole_feed(served)
    assert len(feed) == stored == CLIENTS * REQUESTS_PER_CLIENT // 2 * (1 + BATCH_SIZE)
    backwards = [
        (a["position"], a["recorded_at"], b["position"], b["recorded_at"])
        for a, b in pairwise(feed)
        if b["recorded_at"] < a["recorded_at"]
    ]
    assert backwards == [], f"{len(backwards)} of {len(feed)} positions go back: {backwards[:5]}"
    registry = Registry(served.database_url)
    try:
        # The stored events say the same instants: the chain rebuilt from them verifies.
        assert_one_intact_chain(registry, expected_entries=stored)
    finally:
        registry.close()


def test_a_clock_that_goes_back_between_groups_never_takes_recorded_at_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    noon = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    readings = iter([noon, noon - timedelta(hours=1), noon + timedelta(seconds=1)])
    monkeypatch.setattr(writer, "clock", lambda: next(readings))
    with registries(database_url, 1) as (registry,):
        register(registry, "R1")  # the clock says noon
        first = registry.submit(STATION, [invoice("R1", "INV-1", 1)]).result(60)  # an hour back
        second = registry.submit(STATION, [invoice("R1", "INV-2", 1)]).result(60)  # a second on

        log = assert_one_intact_chain(registry, expected_entries=3)
        assert [e["recorded_at"] for e in log] == [
            "2030-06-01T12:00:00.000000Z",
            "2030-06-01T12:00:00.000000Z",
            "2030-06-01T12:00:01.000000Z",
        ]
        assert (first["recorded_at"], second["recorded_at"]) == (
            log[1]["recorded_at"],
            log[2]["recorded_at"],
        )
