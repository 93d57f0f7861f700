#!/usr/bin/env python3
"""Subsidy catch-up: how fast ``Projector.catch_up()`` fills an empty subsidy store from the
registry's HTTP feed, both on PostgreSQL, against raw psycopg inserting the same rows.

Steps, all in one run:

1. a registry database is filled with ``--events`` workload events through the registry's
   own writer, in batches (time and rate reported); ``--registry-db NAME`` keeps that database
   for later runs and reuses it, filling only what is missing;
2. ``tcr registry serve --workers 2`` serves it; a service token reads the feed;
3. catch-up from empty: ``Projector(EntryStore, RegistryFeed).catch_up()`` into a fresh
   PostgreSQL database, until the applied head is the registry's head; events/s, and how its
   time split between reading the feed and ``EntryStore.add``;
4. the two halves alone: the feed read from 0 to the head with nothing stored, then
   ``EntryStore.add`` of those same pages into another fresh database, nothing read;
5. baseline: raw psycopg inserting the same rows (same columns and key, one transaction per
   page of 5,000, ``executemany``), and the same with ``COPY``.

Goal: catch-up ≥ 5,000 events/s. Run with the project's virtualenv::

    .venv/bin/python bench/subsidy_catchup.py                        # 1,000,000 events
    .venv/bin/python bench/subsidy_catchup.py --events 50000
    .venv/bin/python bench/subsidy_catchup.py --registry-db tcr_catchup_1m   # fill once, reuse

The table goes to stdout, progress to stderr, every figure to bench/results/ (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pipeline_support as ps

from services.subsidy.feed import RegistryFeed
from services.subsidy.projector import Projector
from services.subsidy.store import EntryStore

GOAL_EVENTS_S = 5_000
PAGE = 5000  # RegistryFeed.page's default limit, the projector's page

COLUMNS = ("position", "subject", "type", "recorded_at", "prev_hash", "hash", "envelope")
BASELINE_TABLE = """
CREATE TABLE baseline_entries (
    position BIGINT PRIMARY KEY,
    subject VARCHAR(128) NOT NULL,
    type VARCHAR(64) NOT NULL,
    recorded_at VARCHAR(32) NOT NULL,
    prev_hash VARCHAR(64) NOT NULL,
    hash VARCHAR(64) NOT NULL,
    envelope BYTEA NOT NULL
);
CREATE INDEX ix_baseline_entries_subject ON baseline_entries (subject);
"""


class TimedFeed:
    """The projector's feed, with the seconds spent reading pages added up."""

    def __init__(self, feed: RegistryFeed) -> None:
        self._feed = feed
        self.seconds = 0.0

    def page(self, after: int, limit: int = PAGE) -> dict[str, Any]:
        t = time.perf_counter()
        try:
            return self._feed.page(after, limit)
        finally:
            self.seconds += time.perf_counter() - t


class TimedStore(EntryStore):
    """The subsidy store, with the seconds spent in ``add`` added up."""

    seconds = 0.0

    def add(self, envelopes: Any) -> Any:
        t = time.perf_counter()
        try:
            return super().add(envelopes)
        finally:
            self.seconds += time.perf_counter() - t


def _no_kafka() -> Any:
    raise RuntimeError("catch_up() does not use Kafka")


def rate(events: int, seconds: float) -> dict[str, Any]:
    return {
        "events": events,
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds, 1) if seconds else None,
    }


def catch_up(store_url: str, registry_url: str, token: str, head: int) -> dict[str, Any]:
    """The real thing: an empty store, Projector.catch_up() until it reaches the head."""
    store = TimedStore(store_url)
    feed = RegistryFeed(registry_url, token)
    timed_feed = TimedFeed(feed)
    projector = Projector(store, timed_feed, _no_kafka)  # type: ignore[arg-type]
    try:
        started = time.perf_counter()
        fetched = projector.catch_up()
        seconds = time.perf_counter() - started
        applied = projector.head.position
    finally:
        feed.close()
        store.close()
    result = rate(fetched, seconds)
    result["applied_position"] = applied
    result["reached_head"] = applied == head
    result["seconds_in_feed_page"] = round(timed_feed.seconds, 2)
    result["seconds_in_store_add"] = round(store.seconds, 2)
    return result


def feed_only(registry_url: str, token: str, spool: Path) -> dict[str, Any]:
    """Read the whole feed as the projector does, storing nothing; pages are spooled to a file
    (untimed) for the store-only half."""
    feed = RegistryFeed(registry_url, token)
    events, seconds, after = 0, 0.0, 0
    try:
        with spool.open("wb") as out:
            while True:
                t = time.perf_counter()
                page = feed.page(after)
                seconds += time.perf_counter() - t
                batch = page["events"]
                if not batch:
                    break
                raw = orjson.dumps(batch)
                out.write(len(raw).to_bytes(8, "big") + raw)
                events += len(batch)
                after = batch[-1]["position"]
    finally:
        feed.close()
    return rate(events, seconds)


def spooled_pages(spool: Path) -> Iterator[list[dict[str, Any]]]:
    with spool.open("rb") as f:
        while header := f.read(8):
            yield orjson.loads(f.read(int.from_bytes(header, "big")))


def store_only(store_url: str, spool: Path) -> dict[str, Any]:
    """EntryStore.add of the spooled pages into an empty store; only ``add`` is timed."""
    store = EntryStore(store_url)
    events, seconds = 0, 0.0
    try:
        for page in spooled_pages(spool):
            t = time.perf_counter()
            store.add(page)
            seconds += time.perf_counter() - t
            events += len(page)
        applied = store.head().position
    finally:
        store.close()
    result = rate(events, seconds)
    result["applied_position"] = applied
    return result


def _row(e: dict[str, Any]) -> tuple[Any, ...]:
    return (
        e["position"], e["subject"], e["type"], e["recorded_at"], e["prev_hash"], e["hash"],
        orjson.dumps(e),
    )  # fmt: skip


def raw_inserts(libpq_url: str, spool: Path, copy: bool) -> dict[str, Any]:
    """Raw psycopg: the store's rows, one transaction per page; executemany or COPY."""
    import psycopg

    names = ", ".join(COLUMNS)
    insert = f"INSERT INTO baseline_entries ({names}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    events, seconds = 0, 0.0
    with psycopg.connect(libpq_url) as conn:
        conn.execute("DROP TABLE IF EXISTS baseline_entries")
        conn.execute(BASELINE_TABLE)
        conn.commit()
        for page in spooled_pages(spool):
            rows = [_row(e) for e in page]
            t = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                if copy:
                    with cur.copy(f"COPY baseline_entries ({names}) FROM STDIN") as c:
                        for row in rows:
                            c.write_row(row)
                else:
                    cur.executemany(insert, rows)
            seconds += time.perf_counter() - t
            events += len(rows)
    return rate(events, seconds)


@contextlib.contextmanager
def registry_database(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """(libpq URL, name) of the registry's database: kept (--registry-db) or fresh."""
    if args.registry_db:
        yield ps.kept_database(args.admin_url, args.registry_db), args.registry_db
        return
    name = ps.db_name("catchup", "registry")
    with ps.postgres_database(args.admin_url, name) as libpq:
        yield libpq, name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Subsidy catch-up from empty over the registry's HTTP feed into PostgreSQL, its two "
            "halves alone, and raw psycopg inserts of the same rows; goal ≥ 5,000 events/s."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log")
    parser.add_argument(
        "--admin-url",
        default=ps.DEFAULT_ADMIN_URL,
        help="PostgreSQL server where fresh databases are created (and dropped)",
    )
    parser.add_argument("--workers", type=int, default=2, help="workers of `tcr registry serve`")
    parser.add_argument(
        "--registry-db",
        metavar="NAME",
        help="keep the registry's database under this name and reuse it in later runs, "
        "filling only up to --events (default: a fresh database, dropped at the end)",
    )
    parser.add_argument("--out", help="JSON result file (default bench/results/catchup-*.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=ps.LOG_FORMAT)

    report: dict[str, Any] = {
        "benchmark": "subsidy_catchup",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": ps.machine(),
        "registry_workers": args.workers,
        "page_size": PAGE,
        "store": "postgresql",
        "goal_events_per_s": GOAL_EVENTS_S,
    }
    workdir = Path(tempfile.mkdtemp(prefix="tcr-catchup-bench-"))
    spool = workdir / "pages.bin"
    store_db = ps.db_name("catchup", "subsidy")
    halves_db = ps.db_name("catchup", "halves")
    try:
        with (
            registry_database(args) as (registry_libpq, registry_db),
            ps.postgres_database(args.admin_url, store_db) as store_libpq,
            ps.postgres_database(args.admin_url, halves_db) as halves_libpq,
        ):
            registry_url = ps.sqlalchemy_url(registry_libpq)
            databases = [registry_db, store_db, halves_db]
            have = ps.registry_head(registry_url)
            if have < args.events:
                ps.log(f"filling the registry: {have:,} events there, {args.events:,} wanted…")
                report["fill"] = ps.fill_registry(registry_url, args.events - have)
                fill = report["fill"]
                ps.log(f"filled in {fill['seconds']:,.1f} s ({fill['events_per_s']:,.0f}/s)")
            else:
                report["fill"] = {"reused_database": registry_db, "events": 0}
                ps.log(f"reusing {registry_db} with {have:,} events")
            tokens = workdir / "tokens.toml"
            token = ps.add_token(tokens, "bench-feed", "service")
            ps.create_registry_schema(registry_url)
            server = ps.registry_server(
                registry_url, tokens, workdir / "registry.log", workers=args.workers
            )
            try:
                server.wait_healthy()
                head = int(server.health()["head"])
                report["events"] = head
                ps.log(f"registry serving {head:,} events; catch-up from empty…")
                meter = ps.CpuMeter({"registry server": server.pid}, databases).start()
                full = catch_up(ps.sqlalchemy_url(store_libpq), server.url, token, head)
                full["cpu"] = meter.stop()
                full["events_per_cpu_s"] = ps.per_cpu_second(full["events"], full["cpu"])
                report["catch_up"] = full
                ps.log(f"catch-up: {full['events_per_s']:,.0f} events/s")

                ps.log("feed read alone…")
                meter = ps.CpuMeter({"registry server": server.pid}, databases).start()
                report["feed_only"] = feed_only(server.url, token, spool)
                feed = report["feed_only"]
                feed["cpu"] = meter.stop()
                feed["events_per_cpu_s"] = ps.per_cpu_second(feed["events"], feed["cpu"])
                ps.log(f"feed alone: {report['feed_only']['events_per_s']:,.0f} events/s")
            finally:
                server.stop()
            ps.log("EntryStore.add alone…")
            meter = ps.CpuMeter({}, databases).start()
            report["store_only"] = store_only(ps.sqlalchemy_url(halves_libpq), spool)
            store = report["store_only"]
            store["cpu"] = meter.stop()
            store["events_per_cpu_s"] = ps.per_cpu_second(store["events"], store["cpu"])
            ps.log(f"store alone: {report['store_only']['events_per_s']:,.0f} events/s")
            for name, copy in (("baseline_executemany", False), ("baseline_copy", True)):
                ps.log(f"{name}…")
                report[name] = raw_inserts(halves_libpq, spool, copy)
                ps.log(f"{name}: {report[name]['events_per_s']:,.0f} rows/s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = report["baseline_executemany"]["events_per_s"]
    report["ratio_catch_up_to_baseline"] = round(report["catch_up"]["events_per_s"] / base, 3)
    report["ratio_store_only_to_baseline"] = round(report["store_only"]["events_per_s"] / base, 3)
    report["goal_met"] = (report["catch_up"]["events_per_s"] or 0) >= GOAL_EVENTS_S
    path = ps.write_results("catchup", report, args.out)
    print(table(report))
    print(f"\nresults: {path}")
    return 0


def table(report: dict[str, Any]) -> str:
    def row(label: str, r: dict[str, Any]) -> list[str]:
        return [
            label, ps.fmt(r.get("events")), ps.fmt(r.get("seconds"), ",.1f"),
            ps.fmt(r.get("events_per_s")), ps.fmt(r.get("events_per_cpu_s")),
        ]  # fmt: skip

    full = report["catch_up"]
    fill = report["fill"]
    rows = [
        row("fill the registry (writer, batches)", fill) if "seconds" in fill else
        ["fill the registry: reused " + fill["reused_database"], "–", "–", "–", "–"],
        row("catch-up: Projector.catch_up()", full),
        row("  half 1: feed read alone (HTTP)", report["feed_only"]),
        row("  half 2: EntryStore.add alone", report["store_only"]),
        row("baseline: raw psycopg executemany", report["baseline_executemany"]),
        row("baseline: raw psycopg COPY", report["baseline_copy"]),
    ]  # fmt: skip
    lines = [
        f"Subsidy catch-up — {report['events']:,} events, PostgreSQL both sides, registry "
        f"with {report['registry_workers']} workers, pages of {report['page_size']:,}",
        "",
        ps.render_table(["phase", "events", "seconds", "events/s", "events/CPU-s"], rows),
        "",
        f"catch-up / baseline (executemany): {report['ratio_catch_up_to_baseline']:.2f}   "
        f"store.add / baseline: {report['ratio_store_only_to_baseline']:.2f}   "
        f"goal ≥ {GOAL_EVENTS_S:,}/s: {'MET' if report['goal_met'] else 'NOT MET'}",
        f"inside catch-up: {full['seconds_in_feed_page']:,.1f} s in feed.page, "
        f"{full['seconds_in_store_add']:,.1f} s in store.add; reached the head: "
        f"{'yes' if full['reached_head'] else 'NO'} (applied {full['applied_position']:,})",
        "catch-up " + ps.cpu_line(full["cpu"]),
        "feed     " + ps.cpu_line(report["feed_only"]["cpu"]),
        "store    " + ps.cpu_line(report["store_only"]["cpu"]),
        "events/CPU-s: events per CPU-second of every measured process (registry server, "
        "PostgreSQL backends, this one); the machine is shared, so it is steadier than events/s",
    ]
    if fill.get("absence_lookups_skipped"):
        lines.append("fill skipped the writer's absence look-ups (numbers are fresh by design)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
