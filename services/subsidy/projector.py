"""Keeps the subsidy store complete: follows Kafka, and fills from the registry feed what
Kafka does not hold (first start, a broker that lost its data, a hole in the chain).

Three sides can fail: the subsidy database, the registry feed and Kafka. Each failure is
logged under the side's name and retried within a second, and a batch the store could not take
is kept and applied first when it is back. An entry that cannot be decoded or applied stops the
loop, naming its position: skipping it would leave every later entitlement computed without it
while ``applied_position`` claimed otherwise, and retrying it changes nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import orjson
import sqlalchemy.exc
from kafka import KafkaConsumer

from services.common.kafka import CLOSE_TIMEOUT, COMMIT_TIMEOUT_MS
from services.common.runtime import LoopHalted, Retries, Unavailable
from services.subsidy import metrics
from services.subsidy.feed import FEED_PAGE, RegistryFeed
from services.subsidy.pipeline import NotWritten, RunPipeline
from services.subsidy.store import EntryStore, Head

log = logging.getLogger("tcr.subsidy.projector")

SUBSIDY_DATABASE = "subsidy database"
REGISTRY_FEED = "registry feed"
KAFKA = "Kafka"

_T = TypeVar("_T")

# Entries applied in one transaction while catching up from the feed. A run reads the stored
# state of what it touches once, and writes whole the versions it begins and ends (totals change
# with nearly every entry). Applying the 1M entries of bench/read_scale.py's history alone: runs
# of 5,000 (a feed page) 6,190 entries/s, peak 150 MB; of 25,000, 7,940 and 307 MB; of 50,000,
# 8,770 and 471 MB. Catching up from the feed with a page read ahead, 4,860 entries/s; with a
# run of 50,000 read ahead, 7,810 (670 MB).
CATCH_UP_RUN = 50_000

# What the store and the projection read of an envelope, and the type each must have.
_ENVELOPE_TYPES: dict[str, type] = {
    "position": int,
    "type": str,
    "schema_version": int,
    "subject": str,
    "recorded_at": str,
    "prev_hash": str,
    "hash": str,
    "payload": dict,
}


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
        retry_cap: float = 1.0,
        catch_up_run: int = CATCH_UP_RUN,
    ) -> None:
        self._store = store
        self._feed = feed
        self._consumer_factory = consumer_factory
        self._gap_grace = gap_grace
        self._idle_check = idle_check
        self._retries = Retries(log, cap=retry_cap)
        self._catch_up_run = catch_up_run
        self._feed_retries = Retries(log, cap=retry_cap)
        self._feed_due = 0.0  # while the feed is down, when it may be asked again
        self.head = store.head()
        self._highest_seen = store.highest_stored()
        metrics.applied(self.head.position, self._highest_seen)
        self.from_kafka = 0
        self.from_feed = 0

    def catch_up(self, progress: Callable[[int], object] | None = None) -> int:
        """Read the registry feed from the applied head until it has nothing more;
        ``progress`` is told how many log positions each run moved the head."""
        fetched = 0
        # Pages are read on a thread, up to a run ahead, while a run is applied: the registry
        # and the subsidy database work at the same time (reading was a third of a catch-up).
        pages: queue.Queue[tuple[list[dict[str, Any]], int] | Exception] = queue.Queue(
            maxsize=-(-self._catch_up_run // FEED_PAGE)
        )
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read_ahead, args=(self.head.position, pages, stop), name="feed"
        )
        reader.start()
        pipe = RunPipeline(self._store, self.head)
        try:
            with pipe:
                for events in self._runs(pages):
                    before = self.head.position
                    self._settle(pipe, pipe.add, events)
                    fetched += len(events)
                    if progress is not None:
                        progress(self.head.position - before)
                    if self.head.position < events[-1]["position"]:
                        # The feed is contiguous; a head that did not reach its end: a broken
                        # chain.
                        log.error(
                            "registry feed does not chain onto position %d; stopping catch-up",
                            self.head.position,
                        )
                        break
                self._settle(pipe, pipe.drain)
        finally:
            self.head = pipe.written  # what the store holds, however the runs ended
            stop.set()
            reader.join()
        if fetched:
            self.from_feed += fetched
            metrics.delivered("feed", fetched)
            log.info(
                "caught up %d events from the registry feed; applied to %d",
                fetched,
                self.head.position,
            )
        return fetched

    def _settle(self, pipe: RunPipeline, call: Callable[..., Any], *args: Any) -> None:
        """Call the pipeline; what it could not write is applied the plain way, which retries
        a database that is down and halts at an entry that cannot be applied."""
        try:
            head = call(*args)
        except NotWritten as failed:
            self.head = pipe.written
            where = "from the registry feed"
            try:
                head = self._apply(
                    failed.envelopes, {e["position"]: where for e in failed.envelopes}
                )
            finally:
                pipe.resume(self.head)  # as far as they were applied
        if head is not None:
            self.head = head
            self._highest_seen = max(self._highest_seen, head.position)
        metrics.applied(pipe.written.position, self._highest_seen)

    def _read_ahead(
        self,
        after: int,
        pages: queue.Queue[tuple[list[dict[str, Any]], int] | Exception],
        stop: threading.Event,
    ) -> None:
        """Put the feed's pages after ``after`` in ``pages``, each with the registry's head
        as the page gave it, until one is empty or fails (that one too), or until stopped."""
        while not stop.is_set():
            item: tuple[list[dict[str, Any]], int] | Exception
            try:
                page = self._page(after)
                item = page["events"], int(page.get("head", 0))
            except Exception as exc:  # raised where the pages are taken
                item = exc
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, Exception) or not item[0]:
                return
            after = item[0][-1]["position"]

    def _runs(
        self, pages: queue.Queue[tuple[list[dict[str, Any]], int] | Exception]
    ) -> Iterator[list[dict[str, Any]]]:
        """The pages as runs: the first run is one page, each next one up to twice as long,
        up to ``catch_up_run`` entries; a run also ends once it is as long as what is left
        after it up to the registry's head, so runs halve toward the head, and a page that
        reaches the head ends one at once (an entry logged while the feed is followed waits
        for no more). A page that could not be read ends the run before it, and is raised
        after it is applied.

        Runs grow from one page so that the first is computed while the feed is still read,
        and shrink toward the head so that the last one, whose writing nothing overlaps, is
        short."""
        events: list[dict[str, Any]] = []
        limit = 0  # the first page is a run
        while True:
            item = pages.get()
            if isinstance(item, Exception):
                if events:
                    yield events
                raise item
            page, head = item
            if not page:
                break
            events += page
            if len(events) >= min(limit, head - page[-1]["position"]):
                yield events
                limit = min(max(2 * len(events), limit), self._catch_up_run)
                events = []
        if events:
            yield events

    def rebuild(self, progress: Callable[[int], object] | None = None) -> int:
        """Drop the projection and build it again from the registry feed, from position 1."""
        self._store.reset()
        self.head = self._store.head()
        self._highest_seen = 0
        log.info("subsidy store cleared; rebuilding from the registry feed")
        return self.catch_up(progress)

    def run(self, stop: threading.Event) -> None:
        """Catch up, then follow Kafka; fill holes and idle periods from the feed. Raises
        :class:`LoopHalted` for an entry that cannot be decoded or applied."""
        consumer: KafkaConsumer | None = None
        unapplied: list[dict[str, Any]] = []  # taken from Kafka, not yet in the store
        origins: dict[int, str] = {}
        hole_since: float | None = None
        last_heard = last_check = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    if unapplied:
                        self._apply(unapplied, origins)
                        self.from_kafka += len(unapplied)
                        unapplied = []
                        if consumer is not None:
                            self._commit(consumer)
                    if consumer is None:
                        self._catch_up_unless_down()
                        consumer = self._kafka(self._consumer_factory)
                        log.info("following Kafka from applied position %d", self.head.position)
                    batch = self._kafka(consumer.poll, timeout_ms=200)
                    unapplied, origins = _decode(batch, self.head.position)
                    now = time.monotonic()
                    if unapplied:
                        self._apply(unapplied, origins)
                        self.from_kafka += len(unapplied)
                        metrics.delivered("kafka", len(unapplied))
                        unapplied = []
                        self._commit(consumer)
                        last_heard = now
                    if self._highest_seen > self.head.position:
                        hole_since = hole_since or now
                        if now - hole_since >= self._gap_grace and self._catch_up_unless_down(
                            f"hole after position {self.head.position}; filling from the "
                            "registry feed"
                        ):
                            hole_since = None
                    else:
                        hole_since = None
                        # Kafka quiet for a while: ask the feed for anything it never delivered
                        # (a broker that lost its data). Not while Kafka flows: that doubles the
                        # work.
                        quiet = min(now - last_heard, now - last_check)
                        if quiet >= self._idle_check and self._catch_up_unless_down():
                            last_check = now
                    self._retries.succeeded()
                except Unavailable as outage:
                    if outage.side == KAFKA and consumer is not None:
                        _close_quietly(consumer)
                        consumer = None
                    stop.wait(self._retries.failed(outage))
        finally:
            if consumer is not None:
                if stop.is_set():  # a clean stop: the group resumes where this one applied
                    _commit_quietly(consumer)
                _close_quietly(consumer)
        log.info(
            "projector stopped at position %d (%d from Kafka, %d from the feed)",
            self.head.position,
            self.from_kafka,
            self.from_feed,
        )

    def _catch_up_unless_down(self, why: str = "") -> bool:
        """Catch up from the feed, unless it is down (Kafka is followed meanwhile); whether it
        was asked. The store failing is raised, as everywhere."""
        now = time.monotonic()
        if now < self._feed_due:
            return False
        if why:
            log.info("%s", why)
        try:
            self.catch_up()
        except Unavailable as outage:
            if outage.side != REGISTRY_FEED:
                raise
            self._feed_due = now + self._feed_retries.failed(outage)
            return False
        self._feed_retries.succeeded()
        return True

    def _page(self, after: int) -> dict[str, Any]:
        try:
            page = self._feed.page(after)
            events = page["events"]
        except Exception as exc:  # httpx errors, an error status, an answer that is not a page
            raise Unavailable(REGISTRY_FEED, exc) from exc
        metrics.registry_head(int(page.get("head", 0)))
        for envelope in events:
            why = _not_an_envelope(envelope)
            if why:
                raise LoopHalted(
                    f"the registry feed answered after position {after} with an entry that is "
                    f"not an envelope ({why}); nothing after position {self.head.position} is "
                    "applied"
                )
        return page

    def _apply(self, envelopes: list[dict[str, Any]], origins: Mapping[int, str]) -> Head:
        self._highest_seen = max(self._highest_seen, max(e["position"] for e in envelopes))
        try:
            self.head = self._add(envelopes)
        except Unavailable:
            raise
        except Exception as exc:  # this batch cannot be applied: find the entry, then stop
            self._halt_at_failing_entry(envelopes, origins, exc)
        return self.head

    def _add(self, envelopes: list[dict[str, Any]]) -> Head:
        try:
            head = self._store.add(envelopes)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if _database_down(exc):
                raise Unavailable(SUBSIDY_DATABASE, exc) from exc
            raise
        self._retries.succeeded(SUBSIDY_DATABASE)
        metrics.applied(head.position, self._highest_seen)
        return head

    def _halt_at_failing_entry(
        self, envelopes: list[dict[str, Any]], origins: Mapping[int, str], exc: Exception
    ) -> None:
        """Stop naming the entry that made a batch fail.

        The store applies a batch in one transaction, so the batch tells nothing of which entry
        failed: unless the error names it, the entries are applied one at a time in log order
        (each one that applies is one the log holds; it would be applied anyway) until one
        fails. A batch whose entries all apply alone failed as a whole only, and is done.
        """
        failed: Exception = exc
        position = getattr(exc, "position", None)
        if position is None:
            for envelope in sorted(envelopes, key=lambda e: int(e["position"])):
                try:
                    self.head = self._add([envelope])
                except Unavailable:
                    raise
                except Exception as alone:  # this entry, or one waiting that it let through
                    failed = alone
                    position = getattr(alone, "position", None) or envelope["position"]
                    break
            else:
                log.warning(
                    "a batch of %d entries failed (%s: %s) but each applied alone",
                    len(envelopes),
                    type(exc).__name__,
                    exc,
                )
                return
        origin = origins.get(position, "")
        source = f"subsidy database refused it ({type(failed).__name__})"
        if not isinstance(failed, sqlalchemy.exc.SQLAlchemyError):
            source = f"{type(failed).__name__}: {_first_line(failed)}"
        raise LoopHalted(
            f"the entry at position {position}{' ' + origin if origin else ''} cannot be "
            f"applied ({source}); nothing after position {self.head.position} is applied. "
            "Fix the entry or this reader, then start again"
        ) from failed

    def _commit(self, consumer: KafkaConsumer) -> None:
        """Tell the group how far this consumer applied, without waiting for the answer.

        Offsets only say where a restarted consumer starts reading: the store's head decides
        what is applied, and an entry delivered again changes nothing. So a commit lost with a
        broker costs a redelivery, and waiting for each one's answer was a broker round trip
        in every batch's path from Kafka to the store (end-to-end lag)."""
        self._kafka(consumer.commit_async, callback=_commit_answered)

    def _kafka(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            answer = call(*args, **kwargs)
        except Exception as exc:  # kafka-python raises KafkaError subclasses and OSError
            raise Unavailable(KAFKA, exc) from exc
        self._retries.succeeded(KAFKA)
        return answer


def _decode(
    batch: Mapping[Any, list[Any]], applied: int
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """The envelopes of a poll, and where in Kafka each came from."""
    envelopes: list[dict[str, Any]] = []
    origins: dict[int, str] = {}
    for records in batch.values():
        for r in records:
            where = f"(Kafka topic {r.topic}, partition {r.partition}, offset {r.offset})"
            try:
                envelope = orjson.loads(r.value)
            except (orjson.JSONDecodeError, TypeError) as exc:
                raise LoopHalted(
                    f"the record at {where[1:-1]} is not JSON ({_first_line(exc)}); nothing "
                    f"after position {applied} is applied. Only the relay writes this topic: "
                    "find what produced the record, then move the group past it"
                ) from exc
            why = _not_an_envelope(envelope)
            if why:
                raise LoopHalted(
                    f"the record at {where[1:-1]} is not an envelope ({why}); nothing after "
                    f"position {applied} is applied. Only the relay writes this topic: find "
                    "what produced the record, then move the group past it"
                )
            envelopes.append(envelope)
            origins[envelope["position"]] = where
    return envelopes, origins


# The same, as two tuples: an envelope's types compared at once, in C.
_ENVELOPE_KEYS = tuple(_ENVELOPE_TYPES)
_ENVELOPE_KINDS = tuple(_ENVELOPE_TYPES.values())


def _not_an_envelope(value: Any) -> str:
    """Why ``value`` cannot be read as an envelope, or '' when it can."""
    # Every entry of a catch-up passes here: checked name by name, 2 s of 1M entries.
    if (
        type(value) is dict
        and tuple(map(type, map(value.get, _ENVELOPE_KEYS))) == _ENVELOPE_KINDS
        and value["position"] >= 1
    ):
        return ""
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}, not an object"
    missing = [k for k in _ENVELOPE_TYPES if k not in value]
    if missing:
        return f"no {', '.join(missing)}"
    wrong = [
        k
        for k, kind in _ENVELOPE_TYPES.items()
        if not isinstance(value[k], kind) or isinstance(value[k], bool)
    ]
    if wrong:
        return f"{', '.join(wrong)} of the wrong type"
    if value["position"] < 1:
        return f"position {value['position']}"
    return ""


def _database_down(exc: sqlalchemy.exc.SQLAlchemyError) -> bool:
    """Whether the database failed (retried), rather than refused what it was given (not)."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
        )
    return isinstance(exc, sqlalchemy.exc.DisconnectionError | sqlalchemy.exc.TimeoutError)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "no message"


def _commit_answered(offsets: Mapping[Any, Any], answer: Any) -> None:
    if isinstance(answer, Exception):  # the next batch's commit covers these offsets too
        log.debug("offset commit failed (%s); the next one covers it", answer)


def _commit_quietly(consumer: KafkaConsumer) -> None:
    try:
        consumer.commit(timeout_ms=COMMIT_TIMEOUT_MS)
    except Exception:  # entries delivered again after a restart change nothing
        log.debug("final offset commit failed", exc_info=True)


def _close_quietly(consumer: KafkaConsumer) -> None:
    try:
        consumer.close(autocommit=False, timeout_ms=int(CLOSE_TIMEOUT * 1000))
    except Exception:  # a consumer of a dead broker may fail to close; it is dropped anyway
        log.debug("consumer close failed", exc_info=True)
