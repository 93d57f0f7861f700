"""A server of several workers reports the whole server on ``/metrics``, whichever worker
answers the scrape: prometheus-client's multiprocess mode, in a folder of its own."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Tokens
from tests.support.broker import free_port
from tests.support.stack import TCR, _base_env


def health_requests(text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "tcr_http_requests_total" and s.labels["route"] == "/v1/health"
    )


def test_every_scrape_of_a_two_worker_server_counts_the_requests_of_both(
    tmp_path: Path, tokens: Tokens
) -> None:
    port = free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        **_base_env(),
        "TMPDIR": str(scratch),  # where the server makes its metrics folder
        "TCR_TOKENS_FILE": str(tokens.path),
        "TCR_REGISTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "TCR_SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem"),
    }
    argv = [TCR, "registry", "serve", "--port", str(port), "--workers", "2", "--no-access-log"]
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        answered = 0
        while True:
            try:
                status = httpx.get(f"{url}/v1/health").status_code
                answered += 1
                if status == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail((tmp_path / "server.log").read_text())
            time.sleep(0.2)
        for _ in range(30):  # a connection each: the kernel spreads them over the workers
            assert httpx.get(f"{url}/v1/health").status_code == 200
        scrapes = {health_requests(httpx.get(f"{url}/metrics").text) for _ in range(6)}
        assert scrapes == {answered + 30.0}  # each scrape sees every worker's count
        assert any(p.name.startswith("tcr-metrics-") for p in scratch.iterdir())
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert not any(p.name.startswith("tcr-metrics-") for p in scratch.iterdir())  # gone with it
