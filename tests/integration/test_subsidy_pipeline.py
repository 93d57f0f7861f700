"""Runs applied while the run before is written leave the store as one transaction of the
whole log would, and a run that cannot be computed or written is handed back, unwritten."""

from __future__ import annotations

import gc
import gzip
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from services.common.envelope import GENESIS_HASH
from services.common.policy.schedule import PolicySchedule
from services.registry.log import chain_envelopes
from services.subsidy import pipeline
from services.subsidy import tables as t
from services.subsidy.pipeline import NotWritten, RunPipeline
from services.subsidy.projection import Projection
from services.subsidy.run_rows import RunRows
from services.subsidy.store import EntryStore, Head
from tests.integration.test_subsidy_catch_up import _log
from tests.integration.test_subsidy_projection import PROJECTION, arrival
from tests.support.policy_facts import (
    PINGDINGSHAN_2020,
    contract,
    contract_events,
    numbered,
    proof_withdrawn,
)
from tests.unit.test_policy_properties import World, worlds

CORPUS = Path(__file__).parents[1] / "fixtures" / "v1-corpus" / "events.jsonl.gz"
ONE_POLICY = PolicySchedule.single(PINGDINGSHAN_2020)
TABLES = (*t.PROJECTION_TABLES, t.log, t.head, t.skipped, t.pending)


def corpus() -> list[dict[str, Any]]:
    """1,392 entries of every type: amendments, cancellations, brokers, funding, payouts."""
    return [orjson.loads(line) for line in gzip.decompress(CORPUS.read_bytes()).splitlines()]


def everything(store: EntryStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the consumer writes, in a fixed order."""
    with store.engine.connect() as conn:
        return {
            table.name: sorted(
                (tuple(row) for row in conn.execute(select(table))), key=lambda r: repr(r)
            )
            for table in TABLES
        }


def in_one_transaction(url: str, log: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    store = EntryStore(url, ONE_POLICY)
    try:
        store.add(log)
        return everything(store)
    finally:
        store.close()


@contextmanager
def writes_held(store: EntryStore) -> Iterator[Callable[[], None]]:
    """Each run's write waits until the run after it is computed, so that every run is
    computed over a store without the run before (which it then knows only as carried over).
    The context gives what lets the last write go."""
    computed = 0
    written = 0
    done = False
    turn = threading.Condition()
    take_rows, write_run = RunRows.of, store.write_run

    def rows(projection: Projection, run: list[dict[str, Any]]) -> RunRows:
        nonlocal computed
        taken = take_rows(projection, run)
        with turn:
            computed += 1
            turn.notify_all()
        return taken

    def write(start: Head, end: Head, rows: RunRows) -> Head:
        nonlocal written
        with turn:
            written += 1
            assert turn.wait_for(lambda: done or computed > written, timeout=30)
        return write_run(start, end, rows)

    def finish() -> None:
        nonlocal done
        with turn:
            done = True
            turn.notify_all()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunRows, "of", rows)
        patch.setattr(store, "write_run", write)
        yield finish


def through_the_pipeline(
    url: str, log: list[dict[str, Any]], cuts: list[int]
) -> dict[str, list[tuple[Any, ...]]]:
    store = EntryStore(url, ONE_POLICY)
    try:
        with writes_held(store) as finish, RunPipeline(store, store.head()) as pipe:
            for start, end in zip([0, *cuts], [*cuts, len(log)], strict=True):
                assert pipe.add(log[start:end]).position == log[end - 1]["position"]
            finish()
            pipe.drain()
            assert pipe.written == store.head()
        return everything(store)
    finally:
        store.close()


@pytest.mark.parametrize("run", [1, 7, 100, 500])
def test_the_corpus_in_runs_leaves_the_store_as_one_transaction_does(
    database_url: str, run: int, tmp_path: Path
) -> None:
    log = corpus()
    cuts = list(range(run, len(log), run))
    expected = in_one_transaction(f"sqlite:///{tmp_path / 'whole.db'}", log)
    assert through_the_pipeline(database_url, log, cuts) == expected


@PROJECTION
@given(worlds(min_contracts=1), st.data())
def test_random_histories_in_random_runs_leave_the_store_as_one_transaction_does(
    world: World, data: st.DataObject
) -> None:
    log = arrival(world, data)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(log) - 1, 1)), max_size=6)))
    cuts = [c for c in cuts if c < len(log)]
    with tempfile.TemporaryDirectory() as folder:
        expected = in_one_transaction(f"sqlite:///{Path(folder) / 'whole.db'}", log)
        assert through_the_pipeline(f"sqlite:///{Path(folder) / 'runs.db'}", log, cuts) == expected


def test_a_claim_the_run_before_removed_does_not_name_an_entitlement(
    database_url: str, tmp_path: Path
) -> None:
    # Three contracts of one buyer: the entitlement is named by the first. The run before
    # withdraws the second's proof, ending its claim (still stored); this run the first's, and
    # the third must name the entitlement.
    a, b, c = (
        contract(f"20244104000000{i:02d}", settled=[(date(2024, 5, 1), 100_000_00)])
        for i in (1, 2, 3)
    )
    events = [*contract_events(a), *contract_events(b), *contract_events(c)]
    events += [proof_withdrawn(x.registration_no, x.transfer_proofs[0].serial_no) for x in (b, a)]
    log = list(chain_envelopes(numbered(events)))
    expected = in_one_transaction(f"sqlite:///{tmp_path / 'whole.db'}", log)
    assert through_the_pipeline(database_url, log, [9, 10]) == expected


def test_a_run_that_cannot_be_computed_is_handed_back_and_the_run_before_is_written(
    database_url: str,
) -> None:
    log = _log(2)
    broken = dict(log[-1], payload={**log[-1]["payload"], "registration_no": "NOT-REGISTERED"})
    store = EntryStore(database_url, ONE_POLICY)
    try:
        with RunPipeline(store, store.head()) as pipe:
            pipe.add(log[:4])
            with pytest.raises(NotWritten) as raised:
                pipe.add([*log[4:-1], broken])
            assert raised.value.envelopes == [*log[4:-1], broken]
            assert pipe.written.position == 4 == store.head().position
    finally:
        store.close()


def test_a_run_computed_from_a_head_that_moved_is_not_written_and_is_handed_back(
    database_url: str,
) -> None:
    log = _log(2)
    store = EntryStore(database_url, ONE_POLICY)
    try:
        pipe = RunPipeline(store, Head(0, GENESIS_HASH, None))
        store.add(log[:3])  # another writer, behind the pipeline's back
        before = everything(store)
        with pipe:
            pipe.add(log[:5])  # computed from position 0: written over position 3, it would
            with pytest.raises(NotWritten) as raised:  # apply entries 1–3 twice
                pipe.add(log[5:])
            assert raised.value.envelopes == log  # the run it could not write, and this one
            assert pipe.written.position == 0
        assert everything(store) == before
    finally:
        store.close()


def test_only_long_runs_are_kept_out_of_the_cycle_collector_until_the_pipeline_is_left(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Freezing a short run (the feed followed at its head) would make leaving the pipeline
    # collect the whole heap: 1.7 s once after a catch-up of 1M entries.
    monkeypatch.setattr(pipeline, "FREEZE_RUN", 4)
    log = _log(3)
    store = EntryStore(database_url, ONE_POLICY)
    try:
        with RunPipeline(store, store.head()) as pipe:
            before = gc.get_freeze_count()
            pipe.add(log[:3])
            pipe.drain()
            # Three entries: left to the collector (what was frozen may only be freed).
            assert gc.get_freeze_count() <= before
            pipe.add(log[3:])
            pipe.drain()
            assert gc.get_freeze_count() > before  # six: frozen
        assert gc.isenabled()  # and collecting again once it is left
        assert store.head().position == len(log)
    finally:
        store.close()
