"""The relay: follows the log from its last published position and produces it to Kafka.

Each envelope goes to the topic keyed by its subject, so one contract's events keep their
order within a partition. The position is saved only after Kafka acknowledged everything up
to it: after a crash the relay may publish an event twice, never skip one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaProducer
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from services.common.envelope import canonical_bytes
from services.registry import relay_metrics as metrics
from services.registry.store import relay_positions

log = logging.getLogger("tcr.relay")

RELAY_NAME = "kafka"


class RelayPosition:
    """The relay's durable position in the registry's own database."""

    def __init__(self, engine: Engine, name: str = RELAY_NAME) -> None:
        self._engine = engine
        self._name = name

    def load(self) -> int:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(relay_positions.c.position).where(relay_positions.c.name == self._name)
            ).scalar()
        return int(value or 0)

    def save(self, position: int) -> None:
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(relay_positions).values(name=self._name, position=position)
        statement = statement.on_conflict_do_update(
            index_elements=[relay_positions.c.name], set_={"position": position}
        )
        with self._engine.begin() as conn:
            conn.execute(statement)


class Relay:
    """Publishes the registry log to Kafka, page by page, until stopped."""

    def __init__(
        self,
        read_log: Callable[[int, int], dict[str, Any]],
        position: RelayPosition,
        producer_factory: Callable[[], KafkaProducer],
        topic: str,
        *,
        ensure_topic: Callable[[], None] = lambda: None,
        page_size: int = 5000,
        idle_sleep: float = 0.02,
    ) -> None:
        self._read_log = read_log
        self._position = position
        self._producer_factory = producer_factory
        self._topic = topic
        self._ensure_topic = ensure_topic
        self._page_size = page_size
        self._idle_sleep = idle_sleep
        self.published = 0

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; a broker outage is retried with backoff."""
        backoff = 0.5
        producer: KafkaProducer | None = None
        position = self._position.load()
        metrics.relay_at(position)
        log.info("relay starting after position %d, topic %s", position, self._topic)
        page: list[dict[str, Any]] | None = None
        while not stop.is_set():
            try:
                if producer is None:
                    self._ensure_topic()
                    producer = self._producer_factory()
                    log.info("connected to Kafka; publishing after position %d", position)
                if page is None:
                    page = self._read(position)
                if not page:
                    page = None
                    stop.wait(self._idle_sleep)
                    continue
                page, position = self._publish(producer, page), int(page[-1]["position"])
                backoff = 0.5
            except Exception as exc:  # broker down, timeouts: log, back off, reconnect
                log.warning(
                    "Kafka unavailable (%s: %s); retrying in %.1fs",
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                if producer is not None:
                    _close_quietly(producer)
                    producer = None
                position, page = self._position.load(), None
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        if producer is not None:
            producer.flush()
            producer.close()
        log.info("relay stopped at position %d (%d events published)", position, self.published)

    def _read(self, after: int) -> list[dict[str, Any]]:
        page = self._read_log(after, self._page_size)
        metrics.relay_read(int(page["head"]))
        events: list[dict[str, Any]] = page["events"]
        return events

    def _publish(
        self, producer: KafkaProducer, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Send a page; while Kafka takes it, read the next one; then save the position once
        Kafka acknowledged the whole page. Returns the next page."""
        started = time.perf_counter()
        futures = [
            producer.send(self._topic, key=e["subject"].encode(), value=canonical_bytes(e))
            for e in events
        ]
        last = int(events[-1]["position"])
        following = self._read(last)  # overlaps the producer's network thread
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=0)  # raises if any record was not acknowledged
        self._position.save(last)
        metrics.relay_published(last, len(events))
        self.published += len(events)
        log.debug(
            "published %d events up to %d in %.3fs",
            len(events),
            last,
            time.perf_counter() - started,
        )
        return following


def _close_quietly(producer: KafkaProducer) -> None:
    try:
        producer.close(timeout=1)
    except Exception:  # a producer of a dead broker may fail to close; it is dropped anyway
        log.debug("producer close failed", exc_info=True)
