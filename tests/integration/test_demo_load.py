"""``tcr demo load`` stores a generated history in a real registry, one batch at a time, and a
re-run stores nothing new: every batch is replayed from its idempotency key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.cli import main
from services.common.tokens import add_principal
from services.demo import load as demo_load
from services.demo.generate import write_history
from services.demo.load import Batch, LoadError, LoadSummary, load_history, read_batches
from services.demo.population import STATIONS
from tests.support.broker import free_port

TCR = str(Path(sys.executable).with_name("tcr"))


@dataclass
class Registry:
    url: str
    bureau: str
    station: str
    finance: str

    def head(self) -> int:
        head: int = httpx.get(f"{self.url}/v1/health").raise_for_status().json()["head"]
        return head

    def load(self, path: Path, batch_size: int) -> LoadSummary:
        """Load as the demo does: the bureau's commands, and finance's payouts."""
        return load_history(
            path, self.url, self.bureau, batch_size=batch_size, progress=False,
            finance_token=self.finance,
        )  # fmt: skip

    def contract(self, registration_no: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}/v1/contracts/{registration_no}",
            headers={"Authorization": f"Bearer {self.bureau}"},
        )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """``tcr registry serve`` on a fresh SQLite file, with a bureau and a station token."""
    tokens = tmp_path / "tokens.toml"
    bureau = add_principal(tokens, "bureau", "bureau")
    station = add_principal(tokens, "station-s1", "station", "S1")
    finance = add_principal(tokens, "finance", "finance")
    for demo in STATIONS:  # the bureau registers only under stations that hold a token
        add_principal(tokens, f"station-{demo.station_id.lower()}", "station", demo.station_id)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCR_")}
    env |= {
        "TCR_TOKENS_FILE": str(tokens),
        "TCR_REGISTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "TCR_SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem"),
    }
    log = (tmp_path / "registry.log").open("wb")
    process = subprocess.Popen(
        [TCR, "registry", "serve", "--port", str(port), "--no-access-log"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (tmp_path / "registry.log").read_text("utf-8", errors="replace")
                pytest.fail(f"the registry did not start:\n{output[-3000:]}")
            time.sleep(0.1)
        yield Registry(url, bureau, station, finance)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, int]:
    """A small demo history: two years of 40 contracts."""
    path = tmp_path / "demo.jsonl"
    summary = write_history(path, range(2024, 2026), 40, seed=7)
    return path, summary.commands


def test_a_history_is_stored_whole_and_a_rerun_stores_nothing_new(
    registry: Registry, history: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    path, commands = history
    first = registry.load(path, 60)
    assert registry.head() == commands == first.commands == first.stored_commands
    # Payouts go in batches of their own, posted as finance.
    assert first.batches == first.stored_batches == len(list(read_batches(path, 60)))
    assert first.batches > -(-commands // 60)
    assert (first.skipped_batches, first.first_position, first.last_position) == (0, 1, commands)
    # A history loaded after the fact says so in every entry, for the audit.
    bureau = {"Authorization": f"Bearer {registry.bureau}"}
    log = httpx.get(f"{registry.url}/v1/events", params={"limit": 5000}, headers=bureau).json()
    assert len(log["events"]) == commands
    assert {e.get("intake") for e in log["events"]} == {"backlog"}

    again = registry.load(path, 60)
    assert registry.head() == commands
    assert (again.stored_batches, again.stored_commands) == (0, 0)
    assert again.skipped_batches == first.batches and again.skipped_commands == commands
    assert (again.first_position, again.last_position) == (1, commands)

    finance_file = path.with_name("finance-token")
    finance_file.write_text(registry.finance + "\n", "utf-8")
    argv = ["demo", "load", str(path), "--registry", registry.url, f"--token={registry.bureau}"]
    argv += ["--finance-token-file", str(finance_file)]
    assert main([*argv, "--batch-size", "60", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"skipped {first.batches} batches" in out and "stored 0 in 0 batches" in out
    assert registry.head() == commands


def test_an_interrupted_load_resumes_where_it_stopped(
    registry: Registry, history: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, commands = history
    post = demo_load._post

    def dies_at_the_third_batch(
        client: httpx.Client, batch: Batch, key: str, p: Path, headers: dict[str, str]
    ) -> Any:
        if batch.index == 2:
            raise LoadError("the connection dropped")
        return post(client, batch, key, p, headers)

    monkeypatch.setattr(demo_load, "_post", dies_at_the_third_batch)
    with pytest.raises(LoadError, match="dropped"):
        registry.load(path, 50)
    assert registry.head() == 100
    monkeypatch.undo()

    resumed = registry.load(path, 50)
    assert (resumed.skipped_batches, resumed.skipped_commands) == (2, 100)
    assert resumed.stored_commands == commands - 100
    assert registry.head() == commands == resumed.last_position


def test_a_load_with_another_batch_size_stops_at_the_first_clash(
    registry: Registry, history: tuple[Path, int]
) -> None:
    path, commands = history
    registry.load(path, 100)
    with pytest.raises(LoadError) as refused:
        registry.load(path, 70)
    message = str(refused.value)
    assert "batch 1 (lines 1–70" in message and "(409)" in message
    assert "already" in message and "Nothing of it was stored" in message
    assert registry.head() == commands


def test_a_station_token_is_refused_with_the_advice_to_use_the_bureaus(
    registry: Registry, history: tuple[Path, int]
) -> None:
    path, _ = history
    with pytest.raises(LoadError, match="science bureau's token"):
        load_history(path, registry.url, registry.station, batch_size=100, progress=False)
    assert registry.head() == 0


def test_a_load_without_finances_token_stops_at_the_first_payout(
    registry: Registry, history: tuple[Path, int]
) -> None:
    path, _ = history
    with pytest.raises(LoadError, match="records a payout, which finance alone records") as refused:
        load_history(path, registry.url, registry.bureau, batch_size=100, progress=False)
    line = int(str(refused.value).split(" line ")[1].split()[0])
    assert registry.head() == line - 1  # everything before the payout, nothing after


def test_an_unreachable_registry_is_reported(history: tuple[Path, int]) -> None:
    path, _ = history
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LoadError, match="cannot reach the registry"):
        load_history(path, url, "token", progress=False)
