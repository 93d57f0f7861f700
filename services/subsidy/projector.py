"""Keeps the subsidy store complete: follows Kafka, and fills from the registry feed what
Kafka does not hold (first start, a broker that lost its data, a hole in the chain)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from kafka import KafkaConsumer

from services.subsidy import metrics
from services.subsidy.feed import RegistryFeed
from services.subsidy.store import EntryStore, Head

log = logging.getLogger("tcr.subsidy.projector")


class Projector:
    """Applies log entries to the store, each once in effect, until stopped."""

    def __init__(
        self,
        store: EntryStore,
        feed: RegistryFeed,
        consumer_factory: Callable[[], KafkaConsumer],
        *,
        gap_grace: float = 1.0,
        idle_check: float = 1.0,
    ) -> None:
        self._store = store
        self._feed = feed
        self._consumer_factory = consumer_factory
        self._gap_grace = gap_grace
        self._idle_check = idle_check
        self.head = store.head()
        self._highest_seen = store.highest_stored()
        metrics.applied(self.head.position, self._highest_seen)
        self.from_kafka = 0
        self.from_feed = 0

    def catch_up(self, progress: Callable[[int], object] | None = None) -> int:
        """Read the registry feed from the applied head until it has nothing more;
        ``progress`` is told how many log positions each page moved the head."""
        fetched = 0
        while True:
            page = self._feed.page(self.head.position)
            metrics.registry_head(int(page.get("head", 0)))
            events = page["events"]
            if not events:
                break
            before = self.head.position
            self._apply(events)
            fetched += len(events)
            if progress is not None:
                progress(self.head.position - before)
            if self.head.position < events[-1]["position"]:
                # The feed is contiguous; a head that did not reach its end means a broken chain.
                log.error(
                    "registry feed does not chain onto position %d; stopping catch-up",
                    self.head.position,
                )
                break
        if fetched:
            self.from_feed += fetched
            metrics.delivered("feed", fetched)
            log.info(
                "caught up %d events from the registry feed; applied to %d",
                fetched,
                self.head.position,
            )
        return fetched

    def rebuild(self, progress: Callable[[int], object] | None = None) -> int:
        """Drop the projection and build it again from the registry feed, from position 1."""
        self._store.reset()
        self.head = self._store.head()
        self._highest_seen = 0
        log.info("subsidy store cleared; rebuilding from the registry feed")
        return self.catch_up(progress)

    def run(self, stop: threading.Event) -> None:
        """Catch up, then follow Kafka; fill holes and idle periods from the feed."""
        consumer: KafkaConsumer | None = None
        hole_since: float | None = None
        last_heard = last_check = time.monotonic()
        backoff = 0.5
        while not stop.is_set():
            try:
                if consumer is None:
                    self.catch_up()
                    consumer = self._consumer_factory()
                    log.info("following Kafka from applied position %d", self.head.position)
                batch = consumer.poll(timeout_ms=200)
                envelopes = [orjson.loads(r.value) for records in batch.values() for r in records]
                now = time.monotonic()
                if envelopes:
                    self._apply(envelopes)
                    self.from_kafka += len(envelopes)
                    metrics.delivered("kafka", len(envelopes))
                    consumer.commit()
                    last_heard = now
                if self._highest_seen > self.head.position:
                    hole_since = hole_since or now
                    if now - hole_since >= self._gap_grace:
                        log.info(
                            "hole after position %d; filling from the registry feed",
                            self.head.position,
                        )
                        self.catch_up()
                        hole_since = None
                else:
                    hole_since = None
                    # Kafka quiet for a while: ask the feed for anything it never delivered (a
                    # broker that lost its data). Not while Kafka flows: that doubles the work.
                    quiet = min(now - last_heard, now - last_check)
                    if quiet >= self._idle_check:
                        self.catch_up()
                        last_check = now
                backoff = 0.5
            except (httpx.HTTPError, OSError) as exc:
                log.warning("registry feed unavailable (%s); retrying in %.1fs", exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception as exc:  # Kafka errors: reconnect after a pause
                log.warning(
                    "Kafka unavailable (%s: %s); retrying in %.1fs",
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                if consumer is not None:
                    _close_quietly(consumer)
                    consumer = None
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        if consumer is not None:
            _close_quietly(consumer)
        log.info(
            "projector stopped at position %d (%d from Kafka, %d from the feed)",
            self.head.position,
            self.from_kafka,
            self.from_feed,
        )

    def _apply(self, envelopes: list[dict[str, Any]]) -> Head:
        self._highest_seen = max(self._highest_seen, max(e["position"] for e in envelopes))
        self.head = self._store.add(envelopes)
        metrics.applied(self.head.position, self._highest_seen)
        return self.head


def _close_quietly(consumer: KafkaConsumer) -> None:
    try:
        consumer.close(autocommit=False)
    except Exception:  # a consumer of a dead broker may fail to close; it is dropped anyway
        log.debug("consumer close failed", exc_info=True)
