#!/usr/bin/env python3
"""Refusal flood and store outage: what refused neighbours and an unreachable store cost.

One run, one fresh PostgreSQL database, ``tcr registry serve`` on a free loopback port:

1. alone: ``--honest-clients`` (32, as ``registry_ingest.py``) keep-alive connections each
   loop single commands (register a contract, post an invoice on it, post a bank transfer
   proof on it: 1 : 1 : 1) for ``--duration`` seconds after ``--warmup``; honest answers/s;
2. flood: the same honest load beside ``--flood-clients`` connections that each loop posting
   invoices and transfer proofs to contracts that do not exist (every one a 404 from inside the
   writer, in the honest requests' groups). Ratio = honest answers/s in the flood ÷ alone;
   goal ≥ 0.70. The two windows alternate ``--rounds`` times (alone, flood, alone, …) and are
   summed, because a machine shared with other work drifts more between two windows than the
   figure moves; server CPU per answer (from /proc) is given too, the figure least disturbed;
3. outage: a second registry process (one worker) reaches the same database through a loopback
   TCP proxy (``tests/support/pg_proxy.py``). The proxy is closed (the store unreachable), then
   ``--outage-clients`` connections post one invoice each, all at once, ``--outage-rounds``
   times: the latency of every answer (each must be a 503 in the error shape), p50/p99/max;
   goal p99 ≤ 1 s. The proxy reopened, the time until a write is stored again.

Run with the project's virtualenv::

    .venv/bin/python bench/refusal_flood.py
    .venv/bin/python bench/refusal_flood.py --duration 5 --outage-rounds 2

A table goes to stdout, progress to stderr, every figure to bench/results/ (or ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``services`` and ``tests`` importable
    sys.path.insert(0, str(REPO))

from pipeline_support import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    CpuMeter,
    RawHttp,
    add_token,
    create_registry_schema,
    db_name,
    deal_bodies,
    fmt,
    log,
    machine,
    percentile,
    postgres_database,
    registry_server,
    render_table,
    run_tag,
    sqlalchemy_url,
    write_results,
)
from registry_ingest import git_commit  # noqa: E402

from tests.support.pg_proxy import PostgresProxy  # noqa: E402

GOAL_RATIO = 0.70
GOAL_OUTAGE_P99_S = 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--workers", type=int, default=2, help="server workers (phases 1-2)")
    parser.add_argument("--honest-clients", type=int, default=32)
    parser.add_argument("--flood-clients", type=int, default=12)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per window")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alone/flood window pairs, alternated (noise)"
    )
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--outage-clients", type=int, default=128)
    parser.add_argument("--outage-rounds", type=int, default=5)
    parser.add_argument("--out", help="JSON file (default bench/results/refusal_flood-<when>)")
    return parser.parse_args(argv)


# -- load ---------------------------------------------------------------------------------------


def _single(op: str, body: dict[str, Any]) -> tuple[str, bytes]:
    """The single-command route and body of a workload command (as written for a batch)."""
    if op == "register_contract":
        return "/v1/contracts", orjson.dumps(body)
    rest = {k: v for k, v in body.items() if k != "registration_no"}
    kind = "invoices" if op == "record_invoice" else "transfer-proofs"
    return f"/v1/contracts/{body['registration_no']}/{kind}", orjson.dumps(rest)


async def honest_loop(
    http: RawHttp, tag: str, stop: float, answers: list[tuple[float, int, float]]
) -> None:
    n = 0
    while time.perf_counter() < stop:
        for op, body in deal_bodies(tag, n):
            path, data = _single(op, body)
            started = time.perf_counter()
            status, _ = await http.post(path, data)
            ended = time.perf_counter()
            answers.append((ended, status, ended - started))
            if status != 201:
                break  # the contract's evidence would be refused too
        n += 1
    await http.close()


async def flood_loop(
    http: RawHttp, tag: str, stop: float, answers: list[tuple[float, int, float]]
) -> None:
    n = 0
    while time.perf_counter() < stop:
        _, invoice, transfer = deal_bodies(tag, n)
        unknown = f"UNKNOWN-{tag}-{n}"
        for op, body in (invoice, transfer):
            path, data = _single(op, {**body, "registration_no": unknown})
            started = time.perf_counter()
            status, _ = await http.post(path, data)
            ended = time.perf_counter()
            answers.append((ended, status, ended - started))
        n += 1
    await http.close()


def window_figures(
    answers: list[tuple[float, int, float]], start: float, end: float
) -> dict[str, Any]:
    inside = [a for a in answers if start <= a[0] < end]
    ok = sorted(a[2] for a in inside if a[1] == 201)
    statuses: dict[int, int] = {}
    for _, status, _ in inside:
        statuses[status] = statuses.get(status, 0) + 1
    seconds = end - start
    return {
        "answers": len(inside),
        "per_s": round(len(inside) / seconds, 1),
        "stored_per_s": round(len(ok) / seconds, 1),
        "statuses": statuses,
        "p50_ms": _ms(percentile(ok, 50)),
        "p99_ms": _ms(percentile(ok, 99)),
    }


def combined(windows: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    """The windows of one phase summed: answers per second over all of them, CPU added up;
    latency percentiles are those of the median window."""
    seconds = duration * len(windows)

    def total(side: str) -> dict[str, Any] | None:
        parts = [w[side] for w in windows if w[side] is not None]
        if not parts:
            return None
        statuses: dict[int, int] = {}
        for part in parts:
            for status, count in part["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        answers = sum(p["answers"] for p in parts)
        stored = sum(p["stored_per_s"] for p in parts) * duration
        middle = sorted(parts, key=lambda p: p["stored_per_s"])[len(parts) // 2]
        return {
            "answers": answers,
            "per_s": round(answers / seconds, 1),
            "stored_per_s": round(stored / seconds, 1),
            "statuses": statuses,
            "p50_ms": middle["p50_ms"],
            "p99_ms": middle["p99_ms"],
            "stored_per_s_by_window": [p["stored_per_s"] for p in parts],
        }

    cpu_seconds = sum(w["cpu"]["seconds"] for w in windows)
    cores: dict[str, float] = {}
    for w in windows:
        for name, used in w["cpu"]["cores_used"].items():
            cores[name] = cores.get(name, 0.0) + used * w["cpu"]["seconds"] / cpu_seconds
    busy = sum(w["cpu"]["machine_busy_share"] for w in windows) / len(windows)
    figures: dict[str, Any] = {
        "honest": total("honest"),
        "flood": total("flood"),
        "cpu": {
            "seconds": round(cpu_seconds, 2),
            "cores_used": {k: round(v, 3) for k, v in cores.items()},
            "machine_busy_share": round(busy, 3),
        },
    }
    answers = figures["honest"]["answers"] + (figures["flood"] or {}).get("answers", 0)
    server_ms = cores.get("server", 0.0) * cpu_seconds * 1000
    figures["server_cpu_ms_per_answer"] = round(server_ms / answers, 3) if answers else None
    return figures


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def metered(meter: CpuMeter, begin: float, stop: float, into: dict[str, Any]) -> None:
    """Sample CPU from ``begin`` to ``stop`` (perf_counter times): the measured window only."""
    await asyncio.sleep(max(begin - time.perf_counter(), 0))
    meter.start()
    await asyncio.sleep(max(stop - time.perf_counter(), 0))
    into.update(await asyncio.to_thread(meter.stop))


async def load_phase(
    port: int,
    token: str,
    args: argparse.Namespace,
    *,
    flood: int,
    label: str,
    server_pid: int,
    database: str,
) -> dict[str, Any]:
    tag = run_tag()
    started = time.perf_counter()
    begin = started + args.warmup
    stop = begin + args.duration
    honest: list[tuple[float, int, float]] = []
    refused: list[tuple[float, int, float]] = []
    tasks = [
        honest_loop(RawHttp("127.0.0.1", port, token), f"{label[0]}{tag}{i:02d}", stop, honest)
        for i in range(args.honest_clients)
    ]
    tasks += [
        flood_loop(RawHttp("127.0.0.1", port, token), f"F{tag}{i:02d}", stop, refused)
        for i in range(flood)
    ]
    cpu: dict[str, Any] = {}
    meter = CpuMeter({"server": server_pid}, [database])
    log(f"{label}: {args.honest_clients} honest clients, {flood} flooding, {args.duration} s")
    await asyncio.gather(metered(meter, begin, stop, cpu), *tasks)
    figures = {
        "honest": window_figures(honest, begin, stop),
        "flood": window_figures(refused, begin, stop) if flood else None,
        "cpu": cpu,
    }
    answers = figures["honest"]["answers"] + (figures["flood"]["answers"] if flood else 0)
    server_ms = cpu["cores_used"]["server"] * cpu["seconds"] * 1000
    figures["server_cpu_ms_per_answer"] = round(server_ms / answers, 3) if answers else None
    return figures


async def outage_round(port: int, token: str, clients: int) -> list[tuple[int, float, bytes]]:
    """``clients`` connections post one invoice each at once; (status, seconds, body) each."""
    _, invoice, _ = deal_bodies(f"O{run_tag()}", 0)
    path, data = _single(*invoice)

    async def one() -> tuple[int, float, bytes]:
        http = RawHttp("127.0.0.1", port, token)
        started = time.perf_counter()
        try:
            status, body = await http.post(path, data)
        finally:
            await http.close()
        return status, time.perf_counter() - started, body

    return await asyncio.gather(*(one() for _ in range(clients)))


async def until_stored(port: int, token: str, timeout: float = 30.0) -> float | None:
    """Seconds from now until a write is stored (a 201), posting every 50 ms; None if never."""
    reopened = time.perf_counter()
    path, data = _single(*deal_bodies(f"R{run_tag()}", 0)[0])
    while time.perf_counter() - reopened < timeout:
        http = RawHttp("127.0.0.1", port, token)
        try:
            status, _ = await http.post(path, data)
        finally:
            await http.close()
        if status == 201:
            return time.perf_counter() - reopened
        await asyncio.sleep(0.05)
    return None


def outage_phase(
    database_url: str, tokens: Path, workdir: Path, token: str, args: argparse.Namespace
) -> dict[str, Any]:
    with PostgresProxy(max_connections=256) as proxy:
        server = registry_server(proxy.url(database_url), tokens, workdir / "outage.log")
        try:
            server.wait_healthy()
            log(f"outage: proxy closed, {args.outage_rounds} rounds of {args.outage_clients}")
            proxy.close()
            rounds = []
            for _ in range(args.outage_rounds):
                rounds.append(asyncio.run(outage_round(server.port, token, args.outage_clients)))
                time.sleep(0.2)
            proxy.reopen()
            recovered = asyncio.run(until_stored(server.port, token))
            traceback_lines = server.log_text().count("Traceback")
        finally:
            server.stop()
    answers = [a for r in rounds for a in r]
    latencies = sorted(a[1] for a in answers)
    shaped = sum(1 for status, _, body in answers if status == 503 and _is_error_shape(body))
    per_round = [percentile(sorted(a[1] for a in r), 99) for r in rounds]
    return {
        "clients": args.outage_clients,
        "rounds": args.outage_rounds,
        "answers": len(answers),
        "answered_503_in_error_shape": shaped,
        "p50_s": _round(percentile(latencies, 50)),
        "p99_s": _round(percentile(latencies, 99)),
        "max_s": _round(latencies[-1] if latencies else None),
        "p99_s_by_round": [_round(p) for p in per_round],
        "recovered_after_s": _round(recovered),
        "server_log_tracebacks": traceback_lines,
    }


def _is_error_shape(body: bytes) -> bool:
    with contextlib.suppress(orjson.JSONDecodeError):
        parsed = orjson.loads(body)
        return isinstance(parsed, dict) and {"error", "field", "message"} <= set(parsed)
    return False


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# -- report -------------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    alone, flood = report["alone"]["honest"], report["flood"]["honest"]
    refused = report["flood"]["flood"]
    outage = report["outage"]
    rows = [
        ["honest answers/s alone", fmt(alone["stored_per_s"]), _p99(alone)],
        ["honest answers/s beside the flood", fmt(flood["stored_per_s"]), _p99(flood)],
        ["refused answers/s (flood)", fmt(refused["per_s"]), str(refused["statuses"])],
        ["ratio beside / alone", fmt(report["ratio"], ".2f"), f"goal ≥ {GOAL_RATIO:.2f}"],
        [
            "server cpu ms per honest answer alone",
            fmt(report["alone"]["server_cpu_ms_per_answer"], ".2f"),
            f"per refused answer {fmt(report['server_cpu_ms_per_refusal'], '.2f')}",
        ],
        [
            "cpu cores server / postgres / other (flood)",
            " / ".join(
                fmt(report["flood"]["cpu"]["cores_used"].get(k), ".2f")
                for k in ("server", "postgres backends")
            ),
            f"machine busy {report['flood']['cpu']['machine_busy_share']:.0%}",
        ],
        [
            f"503 latency, {outage['clients']} clients × {outage['rounds']}, store unreachable",
            f"p99 {fmt(outage['p99_s'], '.3f')} s",
            f"p50 {fmt(outage['p50_s'], '.3f')} s, max {fmt(outage['max_s'], '.3f')} s",
        ],
        [
            "503 answers in the error shape",
            f"{outage['answered_503_in_error_shape']} / {outage['answers']}",
            f"server log tracebacks: {outage['server_log_tracebacks']}",
        ],
        ["writes stored again after reopening", f"{fmt(outage['recovered_after_s'], '.3f')} s", ""],
    ]
    goals = [
        f"ratio ≥ {GOAL_RATIO:.2f}: {'MET' if report['ratio'] >= GOAL_RATIO else 'NOT MET'}",
        f"outage p99 ≤ {GOAL_OUTAGE_P99_S:.0f} s: "
        + ("MET" if (outage["p99_s"] or 99) <= GOAL_OUTAGE_P99_S else "NOT MET"),
    ]
    return render_table(["figure", "value", "detail"], rows) + "\n\n" + "\n".join(goals)


def refusal_cost(report: dict[str, Any]) -> float | None:
    """Server CPU per refused answer: the flood window's server CPU less its honest answers at
    the CPU each cost alone, over the refused answers."""
    alone, flood = report["alone"], report["flood"]
    per_honest = alone["server_cpu_ms_per_answer"]
    refused = flood["flood"]["answers"]
    if per_honest is None or not refused:
        return None
    total = flood["cpu"]["cores_used"]["server"] * flood["cpu"]["seconds"] * 1000
    return round((total - flood["honest"]["answers"] * per_honest) / refused, 3)


def _p99(figures: dict[str, Any]) -> str:
    return f"p50 {fmt(figures['p50_ms'], '.1f')} ms, p99 {fmt(figures['p99_ms'], '.1f')} ms"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {
        "bench": "refusal_flood",
        "commit": git_commit(),
        "machine": machine(),
        "parameters": vars(args),
    }
    with (
        tempfile.TemporaryDirectory(prefix="tcr-refusal-") as tmp,
        postgres_database(args.admin_url, db_name("refusal", "registry")) as libpq_url,
    ):
        workdir = Path(tmp)
        tokens = workdir / "tokens.toml"
        token = add_token(tokens, "bench-bureau", "bureau")
        database_url = sqlalchemy_url(libpq_url)
        create_registry_schema(database_url)
        server = registry_server(database_url, tokens, workdir / "registry.log", args.workers)
        database = libpq_url.rsplit("/", 1)[1]
        try:
            server.wait_healthy()
            windows: dict[str, list[dict[str, Any]]] = {"alone": [], "flood": []}
            for _ in range(args.rounds):  # alternated: a machine shared with others drifts
                for phase, flood in (("alone", 0), ("flood", args.flood_clients)):
                    windows[phase].append(
                        asyncio.run(
                            load_phase(
                                server.port,
                                token,
                                args,
                                flood=flood,
                                label=phase,
                                server_pid=server.pid,
                                database=database,
                            )
                        )
                    )
            report["windows"] = windows
            report["alone"] = combined(windows["alone"], args.duration)
            report["flood"] = combined(windows["flood"], args.duration)
        finally:
            server.stop()
        report["outage"] = outage_phase(database_url, tokens, workdir, token, args)
    alone = report["alone"]["honest"]["stored_per_s"]
    report["ratio"] = round(report["flood"]["honest"]["stored_per_s"] / alone, 3) if alone else 0
    report["server_cpu_ms_per_refusal"] = refusal_cost(report)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    print(table(report))
    path = write_results("refusal_flood", report, args.out)
    log(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
