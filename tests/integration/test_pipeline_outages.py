"""Outages around the relay and the subsidy consumer, and entries they cannot take.

The four services run as real processes over a real broker and PostgreSQL. A database goes
away behind a loopback proxy that the test closes (new connections refused, live ones reset)
and reopens; the relay and the consumer must keep running, say in their logs which side failed
and how, use it again within about a second of its return, and stop within seconds of SIGTERM
whatever is down. An entry that cannot be decoded or applied stops the consumer, naming it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from tests.conftest import Tokens
from tests.support.broker import TansuBroker, kafka
from tests.support.databases import fresh_postgres_database
from tests.support.db_proxy import DbProxy
from tests.support.stack import (
    Service,
    Stack,
    contract_commands,
    follow_until_every_partition_is_committed,
    make_stack,
    setup_commands,
)

RESUMED_WITHIN = 3.0  # seconds after a side returns; the retry pause is at most 1 s
OUTAGE = 4.0  # seconds a side stays away: long enough for the retry pause to reach its cap
STOP_BOUND = 10.0  # seconds the test waits for SIGTERM to end a process; the goal is 5


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    with TansuBroker(tmp_path_factory.mktemp("broker") / "tansu.log") as started:
        yield started


@pytest.fixture
def registry_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def subsidy_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def proxy_to(url: str) -> DbProxy:
    parsed = make_url(url)
    return DbProxy.start((parsed.host or "127.0.0.1", parsed.port or 5432))


def through(proxy: DbProxy, service: Service, variable: str) -> None:
    """Point one service's database URL at the proxy; the others keep the server's."""
    service.env = {**service.env, variable: proxy.url_for(service.env[variable])}


def wait_logged(stack: Stack, service: Service, text: str, timeout: float = 30.0) -> None:
    stack.wait_for(lambda: service.logged(text), f"{service.name} to log {text!r}", timeout)


def lines_with(service: Service, text: str) -> list[str]:
    return [line for line in service.tail(100_000).splitlines() if text in line]


def hold_outage(stack: Stack, *services: Service) -> None:
    """Keep the side away for ``OUTAGE`` seconds (the fault's length, not a wait for a
    result); the services must keep running throughout."""
    time.sleep(OUTAGE)
    for service in services:
        assert service.running, f"{service.name} exited during the outage\n{stack.logs()}"


def seconds_until(stack: Stack, condition: Any, what: str) -> float:
    started = time.monotonic()
    stack.wait_for(condition, what, 30)
    return time.monotonic() - started


def test_the_relay_outlives_its_registry_database_going_away_and_publishes_on_its_return(
    tmp_path: Path,
    registry_database: str,
    subsidy_database: str,
    broker: TansuBroker,
    tokens: Tokens,
) -> None:
    with proxy_to(registry_database) as proxy:
        stack = make_stack(tmp_path, registry_database, subsidy_database, broker.bootstrap, tokens)
        through(proxy, stack.relay, "TCR_REGISTRY_DATABASE_URL")
        with stack:
            stack.post(setup_commands() + contract_commands(0, 10))
            stack.assert_serves_the_log()

            proxy.down()
            stack.post(contract_commands(10, 10))  # the registry itself still reaches it
            head = stack.registry_head()
            # The relay reads through the registry's store, whose circuit breaker answers for a
            # database it cannot reach: the error names the side and the breaker's reason.
            wait_logged(stack, stack.relay, "registry database unavailable (Unavailable: the store")
            hold_outage(stack, stack.relay)
            assert stack.relay_position() < head

            proxy.up()
            took = seconds_until(
                stack, lambda: stack.relay_position() == head, "the relay to publish the rest"
            )
            print(f"relay published again {took:.2f}s after its database returned")
            assert took < RESUMED_WITHIN
            stack.assert_serves_the_log()
            wait_logged(stack, stack.relay, "registry database is back after")
    assert not lines_with(stack.relay, "Kafka unavailable")


def test_the_consumer_outlives_its_database_going_away_and_applies_on_its_return(
    tmp_path: Path,
    registry_database: str,
    subsidy_database: str,
    broker: TansuBroker,
    tokens: Tokens,
) -> None:
    with proxy_to(subsidy_database) as proxy:
        stack = make_stack(tmp_path, registry_database, subsidy_database, broker.bootstrap, tokens)
        through(proxy, stack.consumer, "TCR_SUBSIDY_DATABASE_URL")
        with stack:
            stack.post(setup_commands() + contract_commands(0, 10))
            follow_until_every_partition_is_committed(stack, next_contract=100)
            stack.assert_serves_the_log()

            proxy.down()
            stack.post(contract_commands(10, 10))
            head = stack.registry_head()
            wait_logged(stack, stack.consumer, "subsidy database unavailable (OperationalError")
            hold_outage(stack, stack.consumer)
            assert stack.health()["applied_position"] < head

            proxy.up()
            took = seconds_until(
                stack,
                lambda: stack.health()["applied_position"] == head,
                "the consumer to apply the rest",
            )
            print(f"consumer applied again {took:.2f}s after its database returned")
            assert took < RESUMED_WITHIN
            stack.assert_serves_the_log()
            wait_logged(stack, stack.consumer, "subsidy database is back after")
    assert not lines_with(stack.consumer, "Kafka unavailable")


def test_the_consumer_outlives_the_registry_feed_going_away_and_reads_it_on_its_return(
    tmp_path: Path,
    registry_database: str,
    subsidy_database: str,
    broker: TansuBroker,
    tokens: Tokens,
) -> None:
    with make_stack(
        tmp_path, registry_database, subsidy_database, broker.bootstrap, tokens
    ) as stack:
        stack.post(setup_commands() + contract_commands(0, 10))
        stack.assert_serves_the_log()

        stack.registry.kill()
        # The consumer asks the feed whenever Kafka is quiet for a second.
        wait_logged(stack, stack.consumer, "registry feed unavailable (ConnectError")
        hold_outage(stack, stack.consumer)

        stack.registry.start()
        stack.wait_healthy(stack.registry, stack.reader)
        stack.post(contract_commands(10, 10))
        stack.assert_serves_the_log()
        wait_logged(stack, stack.consumer, "registry feed is back after")
    assert not lines_with(stack.consumer, "Kafka unavailable")


def test_sigterm_stops_the_relay_and_the_consumer_within_seconds_while_kafka_is_unreachable(
    tmp_path: Path, registry_database: str, subsidy_database: str, tokens: Tokens
) -> None:
    with (
        TansuBroker(tmp_path / "tansu.log") as own_broker,
        make_stack(
            tmp_path, registry_database, subsidy_database, own_broker.bootstrap, tokens
        ) as stack,
    ):
        stack.post(setup_commands() + contract_commands(0, 10))
        follow_until_every_partition_is_committed(stack, next_contract=100)
        stack.assert_serves_the_log()

        own_broker.stop()
        stack.post(contract_commands(10, 10))
        # Kafka gone, the consumer reads what the relay cannot publish from the registry feed;
        # the relay is meanwhile waiting for Kafka to acknowledge what it sent.
        stack.assert_serves_the_log()

        relay_took, relay_code = stack.relay.terminate(STOP_BOUND)
        consumer_took, consumer_code = stack.consumer.terminate(STOP_BOUND)
        print(f"with Kafka gone: relay stopped in {relay_took:.2f}s, consumer {consumer_took:.2f}s")

        # Started while Kafka is unreachable: stuck making its first clients.
        stack.relay.start()
        stack.consumer.start()
        wait_logged(stack, stack.relay, "Kafka unavailable (")
        wait_logged(stack, stack.consumer, "Kafka unavailable (")
        relay_again, relay_code_again = stack.relay.terminate(STOP_BOUND)
        consumer_again, consumer_code_again = stack.consumer.terminate(STOP_BOUND)
        print(f"started without Kafka: relay {relay_again:.2f}s, consumer {consumer_again:.2f}s")

    assert (relay_code, consumer_code, relay_code_again, consumer_code_again) == (0, 0, 0, 0)
    assert max(relay_took, consumer_took, relay_again, consumer_again) < 5.0


def _forged(after: dict[str, Any], kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An envelope that chains onto ``after``: the next entry the consumer would apply."""
    return {
        "position": after["position"] + 1,
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 1,
        "recorded_at": after["recorded_at"],
        "principal": "bureau",
        "subject": "contract:TC999999",
        "payload": payload,
        "prev_hash": after["hash"],
        "hash": "f" * 64,
    }


UNREGISTERED_INVOICE = {
    "registration_no": "TC999999",
    "invoice_no": "INV-X",
    "issued_on": "2024-01-02",
    "amount": "100.00",
    "issuer_credit_code": "X",
    "recipient_credit_code": "Y",
}


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (lambda last: b"{not json", "is not JSON"),
        (lambda last: b'{"hello": "world"}', "is not an envelope (no position"),
        (
            lambda last: _forged(last, "InvoiceRecorded", UNREGISTERED_INVOICE),
            "which the log never registered",
        ),
        (lambda last: _forged(last, "ContractAmended", {}), "KeyError"),
    ],
    ids=["not-json", "not-an-envelope", "unregistered-contract", "payload-without-fields"],
)
def test_a_record_that_cannot_be_applied_stops_the_consumer_naming_where_it_is(
    tmp_path: Path,
    broker: TansuBroker,
    tokens: Tokens,
    record: Any,
    why: str,
) -> None:
    with make_stack(
        tmp_path,
        f"sqlite:///{tmp_path / 'registry.db'}",
        f"sqlite:///{tmp_path / 'subsidy.db'}",
        broker.bootstrap,
        tokens,
    ) as stack:
        stack.post(setup_commands() + contract_commands(0, 5))
        follow_until_every_partition_is_committed(stack, next_contract=100)
        head = stack.assert_serves_the_log()
        last = stack.registry_log()[-1]
        value = record(last)
        forged = isinstance(value, dict)

        producer = kafka.KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
        try:
            sent = producer.send(
                stack.topic,
                key=b"contract:TC999999",
                value=kafka_bytes(value),
            ).get(timeout=10)
        finally:
            producer.close()

        code = stack.consumer.wait_exited(30)
        assert code is not None, f"the consumer went on\n{stack.consumer.tail()}"
        assert code != 0
        (halt,) = lines_with(stack.consumer, "stopped: ")
        assert why in halt
        assert f"partition {sent.partition}, offset {sent.offset}" in halt
        if forged:
            assert f"position {head + 1} " in halt
        assert f"nothing after position {head} is applied" in halt
        assert stack.health()["applied_position"] == head


def kafka_bytes(value: bytes | dict[str, Any]) -> bytes:
    if isinstance(value, bytes):
        return value
    from services.common.envelope import canonical_bytes

    return canonical_bytes(value)
