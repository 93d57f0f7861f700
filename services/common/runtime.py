"""Process-wide settings of a long-running service."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("tcr.runtime")

# A request or a page allocates thousands of short-lived objects without cycles; collecting
# the young generation every 700 allocations (the default) cost more than it found.
GC_THRESHOLDS = (50_000, 20, 100)


def settle_heap() -> None:
    """Call once a service has started: what exists now lives as long as the process, so it is
    kept out of the cycle collector's passes, which are also made less frequent.

    Measured on the registry under 32 clients: 1,033 → 1,468 events/s, p99 151 → 42 ms.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def resettle_heap() -> None:
    """After long work that kept the cycle collector off (:func:`collector_paused`) and what it
    made out of its passes (``gc.freeze``): collect the cycles it left, once, and settle the
    rest as at start."""
    gc.unfreeze()
    gc.collect()
    settle_heap()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cycle collection inside the block (one that was already paused stays paused).

    For work that builds many objects which live until it ends and form no cycles, such as a
    run of log entries applied to the subsidy store: each pass of the collector walked all of
    them again and found nothing. Applying 1M entries in runs of 50,000: 6,700 → 8,770
    entries/s, the same peak memory. Cycles made inside are collected after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class LoopHalted(Exception):
    """A loop met something it must neither skip nor retry; the message says what and where."""


class Unavailable(Exception):
    """A side a loop depends on (a database, the registry feed, Kafka) failed; retried."""

    def __init__(self, side: str, cause: BaseException) -> None:
        super().__init__(f"{side} unavailable ({type(cause).__name__}: {_first_line(cause)})")
        self.side = side
        self.cause = cause


class Retries:
    """Pauses between attempts while a side is down, and what the log says about it.

    The pause doubles from ``first`` up to ``cap``: a side that comes back is used again within
    ``cap`` seconds. The first failure of an outage is a warning; while it lasts, the same
    failure is repeated at most every ``remind`` seconds (the others at debug), and the
    recovery is logged with how long the side was down.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        first: float = 0.1,
        cap: float = 1.0,
        remind: float = 30.0,
    ) -> None:
        self._log = logger
        self._first = first
        self._cap = cap
        self._remind = remind
        self._pause = first
        self._down: dict[str, tuple[float, float, str]] = {}  # side: (since, logged, failure)

    def failed(self, outage: Unavailable) -> float:
        """Log the outage; the seconds to wait before the next attempt."""
        now = time.monotonic()
        pause, self._pause = self._pause, min(self._pause * 2, self._cap)
        failure = type(outage.cause).__name__
        since, logged, before = self._down.get(outage.side, (now, float("-inf"), ""))
        if failure != before or now - logged >= self._remind:
            level = logging.WARNING
            logged = now
        else:
            level = logging.DEBUG
        down_for = f", down for {now - since:.1f}s" if now > since else ""
        self._log.log(level, "%s; retrying in %.1fs%s", outage, pause, down_for)
        self._down[outage.side] = (since, logged, failure)
        return pause

    def succeeded(self, *sides: str) -> None:
        """The sides worked again (all of them when none is named); the pause starts again
        from ``first`` once no side is down."""
        for side in sides or list(self._down):
            if side in self._down:
                since, _, _ = self._down.pop(side)
                self._log.info("%s is back after %.1fs", side, time.monotonic() - since)
        if not self._down:
            self._pause = self._first


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "no message"


STOP_GRACE = 4.0  # seconds between SIGTERM and giving up on a loop that does not return


def run_until_signalled(run: Callable[[threading.Event], None], grace: float = STOP_GRACE) -> None:
    """Run a long-lived loop until SIGINT or SIGTERM sets its stop event.

    The loop runs on its own thread so that a signal is acted on even while it waits on a
    network call (a broker or a database that does not answer can hold one for the length of
    its timeout): if it has not returned ``grace`` seconds after the signal, the process exits
    at once, status 1. That loses nothing: a position is saved only after what it covers is
    stored. A loop that raises :class:`LoopHalted` ends the process with status 2 and its
    message.
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    settle_heap()
    failure: list[BaseException] = []

    def loop() -> None:
        try:
            run(stop)
        except BaseException as exc:  # handed to the main thread, which raises it
            failure.append(exc)

    worker = threading.Thread(target=loop, name="loop", daemon=True)
    worker.start()
    while worker.is_alive() and not stop.is_set():
        worker.join(timeout=0.2)
    worker.join(timeout=grace)
    if worker.is_alive():
        log.error("the loop did not stop within %.1fs of the signal; exiting without it", grace)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    if failure:
        if isinstance(failure[0], LoopHalted):
            log.critical("stopped: %s", failure[0])
            raise SystemExit(2)
        raise failure[0]
