"""Kafka adapters shared by the relay and the subsidy consumer (kafka-python)."""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger("tcr.kafka")


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create the topic with ``partitions`` partitions unless it exists."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        if topic not in admin.list_topics():
            admin.create_topics([NewTopic(topic, partitions, 1)])
            log.info("created topic %s with %d partitions", topic, partitions)
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def make_producer(bootstrap: str) -> KafkaProducer:
    """A producer that waits for every in-sync replica and never reorders a key's records."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        # Only ensure_topic creates the topic, with its partitions: a metadata request must not
        # create it with the broker's defaults (e.g. after a broker lost its data).
        allow_auto_create_topics=False,
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        retries=5,
        request_timeout_ms=10_000,
        max_block_ms=10_000,
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
    }
    options.update(overrides)
    consumer = KafkaConsumer(**options)
    consumer.subscribe([topic])
    return consumer
