#!/usr/bin/env python3
"""Ingest benchmark of the registry HTTP API, against PostgreSQL and SQLite.

For each backend the script starts its own registry (``tcr registry serve``) on a free loopback
port, against a fresh database, and measures:

* single commands: ``--clients`` concurrent clients, each registering a contract and then
  posting an invoice and a bank transfer proof on it (1 : 1 : 1), for ``--duration`` seconds;
  events/s (201 answers per second), p50/p95/p99 latency, errors by status;
* batches: ``--batch-clients`` clients posting ``/v1/batch`` with ``--batch-size`` commands
  (registrations, each followed by its invoice and transfer proof) for ``--batch-duration``
  seconds; events/s and p50/p99 latency per batch;
* the baseline, in the same run and on the same database server (a separate fresh database,
  with the registry stopped): raw inserts of rows the size of a stored event, one row per
  transaction (``--clients`` threads) and 1,000 rows per transaction (executemany, and COPY on
  PostgreSQL); rows/s and the ratios registry / baseline.

CPU use of the server processes, the database processes and this client is sampled from /proc
during every phase, so that a saturated machine is told apart from a slow code path.

Run it with the project's virtualenv, from anywhere::

    .venv/bin/python bench/registry_ingest.py                       # both backends, 30 s each
    .venv/bin/python bench/registry_ingest.py --backend postgresql --duration 5

A readable table goes to stdout, progress to stderr, every figure to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``services`` importable
    sys.path.insert(0, str(REPO))

from pipeline_support import (  # noqa: E402
    CLK_TCK,
    DEFAULT_ADMIN_URL,
    add_token,
    credit_code,
    free_port,
    get_json,
    git_commit,
    log,
    percentile,
    postgres_database,
    sqlalchemy_url,
    tcr_command,
)

from services.common.money import format_fen  # noqa: E402

GOAL_SINGLE_EVENTS_S = 1_000
GOAL_SINGLE_P99_MS = 100.0
GOAL_BATCH_EVENTS_S = 10_000
BASELINE_ROWS_PER_TXN = 1_000
BASELINE_STATE_BYTES = 600  # a stored event: ~280 B (evidence) to ~710 B (registration) state
OTHER_CPU_WARNING = 25.0  # % of one core used by processes outside the benchmark


# -- the workload: valid, varied bodies ---------------------------------------------------------

LOCAL_REGIONS = ("410402", "410403", "410404", "410411", "410421", "410422", "410423", "410481")
OUTSIDE_REGIONS = ("110108", "310115", "440305", "410105", "320102", "420111")
CONTRACT_TYPES = ("development", "transfer", "licensing", "consulting", "service")
DOMAINS = (
    "advanced manufacturing",
    "new materials",
    "electronic information",
    "new energy",
    "biomedicine",
    "resources and environment",
)
TITLES = (
    "煤矿智能巡检机器人技术开发",
    "尼龙66改性材料技术转让",
    "特种钢板热处理工艺许可",
    "超高压输电设备在线监测技术服务",
    "工业固废综合利用技术咨询",
    "碳化硅陶瓷制备技术开发",
)
BANKS = ("中国银行平顶山分行", "中国工商银行平顶山分行", "平顶山银行", None)


def make_parties() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Sellers (local universities and institutes, outside firms) and buyers (mostly local
    firms): distinct, valid parties, none of them both a seller and a buyer."""
    sellers: list[dict[str, str]] = []
    kinds = ("university", "research_institute", "new_rd_institution")
    for i in range(120):
        region = LOCAL_REGIONS[i % len(LOCAL_REGIONS)]
        sellers.append(
            {
                "credit_code": credit_code("12", region, 10_000 + i),
                "name": f"平顶山第{i + 1}技术研究院",
                "kind": kinds[i % 3],
                "region_code": region,
            }
        )
    for i in range(80):
        region = OUTSIDE_REGIONS[i % len(OUTSIDE_REGIONS)]
        sellers.append(
            {
                "credit_code": credit_code("91", region, 20_000 + i),
                "name": f"智造科技第{i + 1}有限公司",
                "kind": "enterprise",
                "region_code": region,
            }
        )
    buyers: list[dict[str, str]] = []
    for i in range(500):
        local = i % 5 != 0
        region = (LOCAL_REGIONS if local else OUTSIDE_REGIONS)[i % 6]
        buyers.append(
            {
                "credit_code": credit_code("91", region, 30_000 + i),
                "name": f"平顶山煤矿机械第{i + 1}有限公司"
                if local
                else f"外埠制造第{i + 1}有限公司",
                "kind": "enterprise" if i % 7 else "other",
                "region_code": region,
            }
        )
    return sellers, buyers


SELLERS, BUYERS = make_parties()


@dataclass(frozen=True)
class Deal:
    """One contract of the workload with the bodies of its three commands."""

    registration_no: str
    contract: dict[str, Any]
    invoice: dict[str, Any]
    transfer: dict[str, Any]


def deal(phase: str, client: int, n: int) -> Deal:
    """The n-th contract of a client, with an invoice and a transfer proof of 60 % each.

    Numbers are unique per (phase, client, n); dates are in 2021–2025, evidence after signing.
    """
    mix = n * 131 + client * 17
    year = 2021 + mix % 5
    day = 1 + mix % 28
    suffix = f"{phase}{client:03d}{n:08d}"
    registration_no = f"{year}4104{suffix}"
    seller = SELLERS[mix % len(SELLERS)]
    buyer = BUYERS[(mix // 3) % len(BUYERS)]
    contract_fen = (50_000 + (mix * 7919) % 950_000) * 100
    part_fen = contract_fen * 6 // 10
    contract = {
        "registration_no": registration_no,
        "station_id": f"S{1 + client % 6}",
        "registered_on": f"{year}-03-{day:02d}",
        "signed_on": f"{year}-02-{day:02d}",
        "title": TITLES[mix % len(TITLES)],
        "contract_type": CONTRACT_TYPES[mix % len(CONTRACT_TYPES)],
        "domain": DOMAINS[mix % len(DOMAINS)],
        "seller": seller,
        "buyer": buyer,
        "brokers": [f"BK{mix % 40:04d}"] if mix % 4 == 0 else [],
        "contract_amount": format_fen(contract_fen),
        "technology_amount": format_fen(contract_fen * 8 // 10),
        "related_party": mix % 10 == 0,
    }
    invoice = {
        "invoice_no": f"INV{suffix}",
        "issued_on": f"{year}-05-{day:02d}",
        "amount": format_fen(part_fen),
        "issuer_credit_code": seller["credit_code"],
        "recipient_credit_code": buyer["credit_code"],
    }
    transfer = {
        "serial_no": f"BANK{suffix}",
        "paid_on": f"{year}-06-{day:02d}",
        "amount": format_fen(part_fen),
        "payer_credit_code": buyer["credit_code"],
        "payee_credit_code": seller["credit_code"],
    }
    bank = BANKS[mix % len(BANKS)]
    if bank is not None:
        transfer["bank"] = bank
    return Deal(registration_no, contract, invoice, transfer)


def batch_body(client: int, first: int, size: int) -> tuple[bytes, int]:
    """A /v1/batch body of ``size`` commands: each contract followed by its invoice and
    transfer proof. Returns the body and the number of contracts it used."""
    commands: list[dict[str, Any]] = []
    n = first
    while len(commands) < size:
        d = deal("B", client, n)
        n += 1
        commands.append({"op": "register_contract", "body": d.contract})
        commands.append(
            {"op": "record_invoice", "body": {"registration_no": d.registration_no, **d.invoice}}
        )
        commands.append(
            {
                "op": "record_transfer_proof",
                "body": {"registration_no": d.registration_no, **d.transfer},
            }
        )
    return orjson.dumps({"commands": commands[:size]}), n - first


# -- HTTP clients ---------------------------------------------------------------------------------


class RawHttp:
    """One HTTP/1.1 keep-alive connection, requests written as pre-built bytes.

    Far cheaper in CPU than a general client; it understands exactly what uvicorn answers
    (Content-Length or chunked bodies) and reconnects when the server closes.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self._host, self._port = host, port
        self._common = (
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self._host, self._port, limit=1 << 20)
        self._reader, self._writer = reader, writer
        return reader, writer

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None or self._reader is None:
            reader, writer = await self._connect()
        else:
            reader, writer = self._reader, self._writer
        writer.write(
            b"POST "
            + path.encode()
            + b" HTTP/1.1\r\n"
            + self._common
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        if len(body) > 65536:
            await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            raise
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.find(b"\r\n", at + 2)
            payload = await reader.readexactly(int(lower[at + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                chunks.append(await reader.readexactly(size + 2))
                if size == 0:
                    break
            payload = b"".join(c[:-2] for c in chunks)
        else:
            payload = b""
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._reader = self._writer = None


class HttpxHttp:
    """The same interface on httpx.AsyncClient (one connection per client)."""

    def __init__(self, host: str, port: int, token: str) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=120.0,
        )

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        response = await self._client.post(path, content=body)
        return response.status_code, response.content

    async def close(self) -> None:
        await self._client.aclose()


def new_client(kind: str, host: str, port: int, token: str) -> RawHttp | HttpxHttp:
    return RawHttp(host, port, token) if kind == "raw" else HttpxHttp(host, port, token)


# -- CPU accounting from /proc ------------------------------------------------------------------


def _proc_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def _all_processes() -> Iterator[tuple[int, int, str]]:
    """(pid, ppid, comm) of every process visible in /proc."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.find(b"(") + 1 : raw.rfind(b")")].decode(errors="replace")
        ppid = int(raw.rsplit(b")", 1)[1].split()[1])
        yield int(entry.name), ppid, comm


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


@dataclass
class CpuSample:
    wall: float
    machine_busy: float
    machine_total: float
    server: float
    database: float
    client: float


def cpu_sample(server_pid: int | None) -> CpuSample:
    """CPU seconds used so far by the server's process tree, PostgreSQL's processes (when on
    this machine) and this benchmark process."""
    procs = list(_all_processes())
    children: dict[int, list[int]] = {}
    for pid, ppid, _ in procs:
        children.setdefault(ppid, []).append(pid)
    server = 0.0
    if server_pid is not None:
        stack = [server_pid]
        while stack:
            pid = stack.pop()
            server += _proc_cpu_seconds(pid)
            stack.extend(children.get(pid, ()))
    database = sum(_proc_cpu_seconds(pid) for pid, _, comm in procs if comm == "postgres")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    busy, total = _machine_busy()
    return CpuSample(
        time.perf_counter(), busy, total, server, database, usage.ru_utime + usage.ru_stime
    )


def cpu_between(a: CpuSample, b: CpuSample) -> dict[str, float]:
    """CPU use between two samples, in % of one core (200 % = both cores of a 2-core box)."""
    wall = max(b.wall - a.wall, 1e-9)
    machine = (b.machine_busy - a.machine_busy) / max(b.machine_total - a.machine_total, 1e-9)
    server = 100 * (b.server - a.server) / wall
    database = 100 * (b.database - a.database) / wall
    client = 100 * (b.client - a.client) / wall
    busy = 100 * (b.machine_busy - a.machine_busy) / wall
    return {
        "machine_busy_pct_of_all_cores": round(100 * machine, 1),
        "server_pct_of_one_core": round(server, 1),
        "database_pct_of_one_core": round(database, 1),
        "client_pct_of_one_core": round(client, 1),
        # Anything else on the machine (other processes, the kernel's own threads): a high
        # figure means the measurement shared the cores with something else.
        "other_pct_of_one_core": round(max(0.0, busy - server - database - client), 1),
    }


# -- measurement ----------------------------------------------------------------------------------


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


@dataclass
class Window:
    """The measured interval of a phase: answers completed inside it are counted."""

    start: float
    end: float
    events: int = 0
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    by_op: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def record(self, op: str, began: float, status: int, events: int, body: bytes) -> None:
        done = time.perf_counter()
        if not self.start <= done <= self.end:
            return
        self.requests += 1
        self.latencies.append(done - began)
        if status == 201:
            self.events += events
            self.by_op[op] += events
        else:
            self.errors[f"{status} {op}"] += 1
            if len(self.samples) < 5:
                self.samples.append(f"{status} {op}: {body[:300].decode(errors='replace')}")

    def failed(self, op: str, exc: BaseException) -> None:
        if self.start <= time.perf_counter() <= self.end:
            self.errors[f"{type(exc).__name__} {op}"] += 1

    def summary(self, cpu: dict[str, float]) -> dict[str, Any]:
        seconds = self.end - self.start
        lat = sorted(self.latencies)
        if self.events and "server_pct_of_one_core" in cpu:
            # Server CPU per stored event: less sensitive to a busy machine than events/s.
            per_event = cpu["server_pct_of_one_core"] * 10 * seconds / self.events
            cpu = {**cpu, "server_cpu_ms_per_event": round(per_event, 3)}
        return {
            "seconds": round(seconds, 2),
            "requests": self.requests,
            "events": self.events,
            "events_per_s": round(self.events / seconds, 1),
            "requests_per_s": round(self.requests / seconds, 1),
            "latency_ms": {
                "p50": _ms(percentile(lat, 50)),
                "p95": _ms(percentile(lat, 95)),
                "p99": _ms(percentile(lat, 99)),
                "max": _ms(lat[-1] if lat else None),
            },
            "events_by_op": dict(self.by_op),
            "errors": dict(self.errors),
            "error_samples": self.samples,
            "cpu": cpu,
        }


async def _progress(label: str, window: Window, every: float = 5.0) -> None:
    seen, last = 0, time.perf_counter()
    while True:
        await asyncio.sleep(every)
        now = time.perf_counter()
        if now < window.start:
            log(f"{label}: warming up")
            continue
        rate = (window.events - seen) / max(now - max(last, window.start), 1e-9)
        errors = sum(window.errors.values())
        log(f"{label}: {window.events:,} events, {rate:,.0f} events/s lately, {errors} errors")
        seen, last = window.events, now


async def _sample_cpu(window: Window, server_pid: int, into: dict[str, Any]) -> None:
    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    first = cpu_sample(server_pid)
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    into.update(cpu_between(first, cpu_sample(server_pid)))


async def _finish(tasks: list[asyncio.Task[Any]], grace: float) -> None:
    _done, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


async def _drive(
    label: str,
    window: Window,
    server_pid: int,
    clients: list[Coroutine[Any, Any, None]],
    grace: float,
) -> dict[str, Any]:
    """Run the clients through the window, reporting progress and sampling CPU; its summary."""
    cpu: dict[str, Any] = {}
    progress = asyncio.create_task(_progress(label, window))
    sampler = asyncio.create_task(_sample_cpu(window, server_pid, cpu))
    tasks = [asyncio.create_task(c) for c in clients]
    await asyncio.sleep(window.end - time.perf_counter())
    await asyncio.wait([sampler])
    await _finish(tasks, grace=grace)
    progress.cancel()
    return window.summary(cpu)


async def single_phase(
    label: str, port: int, token: str, args: argparse.Namespace, server_pid: int
) -> dict[str, Any]:
    """``args.clients`` clients, each: register a contract, then an invoice and a transfer
    proof on it, until the window closes."""
    now = time.perf_counter()
    window = Window(now + args.warmup, now + args.warmup + args.duration)

    async def client(index: int) -> None:
        http = new_client(args.client, "127.0.0.1", port, token)
        n = 0
        try:
            while time.perf_counter() < window.end:
                d = deal("S", index, n)
                n += 1
                steps = (
                    ("register_contract", "/v1/contracts", d.contract),
                    ("record_invoice", f"/v1/contracts/{d.registration_no}/invoices", d.invoice),
                    (
                        "record_transfer_proof",
                        f"/v1/contracts/{d.registration_no}/transfer-proofs",
                        d.transfer,
                    ),
                )
                for op, path, body in steps:
                    payload = orjson.dumps(body)
                    began = time.perf_counter()
                    try:
                        status, answer = await http.post(path, payload)
                    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                        window.failed(op, exc)
                        await asyncio.sleep(0.05)
                        break
                    window.record(op, began, status, 1, answer)
                    if status != 201:
                        break  # no evidence on a contract that was not registered
        finally:
            await http.close()

    clients = [client(i) for i in range(args.clients)]
    return await _drive(label, window, server_pid, clients, grace=60)


async def batch_phase(
    label: str, port: int, token: str, args: argparse.Namespace, server_pid: int
) -> dict[str, Any]:
    """``args.batch_clients`` clients posting /v1/batch bodies of ``args.batch_size``
    commands, back to back, until the window closes. Bodies are built before they are timed."""
    now = time.perf_counter()
    window = Window(now + args.warmup, now + args.warmup + args.batch_duration)

    async def client(index: int) -> None:
        http = new_client(args.client, "127.0.0.1", port, token)
        n = 0
        body, used = batch_body(index, n, args.batch_size)
        try:
            while time.perf_counter() < window.end:
                began = time.perf_counter()
                try:
                    status, answer = await http.post("/v1/batch", body)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    window.failed("batch", exc)
                    await asyncio.sleep(0.05)
                    continue
                count = orjson.loads(answer).get("count", 0) if status == 201 else 0
                window.record("batch", began, status, count, answer)
                n += used
                body, used = batch_body(index, n, args.batch_size)
        finally:
            await http.close()

    clients = [client(i) for i in range(args.batch_clients)]
    result = await _drive(label, window, server_pid, clients, grace=120)
    result["batch_size"] = args.batch_size
    result["batches_per_s"] = result.pop("requests_per_s")
    return result


def run_async(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# -- the registry server --------------------------------------------------------------------------


def create_schema(database_url: str) -> None:
    """Create the registry's tables before its workers start.

    Every worker creates missing tables at start-up, check-then-create: on a fresh database
    several workers race and one may fail with "table registry_events already exists", which
    stops the whole server. Opening the registry once here avoids the race.
    """
    from services.registry.application import Registry

    Registry(database_url).close()


class Server:
    """``tcr registry serve`` as a subprocess, its output in a log file."""

    def __init__(self, database_url: str, workers: int, tokens_file: Path, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        env = {**os.environ, "TCR_TOKENS_FILE": str(tokens_file)}
        env.pop("TCR_REGISTRY_DATABASE_URL", None)
        command = [
            *tcr_command(),
            "registry",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--database-url",
            database_url,
            "--no-access-log",
        ]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, workers: int, timeout: float = 60.0) -> None:
        """Until /v1/health answers and every worker has logged that its start-up is complete."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"registry exited with {self.process.returncode}: {self.tail()}")
            try:
                get_json(self.url + "/v1/health")
                if self.log_text().count("Application startup complete") >= workers:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"registry not healthy after {timeout:.0f} s: {self.tail()}")

    def head(self) -> int:
        return int(get_json(self.url + "/v1/health", timeout=30)["head"])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful shutdown, which stops its workers), then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for pid, ppid, _ in list(_all_processes()):
                    if ppid == self.process.pid:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()
        self._log.close()


# -- databases ------------------------------------------------------------------------------------


def _state(i: int) -> bytes:
    """An event-sized JSON state, padded to BASELINE_STATE_BYTES."""
    raw = orjson.dumps({"registration_no": f"2024410400{i:08d}", "amount_fen": i * 100})
    return raw[:-1] + b',"pad":"' + b"x" * (BASELINE_STATE_BYTES - len(raw) - 9) + b'"}'


TOPIC = "services.registry.domain:Contract.InvoiceRecorded"


def _row(i: int) -> tuple[uuid.UUID, int, str, bytes]:
    return uuid.uuid4(), 1, TOPIC, _state(i)


def _timed_threads(
    threads: int, seconds: float, work: Callable[[int, Callable[[], bool]], tuple[int, list[float]]]
) -> dict[str, Any]:
    """Run ``work(index, running)`` on ``threads`` threads for ``seconds``; rows/s, latency."""
    results: list[tuple[int, list[float]]] = []
    lock = threading.Lock()
    deadline = [0.0]
    go = threading.Barrier(threads + 1)

    def running() -> bool:
        return time.perf_counter() < deadline[0]

    def body(index: int) -> None:
        go.wait()
        outcome = work(index, running)
        with lock:
            results.append(outcome)

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    first = cpu_sample(None)
    deadline[0] = time.perf_counter() + seconds
    start = time.perf_counter()
    go.wait()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    cpu = cpu_between(first, cpu_sample(None))
    rows = sum(r for r, _ in results)
    lat = sorted(x for _, lats in results for x in lats)
    return {
        "threads": threads,
        "seconds": round(elapsed, 2),
        "rows": rows,
        "rows_per_s": round(rows / elapsed, 1),
        "latency_ms_per_txn": {"p50": _ms(percentile(lat, 50)), "p99": _ms(percentile(lat, 99))},
        "cpu": cpu,
    }


PG_TABLE = """
CREATE TABLE bench_events (
    id bigserial PRIMARY KEY,
    originator_id uuid NOT NULL,
    originator_version integer NOT NULL,
    topic text NOT NULL,
    state bytea NOT NULL,
    UNIQUE (originator_id, originator_version)
)"""
PG_INSERT = (
    "INSERT INTO bench_events (originator_id, originator_version, topic, state) "
    "VALUES (%s, %s, %s, %s)"
)


def postgres_baseline(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Raw psycopg: 1 row per transaction on ``--clients`` threads, then 1,000 rows per
    transaction by executemany and by COPY on ``--batch-clients`` threads."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PG_TABLE)

    def one_row(index: int, running: Callable[[], bool]) -> tuple[int, list[float]]:
        lats: list[float] = []
        with psycopg.connect(url, autocommit=True) as conn:
            i = index * 10_000_000
            while running():
                began = time.perf_counter()
                conn.execute(PG_INSERT, _row(i), prepare=True)
                lats.append(time.perf_counter() - began)
                i += 1
        return len(lats), lats

    def many(copy: bool) -> Callable[[int, Callable[[], bool]], tuple[int, list[float]]]:
        def work(index: int, running: Callable[[], bool]) -> tuple[int, list[float]]:
            lats: list[float] = []
            rows = 0
            with psycopg.connect(url) as conn:
                i = (100 + index) * 10_000_000
                while running():
                    batch = [_row(i + k) for k in range(BASELINE_ROWS_PER_TXN)]
                    i += BASELINE_ROWS_PER_TXN
                    began = time.perf_counter()
                    with conn.cursor() as cur:
                        if copy:
                            with cur.copy(
                                "COPY bench_events (originator_id, originator_version, topic,"
                                " state) FROM STDIN"
                            ) as c:
                                for row in batch:
                                    c.write_row(row)
                        else:
                            cur.executemany(PG_INSERT, batch)
                    conn.commit()
                    lats.append(time.perf_counter() - began)
                    rows += len(batch)
            return rows, lats

        return work

    log(f"postgresql baseline: 1 row/txn, {args.clients} threads, {args.baseline_duration} s")
    single = _timed_threads(args.clients, args.baseline_duration, one_row)
    log(f"postgresql baseline: 1,000 rows/txn executemany, {args.batch_clients} threads")
    executemany = _timed_threads(args.batch_clients, args.baseline_duration, many(copy=False))
    log(f"postgresql baseline: 1,000 rows/txn COPY, {args.batch_clients} threads")
    copy = _timed_threads(args.batch_clients, args.baseline_duration, many(copy=True))
    return {
        "row_state_bytes": BASELINE_STATE_BYTES,
        "one_row_per_txn": single,
        "rows_1000_per_txn_executemany": executemany,
        "rows_1000_per_txn_copy": copy,
    }


SQLITE_TABLE = """
CREATE TABLE bench_events (
    id INTEGER PRIMARY KEY,
    originator_id BLOB NOT NULL,
    originator_version INTEGER NOT NULL,
    topic TEXT NOT NULL,
    state BLOB NOT NULL,
    UNIQUE (originator_id, originator_version)
)"""
SQLITE_INSERT = (
    "INSERT INTO bench_events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)"
)


def sqlite_baseline(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """sqlite3 into a WAL file (as the registry's), one writer: 1 row per transaction, then
    1,000 rows per transaction by executemany."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(SQLITE_TABLE)

    def sqlite_row(i: int) -> tuple[bytes, int, str, bytes]:
        return uuid.uuid4().bytes, 1, TOPIC, _state(i)

    def one_row(_index: int, running: Callable[[], bool]) -> tuple[int, list[float]]:
        lats: list[float] = []
        i = 0
        while running():
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(SQLITE_INSERT, sqlite_row(i))
            conn.execute("COMMIT")
            lats.append(time.perf_counter() - began)
            i += 1
        return len(lats), lats

    def many(_index: int, running: Callable[[], bool]) -> tuple[int, list[float]]:
        lats: list[float] = []
        i, rows = 10_000_000, 0
        while running():
            batch = [sqlite_row(i + k) for k in range(BASELINE_ROWS_PER_TXN)]
            i += BASELINE_ROWS_PER_TXN
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(SQLITE_INSERT, batch)
            conn.execute("COMMIT")
            lats.append(time.perf_counter() - began)
            rows += len(batch)
        return rows, lats

    try:
        log(f"sqlite baseline: 1 row/txn, one writer, {args.baseline_duration} s")
        single = _timed_threads(1, args.baseline_duration, one_row)
        log("sqlite baseline: 1,000 rows/txn executemany, one writer")
        executemany = _timed_threads(1, args.baseline_duration, many)
    finally:
        conn.close()
    return {
        "row_state_bytes": BASELINE_STATE_BYTES,
        "one_row_per_txn": single,
        "rows_1000_per_txn_executemany": executemany,
    }


# -- one backend -----------------------------------------------------------------------------------


def _count(text: str, needle: str) -> int:
    return text.count(needle)


def _log_samples(text: str, limit: int = 8) -> list[str]:
    """The first distinct warnings and errors of a server log (uvicorn's INFO lines left out)."""
    seen: list[str] = []
    for line in text.splitlines():
        if line.startswith(("INFO:", " ", "\t")) or not line.strip():
            continue
        line = line[:400]
        if line not in seen:
            seen.append(line)
        if len(seen) >= limit:
            break
    return seen


def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    tag = f"tcr_bench_{os.getpid()}"
    result: dict[str, Any] = {"backend": backend}
    with contextlib.ExitStack() as stack:
        if backend == "postgresql":
            libpq = stack.enter_context(postgres_database(args.admin_url, tag))
            database_url = sqlalchemy_url(libpq)
        else:
            database_url = f"sqlite:///{workdir / 'registry.db'}"
        tokens_file = workdir / f"tokens-{backend}.toml"
        token = add_token(tokens_file, "bureau", "bureau")
        create_schema(database_url)
        server = Server(database_url, args.workers, tokens_file, workdir / f"server-{backend}.log")
        stack.callback(server.stop)
        log(f"{backend}: registry starting on port {server.port} ({args.workers} workers)")
        server.wait_healthy(args.workers)
        pid = server.process.pid

        log(f"{backend}: single commands, {args.clients} clients, {args.duration} s")
        result["single"] = run_async(
            single_phase(f"{backend} single", server.port, token, args, pid)
        )
        if args.batch_duration > 0:
            log(
                f"{backend}: /v1/batch of {args.batch_size}, {args.batch_clients} clients, "
                f"{args.batch_duration} s"
            )
            result["batch"] = run_async(
                batch_phase(f"{backend} batch", server.port, token, args, pid)
            )
        result["log_head"] = server.head()
        server.stop()
        text = server.log_text()
        # Workers log WARNING and above only (they do not configure logging), so "lost a race"
        # (INFO) is not seen; "failed after N attempts" is a 409 answered after the retries.
        result["server_log"] = {
            "submission_failed_after_retries": _count(text, "failed after"),
            "exceptions": _count(text, "Traceback"),
            "samples": _log_samples(text),
        }
        if server.process.returncode not in (0, None):
            result["server_log"]["exit_code"] = server.process.returncode

    if args.baseline_duration > 0:
        if backend == "postgresql":
            with postgres_database(args.admin_url, tag + "_baseline") as libpq:
                result["baseline"] = postgres_baseline(libpq, args)
        else:
            result["baseline"] = sqlite_baseline(workdir / "baseline.db", args)
        result["ratios"] = ratios(result)
    return result


def ratios(result: dict[str, Any]) -> dict[str, float | None]:
    base = result["baseline"]

    def ratio(events: dict[str, Any] | None, rows: dict[str, Any] | None) -> float | None:
        if not events or not rows or not rows["rows_per_s"]:
            return None
        return round(events["events_per_s"] / rows["rows_per_s"], 3)

    out = {
        "single_vs_one_row_per_txn": ratio(result.get("single"), base["one_row_per_txn"]),
        "batch_vs_1000_rows_executemany": ratio(
            result.get("batch"), base["rows_1000_per_txn_executemany"]
        ),
    }
    if "rows_1000_per_txn_copy" in base:
        out["batch_vs_1000_rows_copy"] = ratio(result.get("batch"), base["rows_1000_per_txn_copy"])
    return out


# -- report ----------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None:
        return "—"
    return format(value, spec)


def _errors(phase: dict[str, Any] | None) -> str:
    if not phase:
        return "—"
    errors = phase["errors"]
    if not errors:
        return "none"
    return ", ".join(f"{k}×{v}" for k, v in sorted(errors.items()))


def table(report: dict[str, Any]) -> str:
    backends = report["results"]
    names = list(backends)
    width = 34
    col = 24
    lines = []
    p = report["parameters"]
    lines.append(
        f"registry ingest — {report['machine']['nproc']} cores, {report['date']}, "
        f"commit {report['git_commit'][:10]}, {p['workers']} server workers, "
        f"{p['client']} client"
    )
    lines.append("".ljust(width) + "".join(n.rjust(col) for n in names))

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        cells = []
        for n in names:
            try:
                cells.append(cell(backends[n]))
            except (KeyError, TypeError):
                cells.append("—")
        lines.append(label.ljust(width) + "".join(c.rjust(col) for c in cells))

    def lat(phase: str, keys: tuple[str, ...]) -> Callable[[dict[str, Any]], str]:
        return lambda r: " / ".join(_fmt(r[phase]["latency_ms"][k], ".1f") for k in keys)

    def cpu(phase: str) -> Callable[[dict[str, Any]], str]:
        def cell(r: dict[str, Any]) -> str:
            c = r[phase]["cpu"]
            return (
                f"{c['server_pct_of_one_core']:.0f}/{c['database_pct_of_one_core']:.0f}"
                f"/{c['client_pct_of_one_core']:.0f}/{c['other_pct_of_one_core']:.0f}"
            )

        return cell

    lines.append(f"single commands ({p['clients']} clients, {p['duration']} s)")
    row("  events/s", lambda r: _fmt(r["single"]["events_per_s"]))
    row("  latency p50/p95/p99 ms", lat("single", ("p50", "p95", "p99")))
    row("  errors", lambda r: _errors(r["single"]))
    row("  cpu % server/postgres/client/other", cpu("single"))
    row(
        "  server cpu ms per event",
        lambda r: _fmt(r["single"]["cpu"]["server_cpu_ms_per_event"], ".2f"),
    )
    lines.append(
        f"batch ({p['batch_clients']} clients × {p['batch_size']} commands, "
        f"{p['batch_duration']} s)"
    )
    row("  events/s", lambda r: _fmt(r["batch"]["events_per_s"]))
    row("  latency p50/p99 ms per batch", lat("batch", ("p50", "p99")))
    row("  errors", lambda r: _errors(r["batch"]))
    row("  cpu % server/postgres/client/other", cpu("batch"))
    row(
        "  server cpu ms per event",
        lambda r: _fmt(r["batch"]["cpu"]["server_cpu_ms_per_event"], ".2f"),
    )
    lines.append(f"baseline, raw inserts of {BASELINE_STATE_BYTES}-byte rows")
    row(
        "  1 row/txn rows/s (threads)",
        lambda r: (
            f"{_fmt(r['baseline']['one_row_per_txn']['rows_per_s'])} "
            f"({r['baseline']['one_row_per_txn']['threads']})"
        ),
    )
    row(
        "  1,000 rows/txn executemany rows/s",
        lambda r: _fmt(r["baseline"]["rows_1000_per_txn_executemany"]["rows_per_s"]),
    )
    row(
        "  1,000 rows/txn COPY rows/s",
        lambda r: _fmt(r["baseline"]["rows_1000_per_txn_copy"]["rows_per_s"]),
    )
    lines.append("ratios registry / baseline")
    row("  single / 1 row per txn", lambda r: _fmt(r["ratios"]["single_vs_one_row_per_txn"], ".2f"))
    row(
        "  batch / 1,000 rows executemany",
        lambda r: _fmt(r["ratios"]["batch_vs_1000_rows_executemany"], ".2f"),
    )
    row("  batch / 1,000 rows COPY", lambda r: _fmt(r["ratios"]["batch_vs_1000_rows_copy"], ".2f"))
    row(
        "server log: 409 after retries / tracebacks",
        lambda r: "{submission_failed_after_retries} / {exceptions}".format(**r["server_log"]),
    )
    shared = [
        f"{n} {phase} {r[phase]['cpu']['other_pct_of_one_core']:.0f}%"
        for n, r in backends.items()
        for phase in ("single", "batch")
        if r.get(phase) and r[phase]["cpu"]["other_pct_of_one_core"] > OTHER_CPU_WARNING
    ]
    if shared:
        lines.append(
            "WARNING: other processes used CPU during the measurement (% of one core: "
            + ", ".join(shared)
            + "); the registry's figures understate what it does on an idle machine."
        )
    lines.append("")
    lines.append("goals (PostgreSQL, this machine):")
    for goal in report["goals"]:
        lines.append(f"  {goal['goal']:<46} {goal['measured']:>22}  {goal['verdict']}")
    return "\n".join(lines)


def goals(results: dict[str, Any]) -> list[dict[str, str]]:
    pg = results.get("postgresql")
    out = []
    single = pg.get("single") if pg else None
    batch = pg.get("batch") if pg else None
    if single:
        eps, p99 = single["events_per_s"], single["latency_ms"]["p99"]
        out.append(
            {
                "goal": f"single commands ≥ {GOAL_SINGLE_EVENTS_S:,} events/s",
                "measured": f"{eps:,.0f} events/s",
                "verdict": "MET" if eps >= GOAL_SINGLE_EVENTS_S else "NOT MET",
            }
        )
        out.append(
            {
                "goal": f"single commands p99 ≤ {GOAL_SINGLE_P99_MS:.0f} ms",
                "measured": f"{_fmt(p99, '.1f')} ms",
                "verdict": "MET" if p99 is not None and p99 <= GOAL_SINGLE_P99_MS else "NOT MET",
            }
        )
    else:
        out.append({"goal": "single commands", "measured": "not run", "verdict": "—"})
    if batch:
        eps = batch["events_per_s"]
        out.append(
            {
                "goal": f"batch ≥ {GOAL_BATCH_EVENTS_S:,} events/s",
                "measured": f"{eps:,.0f} events/s",
                "verdict": "MET" if eps >= GOAL_BATCH_EVENTS_S else "NOT MET",
            }
        )
    else:
        out.append({"goal": "batch", "measured": "not run", "verdict": "—"})
    return out


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
        "cpu_model": model,
        "hostname": platform.node(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="registry_ingest.py",
        description=(
            "Benchmark the registry HTTP API's write path: start `tcr registry serve` on a free "
            "loopback port against a fresh database (PostgreSQL and/or a SQLite file), drive it "
            "with concurrent clients posting single commands (register contract, invoice, "
            "transfer proof, 1:1:1) and then /v1/batch, and compare with raw inserts of "
            "event-sized rows into the same database server. Prints a table, writes JSON."
        ),
        epilog=(
            "Goals (2-core machine, PostgreSQL): single commands ≥ 1,000 events/s with "
            "p99 ≤ 100 ms; batch ≥ 10,000 events/s. "
            "Example: .venv/bin/python bench/registry_ingest.py --backend postgresql "
            "--duration 5. Needs PostgreSQL reachable with the --admin-url (trust auth, "
            "CREATE DATABASE rights); databases it creates are dropped at the end."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--backend",
        choices=("postgresql", "sqlite", "both"),
        default="both",
        help="event store(s) to measure",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="seconds of measured single-command load per backend (after --warmup)",
    )
    parser.add_argument(
        "--clients", type=int, default=32, help="concurrent single-command clients (connections)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="registry server processes (uvicorn workers)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="commands per /v1/batch request (≤ 1000)"
    )
    parser.add_argument(
        "--batch-clients",
        type=int,
        default=32,
        help="concurrent /v1/batch clients (the issue's 32 clients, as for single commands)",
    )
    parser.add_argument(
        "--batch-duration",
        type=float,
        default=30.0,
        help="seconds of measured /v1/batch load per backend; 0 skips the batch phase",
    )
    parser.add_argument(
        "--baseline-duration",
        type=float,
        default=10.0,
        help="seconds of each raw-insert baseline; 0 skips the baselines",
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds before each phase"
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="HTTP client: raw asyncio HTTP/1.1 keep-alive (cheapest in CPU) or httpx",
    )
    parser.add_argument(
        "--admin-url",
        default=DEFAULT_ADMIN_URL,
        help="libpq URL of a PostgreSQL database allowed to CREATE/DROP DATABASE",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results" / "registry_ingest.json",
        help="JSON file for every figure",
    )
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the temporary directory (server logs, SQLite files) and print its path",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.batch_size <= 1000:
        parser.error("--batch-size must be between 1 and 1000 (the API's limit)")
    if args.clients < 1 or args.batch_clients < 1 or args.workers < 1:
        parser.error("--clients, --batch-clients and --workers must be at least 1")
    if args.duration <= 0:
        parser.error("--duration must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    workdir = Path(tempfile.mkdtemp(prefix="tcr-bench-"))
    results: dict[str, Any] = {}
    try:
        for backend in backends:
            results[backend] = bench_backend(backend, args, workdir)
    except KeyboardInterrupt:
        log("interrupted; servers stopped, databases dropped")
        return 130
    finally:
        if args.keep_workdir:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "benchmark": "registry_ingest",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": machine(),
        "parameters": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("keep_workdir",)
        },
        "goals_definition": {
            "single_events_per_s": GOAL_SINGLE_EVENTS_S,
            "single_p99_ms": GOAL_SINGLE_P99_MS,
            "batch_events_per_s": GOAL_BATCH_EVENTS_S,
            "backend": "postgresql",
        },
        "results": results,
    }
    report["goals"] = goals(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print(table(report))
    print(f"\nfigures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
