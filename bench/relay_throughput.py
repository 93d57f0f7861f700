#!/usr/bin/env python3
"""Relay throughput: how fast ``services.registry.relay.Relay`` publishes a filled registry log
to Kafka, against raw kafka-python producing the same messages.

Steps, all in one run:

1. a fresh PostgreSQL database is filled with ``--events`` workload events (contract
   registrations, invoices, transfer proofs) through the registry's own writer, in batches;
   the fill's time and rate are reported;
2. the bundled broker (Tansu, in memory) starts on a free port;
3. the log is read once through ``Registry.read_log`` (the relay's own read path): the read
   half's rate, and the exact messages (key = subject, value = canonical bytes) for step 4;
4. baseline: one kafka-python producer with the relay's settings (``make_producer``) sends
   those messages asynchronously to a topic of its own and flushes once;
5. the relay runs in this process from position 0 until it has published every event;
   events/s, with where its time went (reading pages, ``send``, ``flush``, saving the position);
6. the relay's topic is consumed back to check every position arrived (``--no-verify`` skips).

Goal: relay ≥ 10,000 events/s. Run with the project's virtualenv::

    .venv/bin/python bench/relay_throughput.py                    # 200,000 events
    .venv/bin/python bench/relay_throughput.py --events 20000     # a quick look

The table goes to stdout, progress to stderr, every figure to bench/results/ (or ``--out``).
"""

from __future__ import annotations

import argparse
import gc
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import pipeline_support as ps

from services.common.envelope import canonical_bytes
from services.common.kafka import ensure_topic, make_producer
from services.common.runtime import settle_heap
from services.registry.application import Registry
from services.registry.relay import Relay, RelayPosition

GOAL_EVENTS_S = 10_000
# A KafkaProducer that is garbage-collected replaces kafka-python's module logger with a null
# logger (its __del__ calls close(null_logger=True)), which changes the cost of every later
# send() in this process. The baseline's producer is kept alive so the relay runs unaffected.
_KEEP_ALIVE: list[Any] = []


class TimedProducer:
    """The relay's producer, with the time spent in ``send`` and ``flush`` added up."""

    def __init__(self, producer: Any, seconds: dict[str, float]) -> None:
        self._producer = producer
        self._seconds = seconds

    def send(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self._producer.send(*args, **kwargs)
        finally:
            self._seconds["send"] += time.perf_counter() - t

    def flush(self, *args: Any, **kwargs: Any) -> None:
        t = time.perf_counter()
        try:
            self._producer.flush(*args, **kwargs)
        finally:
            self._seconds["flush"] += time.perf_counter() - t

    def close(self, *args: Any, **kwargs: Any) -> None:
        self._producer.close(*args, **kwargs)


class TimedPosition(RelayPosition):
    """The relay's position store, with the time spent saving added up."""

    def __init__(self, engine: Any, seconds: dict[str, float]) -> None:
        super().__init__(engine)
        self._seconds = seconds

    def save(self, position: int) -> None:
        t = time.perf_counter()
        try:
            super().save(position)
        finally:
            self._seconds["save position"] += time.perf_counter() - t


def read_messages(registry: Registry, page_size: int) -> tuple[list[tuple[bytes, bytes]], float]:
    """Every log entry as the relay would produce it, and the seconds the read took."""
    messages: list[tuple[bytes, bytes]] = []
    after = 0
    started = time.perf_counter()
    while True:
        page = registry.read_log(after, page_size)
        events = page["events"]
        if not events:
            break
        messages.extend((e["subject"].encode(), canonical_bytes(e)) for e in events)
        after = events[-1]["position"]
    return messages, time.perf_counter() - started


def baseline(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Raw kafka-python: send everything asynchronously, flush once, check every ack."""
    producer = make_producer(bootstrap)
    _KEEP_ALIVE.append(producer)
    try:
        producer.send(topic, key=b"warm-up", value=b"{}").get(timeout=30)  # connect, metadata
        started = time.perf_counter()
        futures = [producer.send(topic, key=k, value=v) for k, v in messages]
        producer.flush(timeout=120)
        seconds = time.perf_counter() - started
        for future in futures:
            future.get(timeout=0)
    finally:
        producer.close()
    return {"messages": len(messages), "seconds": round(seconds, 2)}


def run_relay(
    registry: Registry, bootstrap: str, topic: str, partitions: int, events: int, page_size: int
) -> dict[str, Any]:
    """The relay in this process, from position 0 until it has published ``events``."""
    seconds: dict[str, float] = defaultdict(float)

    def read_log(after: int, limit: int) -> dict[str, Any]:
        t = time.perf_counter()
        try:
            return registry.read_log(after, limit)
        finally:
            seconds["read pages"] += time.perf_counter() - t

    relay = Relay(
        read_log,
        TimedPosition(registry.engine, seconds),
        lambda: TimedProducer(make_producer(bootstrap), seconds),  # type: ignore[arg-type,return-value]
        topic,
        ensure_topic=partial(ensure_topic, bootstrap, topic, partitions),
        page_size=page_size,
    )
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), name="relay", daemon=True)
    started = time.perf_counter()
    thread.start()
    last_report = started
    while relay.published < events:
        if not thread.is_alive():
            raise RuntimeError("the relay stopped before publishing everything")
        time.sleep(0.01)
        if time.perf_counter() - last_report >= 5:
            last_report = time.perf_counter()
            rate = relay.published / (last_report - started)
            ps.log(f"  relay published {relay.published:,}/{events:,} ({rate:,.0f}/s)")
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join(timeout=60)
    accounted = sum(seconds.values())
    breakdown = {k: round(v, 2) for k, v in seconds.items()}
    breakdown["other (encode, acks, loop)"] = round(max(elapsed - accounted, 0.0), 2)
    return {
        "events": relay.published,
        "seconds": round(elapsed, 2),
        "events_per_s": round(relay.published / elapsed, 1),
        "seconds_by_step": breakdown,
        "saved_position": RelayPosition(registry.engine).load(),
    }


def verify(bootstrap: str, topic: str, events: int, timeout: float) -> dict[str, Any]:
    """Consume the relay's topic from the start; every position 1..events must be there."""
    import orjson
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        max_poll_records=5000,
        group_id=None,
    )
    seen: set[int] = set()
    records = 0
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < events and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                for record in batch:
                    records += 1
                    seen.add(int(orjson.loads(record.value)["position"]))
    finally:
        consumer.close()
    missing = events - len(seen & set(range(1, events + 1)))
    return {"records": records, "distinct_positions": len(seen), "missing": missing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Relay throughput (registry log on PostgreSQL → Kafka) against raw kafka-python "
            "producing the same messages; goal ≥ 10,000 events/s."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000, help="events in the log")
    parser.add_argument(
        "--admin-url",
        default=ps.DEFAULT_ADMIN_URL,
        help="PostgreSQL server where a fresh database is created (and dropped)",
    )
    parser.add_argument("--partitions", type=int, default=3, help="partitions of each topic")
    parser.add_argument("--page-size", type=int, default=5000, help="the relay's page size")
    parser.add_argument(
        "--check-lookups",
        action="store_true",
        help="fill through the writer's full path, with its absence look-ups (much slower)",
    )
    parser.add_argument(
        "--no-verify", dest="verify", action="store_false", help="skip reading the topic back"
    )
    parser.add_argument("--out", help="JSON result file (default bench/results/relay-*.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=ps.LOG_FORMAT)

    report: dict[str, Any] = {
        "benchmark": "relay_throughput",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": ps.machine(),
        "events": args.events,
        "partitions": args.partitions,
        "page_size": args.page_size,
        "store": "postgresql",
        "goal_events_per_s": GOAL_EVENTS_S,
    }
    workdir = Path(tempfile.mkdtemp(prefix="tcr-relay-bench-"))
    database = ps.db_name("relay", "registry")
    with ps.postgres_database(args.admin_url, database) as libpq:
        url = ps.sqlalchemy_url(libpq)
        ps.log(f"filling the registry with {args.events:,} events…")
        report["fill"] = ps.fill_registry(url, args.events, trust_fresh=not args.check_lookups)
        fill = report["fill"]
        ps.log(f"filled in {fill['seconds']:,.1f} s ({fill['events_per_s']:,.0f}/s)")
        broker = ps.Broker(workdir / "broker.log")
        registry = Registry(url)
        try:
            broker.wait_ready()
            ps.log("reading the log as the relay does…")
            messages, read_seconds = read_messages(registry, args.page_size)
            sizes = sorted(len(v) for _, v in messages)
            report["read_half"] = {
                "events": len(messages),
                "seconds": round(read_seconds, 2),
                "events_per_s": round(len(messages) / read_seconds, 1),
                "message_bytes_p50": ps.percentile(sizes, 50),
                "message_bytes_max": sizes[-1] if sizes else None,
            }
            ensure_topic(broker.bootstrap, "bench.baseline", args.partitions)
            ps.log(f"baseline: raw kafka-python producing {len(messages):,} messages…")
            meter = ps.CpuMeter({"broker": broker.pid}, [database]).start()
            base = baseline(broker.bootstrap, "bench.baseline", messages)
            base["events_per_s"] = round(base["messages"] / base["seconds"], 1)
            base["cpu"] = meter.stop()
            base["events_per_cpu_s"] = ps.per_cpu_second(base["messages"], base["cpu"])
            report["baseline"] = base
            del messages
            gc.collect()
            settle_heap()  # as `tcr relay` does (run_until_signalled) before it starts
            ps.log(f"baseline: {base['events_per_s']:,.0f} messages/s")
            ps.log("relay: publishing the whole log…")
            meter = ps.CpuMeter({"broker": broker.pid}, [database]).start()
            relay = run_relay(
                registry, broker.bootstrap, "bench.relay", args.partitions, args.events,
                args.page_size,
            )  # fmt: skip
            relay["cpu"] = meter.stop()
            relay["events_per_cpu_s"] = ps.per_cpu_second(relay["events"], relay["cpu"])
            report["relay"] = relay
            ps.log(f"relay: {relay['events_per_s']:,.0f} events/s")
            if args.verify:
                ps.log("verifying the relay's topic…")
                report["verify"] = verify(broker.bootstrap, "bench.relay", args.events, 300)
        finally:
            registry.close()
            broker.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    report["ratio_relay_to_baseline"] = round(
        report["relay"]["events_per_s"] / report["baseline"]["events_per_s"], 3
    )
    report["goal_met"] = report["relay"]["events_per_s"] >= GOAL_EVENTS_S
    path = ps.write_results("relay", report, args.out)
    print(table(report))
    print(f"\nresults: {path}")
    return 0


def table(report: dict[str, Any]) -> str:
    fill, read, base, relay = (report[k] for k in ("fill", "read_half", "baseline", "relay"))
    rows = [
        ["fill the registry (writer, batches)", ps.fmt(fill["events"]),
         ps.fmt(fill["seconds"], ",.1f"), ps.fmt(fill["events_per_s"]), "–"],
        ["relay read half (read_log + encode)", ps.fmt(read["events"]),
         ps.fmt(read["seconds"], ",.1f"), ps.fmt(read["events_per_s"]), "–"],
        ["baseline: raw kafka-python, async", ps.fmt(base["messages"]),
         ps.fmt(base["seconds"], ",.1f"), ps.fmt(base["events_per_s"]),
         ps.fmt(base["events_per_cpu_s"])],
        ["relay (Relay.run) → Kafka", ps.fmt(relay["events"]),
         ps.fmt(relay["seconds"], ",.1f"), ps.fmt(relay["events_per_s"]),
         ps.fmt(relay["events_per_cpu_s"])],
    ]  # fmt: skip
    lines = [
        f"Relay throughput — {report['events']:,} events, PostgreSQL, {report['partitions']} "
        f"partitions, message p50 {report['read_half']['message_bytes_p50']} B",
        "",
        ps.render_table(["phase", "events", "seconds", "events/s", "events/CPU-s"], rows),
        "",
        f"relay / baseline: {report['ratio_relay_to_baseline']:.2f}   "
        f"goal ≥ {GOAL_EVENTS_S:,}/s: {'MET' if report['goal_met'] else 'NOT MET'}",
        "relay time by step (s): "
        + ", ".join(f"{k} {v:,.1f}" for k, v in relay["seconds_by_step"].items()),
        "baseline " + ps.cpu_line(base["cpu"]),
        "relay    " + ps.cpu_line(relay["cpu"]),
        "events/CPU-s: events per CPU-second of every measured process (this one, broker, "
        "PostgreSQL backends); the machine is shared, so it is steadier than events/s",
    ]
    if "verify" in report:
        v = report["verify"]
        lines.append(
            f"read back: {v['records']:,} records, {v['distinct_positions']:,} distinct "
            f"positions, {v['missing']:,} missing"
        )
    if report["fill"].get("absence_lookups_skipped"):
        lines.append("fill skipped the writer's absence look-ups (numbers are fresh by design)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
