#!/usr/bin/env python3
"""End-to-end lag: from the registry's 201 answer to the event being applied in subsidy,
with the whole pipeline as real processes, against one raw Kafka hop at the same rate.

The run starts, each on a free port and fresh PostgreSQL databases: the bundled broker (Tansu),
``tcr registry serve``, ``tcr relay``, ``tcr subsidy consume`` and ``tcr subsidy serve``.

1. baseline, before the services start: kafka-python produces ``--rate`` messages/s of an
   event's size with the relay's producer settings and a consumer with the subsidy consumer's
   fetch settings reads them; produce → consume latency;
2. warm-up: ``--warmup`` seconds at a low rate (the consumer group's first join takes a few
   seconds), until everything posted is applied;
3. the measured run: a paced open-loop client posts ``--rate`` events/s for ``--duration``
   seconds (contract registrations, then an invoice and a transfer proof of each, as single
   requests; an invoice waits for its contract's answer). For every 201 the answer's time and
   position are kept;
4. a poller asks subsidy ``GET /v1/health`` every ``--poll-ms`` and notes when
   ``applied_position`` changed; an event is visible at the first poll whose applied position
   reaches its position. Lag = that poll's answer − the 201 answer: an upper bound, which
   includes up to one poll interval and the poll's own time (reported; subsidy's health also
   asks the registry for its head once a second). The same to the start of that poll is shown
   too: the handler reads the applied head first, so that is close to a lower bound.
   A probe consumer on the topic also notes when each position reached Kafka, splitting the lag
   into registry → Kafka (the relay) and Kafka → applied (the consumer and its store).

Goal: p99 ≤ 1 s. Run with the project's virtualenv::

    .venv/bin/python bench/end_to_end_lag.py                     # 500 events/s for 60 s
    .venv/bin/python bench/end_to_end_lag.py --rate 100 --duration 10

The table goes to stdout, progress to stderr, every figure to bench/results/ (or ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import logging
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pipeline_support as ps

from services.common.kafka import ensure_topic, make_producer

GOAL_P99_S = 1.0
TOPIC = "bench.e2e"
PARTITIONS = 3
EVENT_BYTES = 640  # about an envelope's canonical size (relay_throughput measures ~630 B)


@dataclass
class Posted:
    """One request of the paced client."""

    index: int
    op: str
    scheduled: float
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    position: int | None = None


def requests_for(tag: str, first_deal: int, count: int) -> list[tuple[str, str, bytes]]:
    """(op, path, body) of ``count`` single requests: each contract, its invoice, its proof."""
    out: list[tuple[str, str, bytes]] = []
    deal = first_deal
    while len(out) < count:
        for op, body in ps.deal_bodies(tag, deal):
            number = body["registration_no"]
            if op == "register_contract":
                out.append((op, "/v1/contracts", orjson.dumps(body)))
                continue
            rest = {k: v for k, v in body.items() if k != "registration_no"}
            kind = "invoices" if op == "record_invoice" else "transfer-proofs"
            out.append((op, f"/v1/contracts/{number}/{kind}", orjson.dumps(rest)))
        deal += 1
    return out[:count]


async def paced_load(
    url: str,
    token: str,
    requests: list[tuple[str, str, bytes]],
    rate: float,
    connections: int,
    label: str,
) -> list[Posted]:
    """Send request i at start + i/rate (open loop) over a pool of keep-alive connections."""
    host, port = url.removeprefix("http://").split(":")
    pool: asyncio.Queue[ps.RawHttp] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(ps.RawHttp(host, int(port), token))
    contracts: dict[int, asyncio.Future[bool]] = {}
    loop = asyncio.get_running_loop()
    posted: list[Posted] = []

    async def one(p: Posted, path: str, body: bytes) -> None:
        deal = p.index // 3
        if p.op == "register_contract":
            contracts[deal] = loop.create_future()
        elif not await asyncio.shield(contracts[deal]):
            p.status = -1  # its contract was refused: not sent
            return
        conn = await pool.get()
        try:
            p.sent = time.perf_counter()
            p.status, answer = await conn.post(path, body)
            p.answered = time.perf_counter()
        except Exception:  # counted as status 0
            p.answered = time.perf_counter()
            answer = b""
        finally:
            pool.put_nowait(conn)
        if p.status == 201:
            p.position = int(orjson.loads(answer)["position"])
        if p.op == "register_contract":
            contracts[deal].set_result(p.status == 201)

    start = time.perf_counter() + 0.1
    tasks = []
    last_report = start
    for i, (op, path, body) in enumerate(requests):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        p = Posted(i, op, at)
        posted.append(p)
        tasks.append(asyncio.create_task(one(p, path, body)))
        if at - last_report >= 10:
            last_report = at
            done = sum(1 for x in posted if x.status == 201)
            ps.log(f"  {label}: {i + 1:,} scheduled, {done:,} answered 201")
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().close()
    return posted


class PositionProbe:
    """A consumer (no group) of the pipeline's topic noting when each position first arrived."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.seen: dict[int, float] = {}
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            max_poll_records=5000,
            group_id=None,
        )
        deadline = time.monotonic() + 30
        partitions = None
        while not partitions and time.monotonic() < deadline:
            self._consumer.topics()  # refreshes metadata
            partitions = self._consumer.partitions_for_topic(topic)
            time.sleep(0.1)
        if not partitions:
            raise RuntimeError(f"topic {topic} did not appear")
        self._consumer.assign([TopicPartition(topic, p) for p in partitions])
        self._consumer.seek_to_beginning()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def start(self) -> PositionProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for records in self._consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                for r in records:
                    self.seen.setdefault(int(orjson.loads(r.value)["position"]), now)


def kafka_baseline(bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    """One Kafka hop at the same rate: the relay's producer settings, a consumer with the
    subsidy consumer's fetch settings (no group), send → first received, in this process."""
    from kafka import KafkaConsumer, TopicPartition

    topic = "bench.baseline"
    ensure_topic(bootstrap, topic, PARTITIONS)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10, group_id=None
    )
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    received: dict[int, float] = {}
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                for r in records:
                    received.setdefault(int(r.key), now)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    producer = make_producer(bootstrap)
    padding = b"x" * EVENT_BYTES
    producer.send(topic, key=b"-1", value=padding).get(timeout=30)
    total = int(rate * seconds)
    sent: dict[int, float] = {}
    start = time.perf_counter() + 0.1
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[i] = time.perf_counter()
        producer.send(topic, key=str(i).encode(), value=padding)
    producer.flush()
    deadline = time.monotonic() + 30
    while len(received) < total + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join()
    consumer.close()
    producer.close()
    lags = sorted(received[i] - t for i, t in sent.items() if i in received)
    return {"messages": total, "received": len(lags), **lag_stats(lags)}


def lag_stats(lags: list[float]) -> dict[str, Any]:
    """Percentiles of sorted lags, in milliseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "count": len(lags),
        "p50_ms": ms(ps.percentile(lags, 50)),
        "p95_ms": ms(ps.percentile(lags, 95)),
        "p99_ms": ms(ps.percentile(lags, 99)),
        "max_ms": ms(lags[-1] if lags else None),
        "min_ms": ms(lags[0] if lags else None),
    }


def first_showing(values: list[int], position: int) -> int | None:
    """The index of the first poll whose applied position had reached ``position``
    (``values``: the applied positions that polls saw change to, which only grow)."""
    i = bisect.bisect_left(values, position)
    return i if i < len(values) else None


def wait_applied(poller: ps.Poller, position: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poller.latest >= position:
            return True
        time.sleep(0.05)
    return False


def analyse(posted: list[Posted], poller: ps.Poller, probe: dict[int, float]) -> dict[str, Any]:
    ok = [p for p in posted if p.status == 201 and p.position is not None]
    statuses: dict[str, int] = {}
    for p in posted:
        statuses[str(p.status)] = statuses.get(str(p.status), 0) + 1
    changes = poller.changes
    lags, lower_lags, relay_hop, consumer_hop, windows = [], [], [], [], {}
    contiguous_hop, after_contiguous = [], []
    # When everything up to a position had reached Kafka: the earliest the chain-checked head
    # could have reached it, whatever partition each event went through.
    contiguous: dict[int, float] = {}
    latest = 0.0
    for position in sorted(probe):
        latest = max(latest, probe[position])
        contiguous[position] = latest
    never = 0
    start = posted[0].scheduled if posted else 0.0
    values = [v for _, v in changes]
    for p in ok:
        assert p.position is not None
        i = first_showing(values, p.position)
        if i is None:
            never += 1
            continue
        seen = changes[i][0]
        lag = seen - p.answered
        lags.append(lag)
        lower_lags.append(poller.asked[i] - p.answered)
        windows.setdefault(int((p.answered - start) // 10) * 10, []).append(lag)
        in_kafka = probe.get(p.position)
        if in_kafka is not None:
            relay_hop.append(in_kafka - p.answered)
            consumer_hop.append(seen - in_kafka)
            contiguous_hop.append(contiguous[p.position] - p.answered)
            after_contiguous.append(seen - contiguous[p.position])
    answer_times = sorted(p.answered - p.sent for p in ok)
    client_queue = sorted(p.sent - p.scheduled for p in ok)
    span = (max(p.answered for p in ok) - start) if ok else 0.0
    return {
        "posted": len(posted),
        "answered_201": len(ok),
        "statuses": statuses,
        "achieved_events_per_s": round(len(ok) / span, 1) if span else None,
        "never_visible": never,
        "lag": lag_stats(sorted(lags)),
        "lag_to_poll_start": lag_stats(sorted(lower_lags)),
        "registry_to_kafka": lag_stats(sorted(relay_hop)),
        "kafka_to_applied": lag_stats(sorted(consumer_hop)),
        "registry_to_kafka_with_all_before": lag_stats(sorted(contiguous_hop)),
        "kafka_with_all_before_to_applied": lag_stats(sorted(after_contiguous)),
        "registry_answer_time": lag_stats(answer_times),
        "client_queueing": lag_stats(client_queue),
        "lag_by_10s_window": {str(k): lag_stats(sorted(v)) for k, v in sorted(windows.items())},
    }


def projector_counts(consume_log: Path) -> dict[str, Any]:
    """What the consumer said at its stop: events taken from Kafka and from the registry feed
    (the feed is read on start, to fill a hole, and whenever a Kafka poll comes back empty)."""
    text = consume_log.read_text(errors="replace") if consume_log.exists() else ""
    found = re.search(r"\((\d+) from Kafka, (\d+) from the feed\)", text)
    return {
        "from_kafka": int(found.group(1)) if found else None,
        "from_feed": int(found.group(2)) if found else None,
        "feed_catch_ups": text.count("from the registry feed; applied to"),
        "holes_filled": text.count("hole after position"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "End-to-end lag of the whole pipeline as real processes: registry 201 → applied "
            "in subsidy, at a paced rate, against one raw Kafka hop; goal p99 ≤ 1 s."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=500, help="events posted per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of measured load")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of warm-up at 20/s")
    parser.add_argument(
        "--baseline-seconds", type=float, default=15, help="seconds of the raw Kafka baseline"
    )
    parser.add_argument("--poll-ms", type=float, default=20, help="subsidy health poll interval")
    parser.add_argument(
        "--connections",
        type=int,
        default=256,
        help="client connections (open loop: enough that the client is not the limit)",
    )
    parser.add_argument(
        "--registry-workers", type=int, default=1, help="workers of `tcr registry serve`"
    )
    parser.add_argument(
        "--admin-url",
        default=ps.DEFAULT_ADMIN_URL,
        help="PostgreSQL server where fresh databases are created (and dropped)",
    )
    parser.add_argument(
        "--keep-workdir", action="store_true", help="keep the services' logs (path printed)"
    )
    parser.add_argument("--out", help="JSON result file (default bench/results/e2e-*.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=ps.LOG_FORMAT)
    logging.getLogger("kafka").setLevel(logging.ERROR)

    report: dict[str, Any] = {
        "benchmark": "end_to_end_lag",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": ps.machine(),
        "rate": args.rate,
        "duration_s": args.duration,
        "poll_ms": args.poll_ms,
        "registry_workers": args.registry_workers,
        "partitions": PARTITIONS,
        "store": "postgresql",
        "goal_p99_ms": GOAL_P99_S * 1000,
    }
    workdir = Path(tempfile.mkdtemp(prefix="tcr-e2e-bench-"))
    tokens = workdir / "tokens.toml"
    bureau = ps.add_token(tokens, "bench-bureau", "bureau")
    auditor = ps.add_token(tokens, "bench-subsidy", "service")  # the feed's reader
    registry_db, subsidy_db = ps.db_name("e2e", "registry"), ps.db_name("e2e", "subsidy")
    started: list[ps.Process] = []
    with (
        ps.postgres_database(args.admin_url, registry_db) as registry_libpq,
        ps.postgres_database(args.admin_url, subsidy_db) as subsidy_libpq,
    ):
        registry_url = ps.sqlalchemy_url(registry_libpq)
        subsidy_url = ps.sqlalchemy_url(subsidy_libpq)
        ps.create_registry_schema(registry_url)
        ps.create_subsidy_schema(subsidy_url)
        try:
            broker = ps.Broker(workdir / "broker.log")
            started.append(broker)
            broker.wait_ready()
            ps.log(f"baseline: one Kafka hop at {args.rate:,.0f} messages/s…")
            report["baseline_kafka_hop"] = kafka_baseline(
                broker.bootstrap, args.rate, args.baseline_seconds
            )
            ps.log(f"baseline p99 {report['baseline_kafka_hop']['p99_ms']} ms")

            registry = ps.registry_server(
                registry_url, tokens, workdir / "registry.log", args.registry_workers
            )
            started.append(registry)
            env = {
                "TCR_TOKENS_FILE": str(tokens),
                "TCR_REGISTRY_DATABASE_URL": registry_url,
                "TCR_SUBSIDY_DATABASE_URL": subsidy_url,
                "TCR_KAFKA_BOOTSTRAP": broker.bootstrap,
                "TCR_KAFKA_TOPIC": TOPIC,
                "TCR_KAFKA_PARTITIONS": str(PARTITIONS),
                "TCR_KAFKA_GROUP": "bench-subsidy",
                "TCR_REGISTRY_URL": registry.url,
                "TCR_REGISTRY_TOKEN": auditor,
            }
            relay = ps.Process(
                "relay", [*ps.tcr_command(), "relay"], workdir / "relay.log", env=env
            )
            started.append(relay)
            consumer = ps.Process(
                "subsidy consume",
                [*ps.tcr_command(), "subsidy", "consume"],
                workdir / "consume.log",
                env=env,
            )
            started.append(consumer)
            subsidy = ps.HttpService(
                "subsidy", ["subsidy", "serve"], workdir / "subsidy.log", env=env
            )
            started.append(subsidy)
            registry.wait_healthy()
            subsidy.wait_healthy()
            health = ps.http_getter(subsidy.url)
            poller = ps.Poller(
                lambda: int(health("/v1/health")["applied_position"]), args.poll_ms / 1000
            ).start()
            ps.log(f"pipeline up (logs in {workdir}); warm-up for {args.warmup:.0f} s…")
            tag = ps.run_tag()
            warm_count = max(3, int(20 * args.warmup) // 3 * 3)
            warm = asyncio.run(
                paced_load(registry.url, bureau, requests_for(tag, 0, warm_count), 20, 4, "warm-up")
            )
            last = max((p.position or 0) for p in warm)
            if not wait_applied(poller, last, 60):
                raise RuntimeError(
                    f"warm-up position {last} not applied after 60 s; consumer log:\n"
                    f"{consumer.tail()}"
                )
            for process in started:
                process.check()
            probe = PositionProbe(broker.bootstrap, TOPIC).start()
            time.sleep(1)
            ps.log(f"measured run: {args.rate:,.0f} events/s for {args.duration:.0f} s…")
            count = int(args.rate * args.duration)
            bodies = requests_for(tag, warm_count // 3 + 1, count)
            meter = ps.CpuMeter(
                {
                    "registry": registry.pid,
                    "relay": relay.pid,
                    "subsidy consume": consumer.pid,
                    "subsidy serve": subsidy.pid,
                    "broker": broker.pid,
                },
                [registry_db, subsidy_db],
            ).start()
            posted = asyncio.run(
                paced_load(registry.url, bureau, bodies, args.rate, args.connections, "run")
            )
            report["cpu"] = meter.stop()
            last = max((p.position or 0) for p in posted)
            ps.log(f"posted; waiting until position {last:,} is applied…")
            caught_up = wait_applied(poller, last, 120)
            time.sleep(3 * args.poll_ms / 1000)
            poller.stop()
            probe.stop()
            for process in started:
                process.check()
            report["caught_up"] = caught_up
            report["poll_errors"] = poller.errors
            report["polls"] = poller.polls
            report["poll_duration"] = lag_stats(sorted(poller.durations))
            report["run"] = analyse(posted, poller, probe.seen)
            report["logs"] = {
                p.name: {
                    "warnings": p.log_text().count(" WARNING "),
                    "errors": p.log_text().count(" ERROR "),
                }
                for p in started
            }
        finally:
            for process in reversed(started):
                process.stop()
    report["projector"] = projector_counts(workdir / "consume.log")
    if not args.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    base_p99 = report["baseline_kafka_hop"]["p99_ms"]
    p99 = report["run"]["lag"]["p99_ms"]
    report["ratio_p99_to_baseline"] = round(p99 / base_p99, 2) if p99 and base_p99 else None
    report["goal_met"] = p99 is not None and p99 <= GOAL_P99_S * 1000 and report["caught_up"]
    path = ps.write_results("e2e", report, args.out)
    print(table(report))
    print(f"\nresults: {path}")
    if args.keep_workdir:
        print(f"service logs: {workdir}")
    return 0


def table(report: dict[str, Any]) -> str:
    run = report["run"]

    def row(label: str, s: dict[str, Any]) -> list[str]:
        return [label, ps.fmt(s["count"])] + [
            ps.fmt(s[k], ",.1f") for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
        ]

    rows = [
        row("commit (201) → applied in subsidy", run["lag"]),
        row("  same, to the start of that poll", run["lag_to_poll_start"]),
        row("  commit → in Kafka (relay hop)", run["registry_to_kafka"]),
        row("  in Kafka → applied (consumer)", run["kafka_to_applied"]),
        row("  commit → it and all before in Kafka", run["registry_to_kafka_with_all_before"]),
        row("  all before in Kafka → applied", run["kafka_with_all_before_to_applied"]),
        row("registry answer time (sent → 201)", run["registry_answer_time"]),
        row("client queueing (scheduled → sent)", run["client_queueing"]),
        row("subsidy /v1/health poll itself", report["poll_duration"]),
        row("baseline: one raw Kafka hop", report["baseline_kafka_hop"]),
    ]
    windows = ", ".join(
        f"{k}s {ps.fmt(v['p99_ms'], ',.0f')}" for k, v in run["lag_by_10s_window"].items()
    )
    lines = [
        f"End-to-end lag — {report['rate']:,.0f} events/s for {report['duration_s']:.0f} s, "
        f"PostgreSQL stores, {report['partitions']} partitions, registry workers "
        f"{report['registry_workers']}, subsidy polled every {report['poll_ms']:.0f} ms",
        "",
        ps.render_table(["ms", "events", "p50", "p95", "p99", "max"], rows),
        "",
        f"posted {run['posted']:,}, 201 {run['answered_201']:,} "
        f"(achieved {ps.fmt(run['achieved_events_per_s'])}/s), statuses {run['statuses']}, "
        f"never visible {run['never_visible']}, caught up: {report['caught_up']}",
        f"p99 / baseline p99: {ps.fmt(report['ratio_p99_to_baseline'], ',.1f')}   "
        f"goal p99 ≤ {GOAL_P99_S * 1000:,.0f} ms: {'MET' if report['goal_met'] else 'NOT MET'}",
        f"lag p99 by 10 s window (ms): {windows}",
        ps.cpu_line(report["cpu"]),
        f"consumer: {report['projector']['from_kafka']} events from Kafka, "
        f"{report['projector']['from_feed']} from the feed "
        f"({report['projector']['feed_catch_ups']} feed catch-ups, "
        f"{report['projector']['holes_filled']} holes filled)",
        "log warnings/errors: "
        + ", ".join(f"{k} {v['warnings']}/{v['errors']}" for k, v in report["logs"].items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
