"""Kafka adapters shared by the relay and the subsidy consumer (kafka-python)."""

from __future__ import annotations

import logging
import zlib
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import IncompatibleBrokerVersion, TopicAlreadyExistsError
from kafka.partitioner import Partitioner

log = logging.getLogger("tcr.kafka")

# kafka-python's defaults suit a client that may block: a constructor waits up to 30 s for a
# broker that is down, a consumer's close or commit up to its 30 s request timeout, and a
# reconnection backs off to 30 s. The relay and the consumer must stop within seconds of a
# signal and use a broker within a second of its return, so every wait is bounded here.
BOOTSTRAP_TIMEOUT_MS = 2_000  # each attempt to reach a broker when a client is made
RECONNECT_BACKOFF_MAX_MS = 1_000
CLOSE_TIMEOUT = 1.0  # seconds a client may take to close; what it has not sent is resent
COMMIT_TIMEOUT_MS = 2_000

_BOUNDED: dict[str, Any] = {
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
}


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create the topic with ``partitions`` partitions, or grow it to that many.

    A broker that auto-creates topics (the bundled one does, whatever the client asks) may
    have made it with its own default count; fewer partitions than asked are added to, more
    are left alone (Kafka cannot remove partitions).
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000, **_BOUNDED)
    try:
        if topic not in admin.list_topics():
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)])
                log.info("created topic %s with %d partitions", topic, partitions)
            except TopicAlreadyExistsError:
                pass
            return
        (described,) = admin.describe_topics([topic])
        have = len(described.get("partitions", ()))
        if have < partitions:
            try:
                admin.create_partitions({topic: NewPartitions(partitions)})
                log.info("grew topic %s from %d to %d partitions", topic, have, partitions)
            except IncompatibleBrokerVersion:  # the bundled broker cannot add partitions
                log.warning("topic %s has %d partitions, %d asked for", topic, have, partitions)
    finally:
        admin.close()


class SubjectPartitioner(Partitioner):  # type: ignore[misc]
    """Key → partition by CRC-32 (zlib, in C).

    kafka-python's default murmur2 is pure Python and took a third of the relay's send time;
    the relay is the topic's only producer, so any stable hash of the key keeps one subject's
    events in one partition, in order.
    """

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        partitions: list[int] = sorted(cluster.partitions_for_topic(topic) or ())
        if not partitions:
            raise ValueError(f"topic {topic} has no partitions in the cluster metadata")
        if serialized_key is None:
            return partitions[0]
        return partitions[zlib.crc32(serialized_key) % len(partitions)]


def make_producer(bootstrap: str) -> KafkaProducer:
    """A producer that waits for every in-sync replica and never reorders a key's records."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        partitioner=SubjectPartitioner(),
        # Only ensure_topic creates the topic, with its partitions: a metadata request must not
        # create it with the broker's defaults (e.g. after a broker lost its data).
        allow_auto_create_topics=False,
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        retries=5,
        request_timeout_ms=10_000,
        # How long send() may wait for the topic's metadata: a broker that is up answers in
        # milliseconds, and one that is down must not hold the relay past a signal.
        max_block_ms=3_000,
        **_BOUNDED,
    )


def make_consumer(bootstrap: str, topic: str, group: str, **overrides: Any) -> KafkaConsumer:
    """A group consumer with manual commits and low fetch latency.

    The bundled broker does not answer a waiting fetch early when data arrives, so a short
    ``fetch_max_wait_ms`` is what keeps end-to-end latency low.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "latest",
        "fetch_max_wait_ms": 10,
        "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_records": 5_000,
        "allow_auto_create_topics": False,
        # Bounds what a fetch, a commit or a close waits for a broker that went away.
        "request_timeout_ms": 5_000,
        **_BOUNDED,
    }
    options.update(overrides)
    consumer = KafkaConsumer(**options)
    consumer.subscribe([topic])
    return consumer
