"""The relay, in-process, from a real event store to the real broker.

It publishes every log entry keyed by its subject, one subject's entries in log order within one
partition, saves its position only after Kafka acknowledged, and resumes from it.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from services.common.envelope import canonical_bytes
from services.registry.application import Registry
from tests.support.broker import TansuBroker
from tests.support.databases import fresh_postgres_database
from tests.support.stack import (
    contract_commands,
    correction_commands,
    open_at_once,
    setup_commands,
    submit,
    topic_partitions,
    topic_positions,
    topic_records,
)

if TYPE_CHECKING:
    from services.registry.relay import Relay, RelayPosition


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    with TansuBroker(tmp_path_factory.mktemp("broker") / "tansu.log") as started:
        yield started


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    started = Registry(database_url)
    started.start()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def topic() -> str:
    return f"relay-{uuid.uuid4().hex[:8]}"


# The modules importing kafka-python are imported where used, after tests.support.broker has
# imported it with its import-time DeprecationWarning silenced (pytest makes warnings errors).


def saved_position(registry: Registry) -> RelayPosition:
    from services.registry.relay import RelayPosition

    return RelayPosition(registry.engine)


def make_relay(
    registry: Registry, bootstrap: str, topic: str, partitions: int = 3, page_size: int = 5000
) -> Relay:
    from services.common.kafka import ensure_topic, make_producer
    from services.registry.relay import Relay, RelayPosition

    return Relay(
        registry.read_log,
        RelayPosition(registry.engine),
        partial(make_producer, bootstrap),
        topic,
        ensure_topic=partial(ensure_topic, bootstrap, topic, partitions),
        page_size=page_size,
    )


@contextmanager
def running(relay: Relay) -> Iterator[None]:
    """The relay's loop on a thread, stopped (and its producer closed) on leaving."""
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the relay did not stop"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def test_every_event_is_published_once_keyed_by_subject_in_log_order_per_subject(
    registry: Registry, broker: TansuBroker, topic: str
) -> None:
    submit(registry, setup_commands() + contract_commands(0, 25))
    submit(registry, correction_commands(range(0, 25, 2)))
    head = registry.head()
    position = saved_position(registry)

    with running(make_relay(registry, broker.bootstrap, topic, page_size=40)):
        wait_until(lambda: position.load() == head, "the relay to publish the whole log")

    records = topic_records(broker.bootstrap, topic)
    log = {e["position"]: e for e in registry.read_log(0, 5000)["events"]}
    assert sorted(r.envelope["position"] for r in records) == list(range(1, head + 1))
    assert all(r.key == r.envelope["subject"] for r in records)
    assert all(canonical_bytes(r.envelope) == canonical_bytes(log[r.envelope["position"]])
               for r in records)  # fmt: skip
    partitions_of_subject: dict[str, set[int]] = defaultdict(set)
    in_partition_order: dict[str, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        partitions_of_subject[record.key].add(record.partition)
        in_partition_order[record.key].append(record.envelope["position"])
    assert all(len(p) == 1 for p in partitions_of_subject.values())
    assert all(positions == sorted(positions) for positions in in_partition_order.values())
    assert len({r.partition for r in records}) > 1, "every subject landed in one partition"


def test_a_restarted_relay_resumes_after_its_saved_position(
    registry: Registry, broker: TansuBroker, topic: str
) -> None:
    submit(registry, setup_commands() + contract_commands(0, 10))
    first_head = registry.head()
    position = saved_position(registry)
    with running(make_relay(registry, broker.bootstrap, topic)):
        wait_until(lambda: position.load() == first_head, "the first publication")

    submit(registry, contract_commands(10, 10))
    head = registry.head()
    resumed = make_relay(registry, broker.bootstrap, topic)
    with running(resumed):
        wait_until(lambda: position.load() == head, "the relay to publish what came later")

    assert resumed.published == head - first_head
    assert sorted(topic_positions(broker.bootstrap, topic)) == list(range(1, head + 1))


def test_the_relay_creates_its_topic_with_the_configured_partitions(
    registry: Registry, broker: TansuBroker, topic: str
) -> None:
    submit(registry, setup_commands())
    with running(make_relay(registry, broker.bootstrap, topic, partitions=5)):
        wait_until(lambda: saved_position(registry).load() == registry.head(), "publication")

    assert topic_partitions(broker.bootstrap, topic) == {0, 1, 2, 3, 4}


def test_a_topic_lost_with_the_brokers_memory_comes_back_with_at_least_its_partitions(
    registry: Registry, tmp_path: Path, topic: str
) -> None:
    from services.common.kafka import make_consumer

    submit(registry, setup_commands())
    position = saved_position(registry)
    with TansuBroker(tmp_path / "tansu.log") as own_broker:
        with running(make_relay(registry, own_broker.bootstrap, topic, partitions=3)):
            wait_until(lambda: position.load() == registry.head(), "the first publication")
        own_broker.restart()
        # The subsidy consumer's settings, without its group: a group consumer closed while
        # joining leaks a socket in kafka-python 3.0.12, and the metadata request is the same.
        consumer = make_consumer(own_broker.bootstrap, topic, "unused", group_id=None)
        try:
            consumer.poll(timeout_ms=500)
            submit(registry, contract_commands(0, 3))
            with running(make_relay(registry, own_broker.bootstrap, topic, partitions=3)):
                wait_until(lambda: position.load() == registry.head(), "publication after restart")
        finally:
            consumer.close(autocommit=False)
        # The bundled broker auto-creates a topic a client asks about (with 4 partitions) and
        # cannot add partitions; Apache Kafka in deploy/ has auto-creation off.
        assert topic_partitions(own_broker.bootstrap, topic) >= {0, 1, 2}


@pytest.mark.filterwarnings("ignore:.*deleted while still open:ResourceWarning")
def test_the_registry_and_its_relay_can_open_a_new_postgresql_store_at_the_same_time() -> None:
    failures = []
    for _ in range(3):
        with fresh_postgres_database() as url:
            failures += open_at_once(lambda url=url: Registry(url).close())  # type: ignore[misc]
    gc.collect()  # the engines of stores that failed to open, while their warnings are expected
    assert failures == []
