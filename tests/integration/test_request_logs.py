"""A served registry logs JSON, one object per line on stderr: each request with its id, its
principal's name (never its token), route, status and duration; each refused write at info
with the rule it broke."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Tokens, make_tokens
from tests.support.broker import free_port
from tests.support.stack import TCR, _base_env, contract_commands


@dataclass
class ServedRegistry:
    client: httpx.Client
    tokens: Tokens
    stderr: Path

    def lines(self) -> list[dict[str, Any]]:
        """Every line the registry wrote to stderr, each parsed as JSON (or the test fails)."""
        return [orjson.loads(line) for line in self.stderr.read_text().splitlines() if line]

    def wait_for_line(self, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [line for line in self.lines() if matches(line)]
            if found:
                (line,) = found
                return line
            time.sleep(0.05)
        pytest.fail(f"no such log line in:\n{self.stderr.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedRegistry]:
    folder = tmp_path_factory.mktemp("logged")
    tokens = make_tokens(folder)
    port = free_port()
    env = {
        **_base_env(),
        "TCR_TOKENS_FILE": str(tokens.path),
        "TCR_REGISTRY_DATABASE_URL": f"sqlite:///{folder / 'registry.db'}",
        "TCR_SIGNING_KEY_FILE": str(folder / "signing-key.pem"),
    }
    stderr = folder / "stderr.log"
    with stderr.open("wb") as err, (folder / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            [TCR, "registry", "serve", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the registry did not start:\n{stderr.read_text()}")
            time.sleep(0.1)
        yield ServedRegistry(client, tokens, stderr)
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def test_every_line_on_stderr_is_one_json_object_with_time_level_logger_and_message(
    registry: ServedRegistry,
) -> None:
    lines = registry.lines()
    assert lines
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= line.keys(), line


def test_a_request_is_logged_with_its_id_principal_route_status_and_duration(
    registry: ServedRegistry,
) -> None:
    answer = registry.client.get(
        "/v1/contracts/TC-LOGGED",
        headers={**registry.tokens.header("bureau"), "X-Request-ID": "req-logged-1"},
    )
    assert answer.status_code == 404
    assert answer.headers["x-request-id"] == "req-logged-1"
    line = registry.wait_for_line(lambda x: x.get("request_id") == "req-logged-1")
    assert line["logger"] == "tcr.http"
    assert line["level"] == "INFO"
    assert line["principal"] == "bureau"
    assert line["route"] == "/v1/contracts/{registration_no}"
    assert line["method"] == "GET"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def test_a_request_without_an_id_is_given_one_and_told_it(registry: ServedRegistry) -> None:
    answer = registry.client.get("/v1/health")
    given = answer.headers["x-request-id"]
    assert len(given) >= 16
    line = registry.wait_for_line(lambda x: x.get("request_id") == given)
    assert line["route"] == "/v1/health" and line["status"] == 200


def test_an_id_that_could_forge_a_line_is_replaced(registry: ServedRegistry) -> None:
    forged = "x" * 200
    answer = registry.client.get("/v1/health", headers={"X-Request-ID": forged})
    assert answer.headers["x-request-id"] != forged
    registry.wait_for_line(lambda x: x.get("request_id") == answer.headers["x-request-id"])


def test_no_token_is_ever_logged(registry: ServedRegistry) -> None:
    for who in ("bureau", "station", "auditor"):
        registry.client.get("/v1/events", headers=registry.tokens.header(who))
    registry.client.get("/v1/events", headers={"Authorization": "Bearer not-a-known-token"})
    time.sleep(0.3)
    text = registry.stderr.read_text()
    for token in (registry.tokens.bureau, registry.tokens.station, registry.tokens.auditor):
        assert token not in text
    assert "not-a-known-token" not in text


def test_a_refused_write_is_logged_at_info_with_the_rule_it_broke(
    registry: ServedRegistry,
) -> None:
    invoice = contract_commands(1, 1)[1]["body"]  # its contract was never registered
    number = invoice.pop("registration_no")
    answer = registry.client.post(
        f"/v1/contracts/{number}/invoices",
        json=invoice,
        headers={**registry.tokens.header("station"), "X-Request-ID": "req-refused-1"},
    )
    assert answer.status_code == 404, answer.text
    refusal = registry.wait_for_line(
        lambda x: x["logger"] == "tcr.registry.refusals" and x.get("request_id") == "req-refused-1"
    )
    assert refusal["level"] == "INFO"
    assert refusal["rule"] == "not_found"
    assert refusal["field"] == "registration_no"
    assert refusal["principal"] == "station-s1"
    request = registry.wait_for_line(
        lambda x: x["logger"] == "tcr.http" and x.get("request_id") == "req-refused-1"
    )
    assert (request["status"], request["error"], request["field"]) == (
        404,
        "not_found",
        "registration_no",
    )


def test_a_request_refused_before_the_writer_names_its_rule_too(registry: ServedRegistry) -> None:
    answer = registry.client.post(
        "/v1/brokers",
        json={"broker_id": "B-9"},
        headers={**registry.tokens.header("bureau"), "X-Request-ID": "req-invalid-1"},
    )
    assert answer.status_code == 422
    line = registry.wait_for_line(lambda x: x.get("request_id") == "req-invalid-1")
    assert (line["level"], line["error"], line["principal"]) == ("INFO", "invalid", "bureau")
    assert line["field"] == answer.json()["field"]
