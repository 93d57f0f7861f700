"""``tcr relay`` and ``tcr subsidy consume`` serve their metrics on the ports their settings
name: the relay's published position and lag, the consumer's applied position and lag."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Tokens
from tests.support.broker import TansuBroker, free_port
from tests.support.stack import Stack, contract_commands, setup_commands


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    with TansuBroker(tmp_path_factory.mktemp("broker") / "tansu.log") as started:
        yield started


def scrape(port: int) -> dict[str, float]:
    """The unlabelled samples a metrics port serves, by name."""
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    answer.raise_for_status()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
        if not s.labels
    }


def test_relay_and_consumer_serve_their_positions_and_lag_on_their_metrics_ports(
    tmp_path: Path, broker: TansuBroker, tokens: Tokens
) -> None:
    name = uuid.uuid4().hex[:8]
    stack = Stack(
        tmp_path,
        registry_database_url=f"sqlite:///{tmp_path / 'registry.db'}",
        subsidy_database_url=f"sqlite:///{tmp_path / 'subsidy.db'}",
        bootstrap=broker.bootstrap,
        topic=f"events-{name}",
        group=f"subsidy-{name}",
        tokens_file=tokens.path,
        writer_token=tokens.bureau,
        feed_token=tokens.service,
        finance_token=tokens.finance,
    )
    relay_port, consumer_port = free_port(), free_port()
    stack.relay.env["TCR_RELAY_METRICS_PORT"] = str(relay_port)
    stack.consumer.env["TCR_CONSUMER_METRICS_PORT"] = str(consumer_port)
    with stack:
        stack.post(setup_commands() + contract_commands(0, 30))
        head = stack.wait_caught_up()

        def relay_published_the_head() -> bool:
            relay = scrape(relay_port)
            return relay["tcr_relay_position"] == head and relay["tcr_relay_lag_events"] == 0

        stack.wait_for(relay_published_the_head, "the relay's metrics to show the head", 30)
        relay = scrape(relay_port)
        assert relay["tcr_relay_log_head"] == head
        assert relay["tcr_relay_published_events_total"] >= head

        consumer = scrape(consumer_port)
        assert consumer["tcr_consumer_applied_position"] == head
        assert consumer["tcr_consumer_log_head"] == head
        assert consumer["tcr_consumer_lag_events"] == 0
