"""Runs of log entries applied while the run before is written: catching up, the consumer
computes one run as the database writes the last.

Applied one after the other, a run of 50,000 entries was computed in Python and then waited
for PostgreSQL to write it (a third of its time). Here a run is computed over the state the
run before leaves (:class:`~services.subsidy.carried.Carried`) while a writer thread writes
that one, and it is handed over once that one is committed: at most one run is being written.

This is only a faster way to do what :meth:`EntryStore.add` does. A run that does not simply
extend the head, or that fails however it fails, is left to be applied that way again: see
:meth:`RunPipeline.add`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NoReturn

from services.common.runtime import collector_paused, resettle_heap
from services.subsidy.carried import Carried
from services.subsidy.projection import Projection
from services.subsidy.run_rows import RunRows
from services.subsidy.store import EntryStore, Head, StoredRows

log = logging.getLogger("tcr.subsidy.pipeline")

# A run at least this long is kept out of the cycle collector's passes (gc.freeze) until the
# pipeline is left, when the whole heap is collected once. Only paused, the first pass after a
# run of 50,000 walked every object of it and of the run being written (0.5 s a run): 7,560 ->
# 8,350 entries/s catching up 1M entries. A short run (the feed followed at its head) is not:
# that one collection of the whole heap took up to 1.7 s after a catch-up of 1M entries.
FREEZE_RUN = 10_000


class NotWritten(Exception):
    """Runs the pipeline computed or wrote but could not finish: apply them again, the plain
    way (what is written is skipped there). The cause is chained."""

    def __init__(self, envelopes: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(envelopes)} entries not written")
        self.envelopes = envelopes


class RunPipeline:
    """Applies runs to ``store``, each while the one before is written. Use as a context
    manager, and :meth:`drain` it before leaving: leaving only waits for the run being
    written, and one that fails is left unapplied (the store's head says where it starts)."""

    def __init__(self, store: EntryStore, head: Head) -> None:
        self._store = store
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="subsidy-writer")
        self.written = head  # committed: the store's head
        self._ahead = self.written  # once the run being written is
        self._writing: tuple[Future[Head], list[dict[str, Any]]] | None = None
        self._previous: Projection | None = None  # the run being written or last written
        self._frozen = False

    def __enter__(self) -> RunPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.drain()
        except NotWritten:
            log.warning(
                "the last run was not written; the store's head is %d", self.written.position
            )
        finally:
            self._writer.shutdown(wait=True)
            if self._frozen:
                resettle_heap()

    def resume(self, head: Head) -> None:
        """Go on from ``head``, where the entries of a :class:`NotWritten` were applied."""
        self.written = self._ahead = head

    def add(self, envelopes: Sequence[dict[str, Any]]) -> Head:
        """Compute a run and hand it to the writer; the head once it is written.

        Raises :class:`NotWritten`, with this run and the one being written if that failed,
        when this run cannot be computed or the one before it could not be written."""
        run = self._extending(envelopes)
        if run is None:  # beyond a hole, or not in order: the store's add sorts that out
            self.drain()
            self.written = self._ahead = self._store.add(envelopes)
            self._previous = None
            return self.written
        if not run:
            return self._ahead
        try:
            with collector_paused(), self._store.engine.connect() as conn:
                stored = StoredRows(conn)
                state = stored if self._previous is None else Carried(self._previous, stored)
                projection = Projection(state, self._store.schedule).apply_all(run)
                rows = RunRows.of(projection, run)
                if isinstance(state, Carried):
                    state.forget()
                if len(run) >= FREEZE_RUN:
                    gc.freeze()
                    self._frozen = True
        except Exception as exc:
            self._fail(run, exc)
        spent = [self._previous, self._writing]
        self.drain(also=run)
        # The run before and its entries are freed on the writer thread, which mostly waits
        # for PostgreSQL: freeing them took the computing thread 4.6 s and 1.1 s of a catch-up
        # of 1M entries (sampled). First, so that they are not held while this run is written;
        # by clearing a list only it holds, so that no reference left here is the last.
        self._previous = None
        self._writer.submit(spent.clear)
        end = Head(run[-1]["position"], run[-1]["hash"], run[-1]["recorded_at"])
        future = self._writer.submit(self._store.write_run, self._ahead, end, rows)
        self._writing = future, run
        self._previous, self._ahead = projection, end
        return end

    def drain(self, also: list[dict[str, Any]] | None = None) -> None:
        """Wait for the run being written. If it fails, raise :class:`NotWritten` with it and
        ``also``."""
        if self._writing is None:
            return
        (future, run), self._writing = self._writing, None
        try:
            self.written = future.result()
        except Exception as exc:
            self._fail(run + (also or []), exc)

    def _fail(self, envelopes: list[dict[str, Any]], exc: Exception) -> NoReturn:
        if self._writing is not None:  # a run that failed to compute: keep the one before
            try:
                self.drain()
            except NotWritten as earlier:
                envelopes = earlier.envelopes + envelopes
        self._previous, self._ahead = None, self.written
        log.info(
            "%d entries after position %d not applied as a run (%s: %s); applying them again "
            "one transaction at a time",
            len(envelopes),
            self.written.position,
            type(exc).__name__,
            exc,
        )
        raise NotWritten(envelopes) from exc

    def _extending(self, envelopes: Sequence[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The entries beyond the head, if in order they chain onto it; None if not."""
        run = sorted(
            (e for e in envelopes if e["position"] > self._ahead.position),
            key=lambda e: int(e["position"]),
        )
        hash_ = self._ahead.hash
        for envelope in run:
            if envelope["prev_hash"] != hash_:
                return None
            hash_ = envelope["hash"]
        return run
