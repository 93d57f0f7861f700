"""Crashes and redeliveries between the registry, Kafka and the subsidy service.

Every test runs the four services as real processes over a real broker and real stores
(SQLite files, or PostgreSQL databases), loads a history through the registry's API while a
fault strikes, and then checks that what finance is served equals a from-scratch computation of
every year's entitlements over the registry's log.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from services.common.envelope import canonical_bytes
from tests.conftest import Tokens
from tests.support.broker import TansuBroker, kafka
from tests.support.databases import fresh_postgres_database
from tests.support.stack import (
    TCR,
    YEARS,
    Stack,
    committed_offsets,
    contract_commands,
    correction_commands,
    follow_until_every_partition_is_committed,
    in_chunks,
    make_stack,
    setup_commands,
    topic_positions,
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """One broker for the module; each test has its own topic and consumer group."""
    with TansuBroker(tmp_path_factory.mktemp("broker") / "tansu.log") as started:
        yield started


@pytest.fixture
def subsidy_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """The subsidy service's own store, of the same kind as the registry's."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'subsidy.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture
def stack(
    tmp_path: Path,
    database_url: str,
    subsidy_database_url: str,
    broker: TansuBroker,
    tokens: Tokens,
) -> Iterator[Stack]:
    with make_stack(tmp_path, database_url, subsidy_database_url, broker.bootstrap, tokens) as s:
        yield s


def topic_ends(stack: Stack) -> dict[int, int]:
    """Each partition's offset after its last record, found by reading the records."""
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=stack.bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        consumer_timeout_ms=1500,
    )
    try:
        assigned = [
            kafka.TopicPartition(stack.topic, p)
            for p in sorted(consumer.partitions_for_topic(stack.topic) or ())
        ]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = {tp.partition: 0 for tp in assigned}
        for record in consumer:
            ends[record.partition] = record.offset + 1
        return ends
    finally:
        consumer.close()


def wait_until_the_group_has_consumed_the_topic(stack: Stack) -> None:
    """Once the relay has published the whole log, wait until the subsidy consumer group has
    committed every partition up to its last record."""
    head = stack.registry_head()
    stack.wait_for(lambda: stack.relay_position() >= head, "the relay to publish the log", 60)
    ends = topic_ends(stack)
    stack.wait_for(
        lambda: committed_offsets(stack, list(ends)) == ends,
        "the consumer group to commit every record of the topic",
        60,
    )


def test_a_consumer_killed_mid_stream_resumes_and_serves_what_the_log_entitles(
    stack: Stack,
) -> None:
    stack.post(setup_commands() + contract_commands(0, 10))
    follow_until_every_partition_is_committed(stack, next_contract=100)

    stack.post(contract_commands(10, 10))
    stack.consumer.kill()
    for chunk in in_chunks(contract_commands(20, 15), 20):  # posting goes on meanwhile
        stack.post(chunk)
    stack.consumer.start()
    stack.post(contract_commands(35, 10))
    stack.post(correction_commands(range(0, 45, 3)))

    stack.assert_serves_the_log()
    # The restarted consumer rejoins its group and takes up Kafka where its last commit was:
    # what it had applied but not committed comes again, and changes nothing.
    wait_until_the_group_has_consumed_the_topic(stack)
    stack.assert_serves_the_log()


def test_every_event_delivered_twice_changes_no_entitlement(stack: Stack) -> None:
    stack.post(setup_commands() + contract_commands(0, 30))
    stack.post(correction_commands(range(0, 30, 4)))
    follow_until_every_partition_is_committed(stack, next_contract=30)
    head = stack.assert_serves_the_log()
    stack.wait_for(lambda: stack.relay_position() == head, "the relay to publish", 60)
    served = {year: stack.served_entitlements(year) for year in YEARS}

    # Again, by hand: every envelope of the log produced to the topic a second time...
    producer = kafka.KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    try:
        for envelope in stack.registry_log():
            producer.send(
                stack.topic, key=envelope["subject"].encode(), value=canonical_bytes(envelope)
            )
        producer.flush(timeout=30)
    finally:
        producer.close()
    # ...and a third time by the relay, made to forget what it had published.
    stack.relay.kill()
    stack.set_relay_position(0)
    stack.relay.start()
    stack.wait_for(lambda: stack.relay_position() == head, "the relay to publish again", 60)

    assert sum(topic_ends(stack).values()) >= 3 * head
    wait_until_the_group_has_consumed_the_topic(stack)
    assert stack.health()["applied_position"] == head
    assert {year: stack.served_entitlements(year) for year in YEARS} == served
    engine = create_engine(stack.subsidy_database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM subsidy_log")).scalar_one()
    finally:
        engine.dispose()
    assert stored == head
    assert stack.assert_serves_the_log() == head


def test_a_broker_that_lost_its_memory_loses_no_event_and_the_relay_publishes_on(
    tmp_path: Path, database_url: str, subsidy_database_url: str, tokens: Tokens
) -> None:
    with (
        TansuBroker(tmp_path / "tansu.log") as own_broker,
        make_stack(
            tmp_path, database_url, subsidy_database_url, own_broker.bootstrap, tokens
        ) as stack,
    ):
        stack.post(setup_commands() + contract_commands(0, 15))
        stack.wait_for(lambda: stack.health()["applied_position"] > 0, "the first events", 60)
        stack.post(contract_commands(15, 10))

        own_broker.restart()
        before = stack.registry_head()
        stack.post(contract_commands(25, 10))
        stack.post(correction_commands(range(1, 35, 3)))
        after = stack.registry_head()

        stack.assert_serves_the_log()
        stack.wait_for(
            lambda: (
                set(range(before + 1, after + 1))
                <= set(topic_positions(own_broker.bootstrap, stack.topic))
            ),
            "the relay to publish the events posted after the restart",
            60,
        )


def test_a_relay_killed_mid_batch_leaves_no_position_unpublished(stack: Stack) -> None:
    stack.post(setup_commands() + contract_commands(0, 20))
    stack.wait_for(lambda: stack.relay_position() > 0, "the relay to publish", 60)

    stack.relay.pause()
    _, big_batch_end = stack.post(contract_commands(20, 600))
    stack.relay.resume()
    # One page of ~2,800 events: publishing it takes the relay ~200 ms (14,000 events/s at
    # best), and the position is saved only once Kafka has acknowledged the whole page.
    time.sleep(0.03)
    stack.relay.kill()
    killed_at = stack.relay_position()
    stack.post(correction_commands(range(0, 170, 5)))
    stack.relay.start()

    head = stack.assert_serves_the_log()
    stack.wait_for(lambda: stack.relay_position() == head, "the relay to publish up to head", 60)
    assert killed_at < big_batch_end, "the relay had saved the whole batch before it was killed"
    assert set(topic_positions(stack.bootstrap, stack.topic)) == set(range(1, head + 1))


def test_a_rebuild_clears_the_projection_and_serves_the_same_from_the_feed(stack: Stack) -> None:
    stack.post(setup_commands() + contract_commands(0, 20))
    stack.post(correction_commands(range(0, 20, 3)))
    head = stack.assert_serves_the_log()
    stack.consumer.kill()

    rebuilt = subprocess.run(
        [TCR, "subsidy", "rebuild", "--no-progress"],
        env=stack.consumer.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"up to position {head:,} (registry head {head:,})" in rebuilt.stdout
    assert "subsidy store cleared" in rebuilt.stderr
    stack.assert_serves_the_log()
