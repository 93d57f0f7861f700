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
from typing import Any, TypeVar

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from services.common.envelope import canonical_bytes
from services.common.kafka import CLOSE_TIMEOUT
from services.common.runtime import Retries, Unavailable
from services.registry import relay_metrics as metrics
from services.registry.store import relay_positions

log = logging.getLogger("tcr.relay")

RELAY_NAME = "kafka"

_T = TypeVar("_T")


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


REGISTRY_DATABASE = "registry database"
KAFKA = "Kafka"

FLUSH_TIMEOUT = 30.0  # seconds Kafka may take to acknowledge a page before it is sent again
FLUSH_STEP = 0.5  # a flush waits in steps this long, so that a stop is seen between them


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
        retry_cap: float = 1.0,
    ) -> None:
        self._read_log = read_log
        self._position = position
        self._producer_factory = producer_factory
        self._topic = topic
        self._ensure_topic = ensure_topic
        self._page_size = page_size
        self._idle_sleep = idle_sleep
        self._retries = Retries(log, cap=retry_cap)
        self.published = 0
        # Everything up to here is acknowledged by Kafka; the saved position may trail it when
        # the registry's database failed after Kafka acknowledged (the next save covers it).
        self.position: int | None = None
        self._saved: int | None = None

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; either side failing is retried within a second."""
        producer: KafkaProducer | None = None
        page: list[dict[str, Any]] | None = None
        log.info("relay starting, topic %s", self._topic)
        while not stop.is_set():
            try:
                if self.position is None:
                    self.position = self._saved = self._registry(self._position.load)
                    metrics.relay_at(self.position)
                    log.info("relay resumes after position %d", self.position)
                if producer is None:
                    self._kafka(self._ensure_topic)
                    producer = self._kafka(self._producer_factory)
                    log.info("connected to Kafka; publishing after position %d", self.position)
                if page is None:
                    page = self._read(self.position)
                if not page:
                    page = None
                    self._save_if_behind()
                    self._retries.succeeded()
                    stop.wait(self._idle_sleep)
                    continue
                page = self._publish(producer, page, stop)
                self._retries.succeeded()
            except Unavailable as outage:
                if outage.side == KAFKA and producer is not None:
                    _close_quietly(producer)
                    producer = None
                # Read again after the acknowledged position: a page Kafka did not take is
                # sent again, one it took is not (its save, if that failed, comes with the next).
                page = None
                stop.wait(self._retries.failed(outage))
        if producer is not None:
            _close_quietly(producer)
        log.info(
            "relay stopped at position %s (%d events published)", self.position, self.published
        )

    def _read(self, after: int) -> list[dict[str, Any]]:
        page = self._registry(self._read_log, after, self._page_size)
        metrics.relay_read(int(page["head"]))
        events: list[dict[str, Any]] = page["events"]
        return events

    def _publish(
        self, producer: KafkaProducer, events: list[dict[str, Any]], stop: threading.Event
    ) -> list[dict[str, Any]]:
        """Send a page; while Kafka takes it, read the next one; then save the position once
        Kafka acknowledged the whole page. Returns the next page."""
        started = time.perf_counter()
        futures = self._kafka(
            lambda: [
                producer.send(self._topic, key=e["subject"].encode(), value=canonical_bytes(e))
                for e in events
            ]
        )
        last = int(events[-1]["position"])
        following: list[dict[str, Any]] | None = None
        unread: Unavailable | None = None
        try:
            following = self._read(last)  # overlaps the producer's network thread
        except Unavailable as outage:  # the page is acknowledged all the same, then retried
            unread = outage
        self._kafka(self._flush, producer, stop)
        self._kafka(_acknowledged, futures)
        self.position = last
        self.published += len(events)
        self._registry(self._position.save, last)
        self._saved = last
        metrics.relay_published(last, len(events))
        log.debug(
            "published %d events up to %d in %.3fs",
            len(events),
            last,
            time.perf_counter() - started,
        )
        if unread is not None:
            raise unread
        assert following is not None
        return following

    @staticmethod
    def _flush(producer: KafkaProducer, stop: threading.Event) -> None:
        deadline = time.monotonic() + FLUSH_TIMEOUT
        while True:
            try:
                producer.flush(timeout=FLUSH_STEP)
                return
            except KafkaTimeoutError:
                if stop.is_set() or time.monotonic() >= deadline:
                    raise

    def _save_if_behind(self) -> None:
        if self.position is not None and self._saved != self.position:
            self._registry(self._position.save, self.position)
            self._saved = self.position

    def _registry(self, call: Callable[..., _T], *args: Any) -> _T:
        try:
            answer = call(*args)
        except Exception as exc:  # whatever the store raises, it is that side that failed
            raise Unavailable(REGISTRY_DATABASE, exc) from exc
        self._retries.succeeded(REGISTRY_DATABASE)
        return answer

    def _kafka(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            answer = call(*args, **kwargs)
        except Exception as exc:  # kafka-python raises KafkaError subclasses and OSError
            raise Unavailable(KAFKA, exc) from exc
        self._retries.succeeded(KAFKA)
        return answer


def _acknowledged(futures: list[Any]) -> None:
    for future in futures:
        future.get(timeout=0)  # raises if the record was not acknowledged


def _close_quietly(producer: KafkaProducer) -> None:
    try:
        producer.close(timeout=CLOSE_TIMEOUT)
    except Exception:  # a producer of a dead broker may fail to close; it is dropped anyway
        log.debug("producer close failed", exc_info=True)
