#!/usr/bin/env python3
"""Read side at scale (issue 9): what finance's and auditors' queries cost as the log grows.

For each size in ``--sizes`` (events; default 100,000 and 1,000,000), on fresh PostgreSQL
databases for the registry and the subsidy store (dropped at the end unless ``--keep``):

1. ``tcr demo generate`` writes a history of about that many commands (contracts per year
   chosen from the size; the real count is printed); ``tcr demo load`` posts it through
   ``/v1/batch`` to ``tcr registry serve`` (``--registry-workers``, 2). Both timed.
2. The bundled broker (Tansu) and ``tcr relay`` publish the whole log to Kafka (timed until
   the relay's saved position reaches the head); then ``tcr subsidy serve`` (the finance API)
   and ``tcr subsidy consume`` start, and catch-up is timed from the consumer's start until
   the finance ``/v1/health`` reports ``applied_position`` at the registry head. The
   consumer's peak RSS (VmHWM) is read from /proc. Once the consumer is idle:
3. timed over loopback (httpx, one keep-alive connection, one request at a time), p50/p99 ms
   of ``--requests`` requests each, capped at ``--cap-seconds`` per figure (at least one
   request is made; the count is reported):

   - baseline: finance and registry ``GET /v1/health`` (the floor of one request here);
   - ``GET /v1/entitlements?year=2024&limit=1000`` warm (after one untimed request);
   - the same right after a write: before each request one new event is posted to the
     registry (a contract, then its invoice, then its transfer proof, as the end-to-end
     benchmark posts them) and the finance health polled until it has applied it;
   - ``as_of=`` an instant in the middle of year 2024's part of the history (each request a
     different one, recorded between 70 % and 80 % of the log by default, ``--instants-between``,
     so no answer comes from a cache of an earlier identical question; the demo records its
     years in order, and at the middle of the whole log 2024 has no entitlement yet);
   - ``GET /v1/revisions?year=2024&since=`` such an instant, likewise (a page of 1,000, then
     the default page of 100);
   - ``GET /v1/entitlements/{credit code}?year=2024`` of one beneficiary from the list;
   - registry ``/v1/proofs/inclusion?position=<head>&tree_size=<size>`` and
     ``/v1/proofs/consistency?from=<size/2>&to=<size>`` with an auditor token, ``size``
     the tree size of a checkpoint issued after the load.

   List queries pass ``limit=1000``: today's server ignores it, the rebuilt one pages by it,
   so both answer the same question. Response bytes and rows are recorded.

Then, with every process of the sizes stopped, ``bench/end_to_end_lag.py`` runs as a
subprocess with short options (``--no-e2e`` skips it; it starts its own stack on its own
databases) and its p99 is reported.

Goals printed beside the figures (issue 9): after-write p99 ≤ 100 ms at 1,000,000 events and
within 1.5× of the 100,000 figure; as_of and revisions p99 ≤ 200 ms; proofs p99 ≤ 20 ms;
catch-up ≥ 10,000 events/s. The machine is shared: each phase's CPU use (ours and everyone
else's) is recorded, and the health requests are the same run's baseline.

    .venv/bin/python bench/read_scale.py                 # 100,000 and 1,000,000 events
    .venv/bin/python bench/read_scale.py --quick         # 20,000 and 100,000, fewer requests
    .venv/bin/python bench/read_scale.py --sizes 50000 --requests 20 --no-e2e

The table goes to stdout, progress to stderr, every figure to
``bench/results/read_scale-<timestamp>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pipeline_support as ps
from end_to_end_lag import requests_for

YEAR = 2024
YEARS = "2020-2025"
# Commands that `tcr demo generate` writes per contract (measured: 26,406 for 6 × 1,000).
COMMANDS_PER_CONTRACT = 4.4
GOALS = {
    "after_write_p99_ms": 100.0,
    "after_write_growth": 1.5,
    "as_of_p99_ms": 200.0,
    "revisions_p99_ms": 200.0,
    "proof_p99_ms": 20.0,
    "catch_up_events_per_s": 10_000.0,
}
TOPIC = "bench.read-scale"
PARTITIONS = 3


class Stop(BaseException):
    """SIGTERM: unwind like Ctrl-C so every process and database is cleaned up (a
    BaseException, so that no ``except Exception`` of a size swallows it)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Stop(f"signal {signum}")


# -- small pieces ---------------------------------------------------------------------------------


def ms_stats(seconds: list[float]) -> dict[str, Any]:
    values = sorted(seconds)

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 2)

    return {
        "count": len(values),
        "p50_ms": ms(ps.percentile(values, 50)),
        "p99_ms": ms(ps.percentile(values, 99)),
        "max_ms": ms(values[-1] if values else None),
        "min_ms": ms(values[0] if values else None),
    }


def wait_idle(pid: int, timeout: float = 120.0, window: float = 2.0, share: float = 0.05) -> float:
    """Until a process used under ``share`` of a core over ``window`` seconds; seconds waited."""
    started = time.monotonic()
    last = ps.process_cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(window)
        now = ps.process_cpu_seconds(pid)
        if now is None or last is None or now - last < share * window:
            break
        last = now
    return round(time.monotonic() - started, 1)


def others_cores(cpu: dict[str, Any]) -> float:
    """Cores the rest of the machine used during a phase (other users' work)."""
    ours = sum(cpu["cores_used"].values())
    return round(max(cpu["machine_busy_share"] * (os.cpu_count() or 1) - ours, 0.0), 2)


def relay_position(libpq_url: str) -> int | None:
    """The relay's saved position in the registry database (None before it saved one)."""
    import psycopg

    from services.registry.store import relay_positions

    with psycopg.connect(libpq_url, autocommit=True) as conn:
        row = conn.execute(f"SELECT max(position) FROM {relay_positions.name}").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def applied(subsidy: httpx.Client) -> int:
    return int(subsidy.get("/v1/health").json()["applied_position"])


def wait_applied(subsidy: httpx.Client, position: int, timeout: float, every: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if applied(subsidy) >= position:
                return True
        time.sleep(every)
    return False


def rows_of(body: dict[str, Any]) -> int | None:
    for key in ("entitlements", "revisions", "proof"):
        if isinstance(body.get(key), list):
            return len(body[key])
    return None


def timed_series(
    label: str,
    request: Callable[[], httpx.Response],
    count: int,
    cap_seconds: float,
    before: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """``count`` timed requests, one at a time, stopping early once ``cap_seconds`` of them have
    been spent (never before the first); ``before`` runs untimed before each one."""
    times: list[float] = []
    extras: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    size: dict[str, Any] = {}
    spent = 0.0
    failed: str | None = None
    for _ in range(count):
        if before is not None:
            for k, v in before().items():
                extras.setdefault(k, []).append(v)
        t = time.perf_counter()
        try:
            response = request()
        except httpx.HTTPError as exc:  # a timeout above all: recorded, and the figure ends
            spent += time.perf_counter() - t
            failed = f"{type(exc).__name__} after {time.perf_counter() - t:,.1f} s"
            statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
            break
        elapsed = time.perf_counter() - t
        times.append(elapsed)
        spent += elapsed
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
        if response.status_code == 200 and not size:
            body = response.json()
            size = {"bytes": len(response.content), "rows": rows_of(body)}
        if spent >= cap_seconds:
            break
    result = {**ms_stats(times), "requested": count, "capped": len(times) < count}
    result.update(statuses=statuses, response=size, seconds_spent=round(spent, 2))
    result["failed"] = failed
    for k, v in extras.items():
        result[k] = ms_stats(v)
    stats = ms_stats(times)
    ps.log(
        f"  {label}: {len(times)} requests, p50 {ps.fmt(stats['p50_ms'], ',.1f')} ms, "
        f"p99 {ps.fmt(stats['p99_ms'], ',.1f')} ms"
        + (f" (capped at {cap_seconds:.0f} s)" if result["capped"] else "")
        + (f"; then {failed}" if failed else "")
    )
    if set(statuses) != {"200"}:
        ps.log(f"  {label}: statuses {statuses}")
    return result


# -- one size ------------------------------------------------------------------------------------


def contracts_per_year(size: int, years: int) -> int:
    return max(1, round(size / (years * COMMANDS_PER_CONTRACT)))


def generate(size: int, workdir: Path, history_dir: Path | None) -> dict[str, Any]:
    """The demo history of about ``size`` commands; from ``history_dir`` when an earlier run
    left it there (the generator is deterministic: same years, size and seed, same bytes)."""
    per_year = contracts_per_year(size, 6)
    name = f"history-{YEARS}-{per_year}.jsonl"
    path = (history_dir or workdir) / name
    if history_dir is not None and path.exists():
        ps.log(f"reusing {path} ({per_year:,} contracts a year, {YEARS})")
        seconds: float | None = None
    else:
        ps.log(f"generating a history of ~{size:,} events ({per_year:,} contracts a year)…")
        t = time.perf_counter()
        path.parent.mkdir(parents=True, exist_ok=True)
        command = [*ps.tcr_command(), "demo", "generate", "--years", YEARS]
        command += ["--contracts-per-year", str(per_year), "--out", str(path) + ".part"]
        subprocess.run(command, check=True, cwd=ps.REPO, stdout=subprocess.DEVNULL)
        Path(str(path) + ".part").rename(path)
        seconds = time.perf_counter() - t
    with path.open("rb") as f:
        commands = sum(1 for line in f if line.strip())
    return {
        "path": path,
        "contracts_per_year": per_year,
        "years": YEARS,
        "commands": commands,
        "seconds": round(seconds, 1) if seconds is not None else None,
        "reused": seconds is None,
    }


def load(path: Path, registry_url: str, bureau: str, finance: str, batch: int) -> dict[str, Any]:
    finance_file = path.with_name("finance-token")  # the demo's payouts are finance's to post
    finance_file.write_text(finance + "\n", "utf-8")
    finance_file.chmod(0o600)
    command = [*ps.tcr_command(), "demo", "load", str(path), "--registry", registry_url]
    command += ["--token", bureau, "--finance-token-file", str(finance_file)]
    command += ["--batch-size", str(batch), "--no-progress"]
    t = time.perf_counter()
    out = subprocess.run(command, check=True, cwd=ps.REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 1), "summary": out.stdout.strip(), "batch_size": batch}


def middle_instants(
    registry: httpx.Client,
    headers: dict[str, str],
    head: int,
    count: int,
    between: tuple[float, float],
) -> list[str]:
    """``recorded_at`` of ``count`` entries spread evenly over a range of the log (fractions)."""
    out: list[str] = []
    low, high = between
    for i in range(count):
        after = int(head * (low + (high - low) * i / max(count - 1, 1)))
        page = registry.get("/v1/events", params={"after": after, "limit": 1}, headers=headers)
        page.raise_for_status()
        out.append(page.json()["events"][0]["recorded_at"])
    return out


def measure_size(size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Everything of one size on its own databases and processes, all stopped on return."""
    result: dict[str, Any] = {"target_events": size}
    tokens_file = workdir / f"tokens-{size}.toml"
    tokens = {
        r: ps.add_token(tokens_file, f"bench-{r}", r)
        for r in ("bureau", "auditor", "finance", "service")
    }
    history = generate(size, workdir, args.history_dir)
    result["history"] = {k: v for k, v in history.items() if k != "path"}
    ps.log(f"  {history['commands']:,} commands (generated in {ps.fmt(history['seconds'])} s)")
    names = {role: ps.db_name("readscale", f"{size}_{role}") for role in ("registry", "subsidy")}
    result["databases"] = {**names, "kept": args.keep}
    started: list[ps.Process] = []
    with (
        ps.postgres_database(args.admin_url, names["registry"], args.keep) as registry_libpq,
        ps.postgres_database(args.admin_url, names["subsidy"], args.keep) as subsidy_libpq,
        contextlib.ExitStack() as clients,
    ):
        registry_url = ps.sqlalchemy_url(registry_libpq)
        subsidy_url = ps.sqlalchemy_url(subsidy_libpq)
        ps.create_registry_schema(registry_url)
        ps.create_subsidy_schema(subsidy_url)
        try:
            broker = ps.Broker(workdir / f"broker-{size}.log")
            started.append(broker)
            broker.wait_ready()
            registry = ps.registry_server(
                registry_url, tokens_file, workdir / f"registry-{size}.log", args.registry_workers
            )
            started.append(registry)
            registry.wait_healthy()
            reg = clients.enter_context(httpx.Client(base_url=registry.url, timeout=args.timeout))

            # 1. the history, through /v1/batch
            ps.log(f"loading {history['commands']:,} commands through /v1/batch…")
            meter = ps.CpuMeter({"registry": registry.pid}, [names["registry"]]).start()
            loaded = load(
                history["path"], registry.url, tokens["bureau"], tokens["finance"], args.batch_size
            )
            cpu = meter.stop()
            head = int(reg.get("/v1/health").json()["head"])
            loaded.update(events=head, events_per_s=round(head / loaded["seconds"], 1), cpu=cpu)
            loaded["other_users_cores"] = others_cores(cpu)
            result["load"] = loaded
            result["events"] = head
            ps.log(
                f"  log head {head:,} after {loaded['seconds']} s ({loaded['events_per_s']:,.0f}/s)"
            )
            if not args.keep and args.history_dir is None:
                history["path"].unlink()

            # 2. relay to Kafka, then the consumer's catch-up from empty
            env = {
                "TCR_TOKENS_FILE": str(tokens_file),
                "TCR_REGISTRY_DATABASE_URL": registry_url,
                "TCR_SUBSIDY_DATABASE_URL": subsidy_url,
                "TCR_KAFKA_BOOTSTRAP": broker.bootstrap,
                "TCR_KAFKA_TOPIC": TOPIC,
                "TCR_KAFKA_PARTITIONS": str(PARTITIONS),
                "TCR_KAFKA_GROUP": "bench-read-scale",
                "TCR_REGISTRY_URL": registry.url,
                "TCR_REGISTRY_TOKEN": tokens["service"],  # the subsidy feed's reader
            }
            result["relay"] = run_relay(started, workdir, size, env, registry_libpq, head, args)
            subsidy = ps.HttpService(
                "subsidy serve",
                ["subsidy", "serve"],
                workdir / f"subsidy-{size}.log",
                env=env,
                workers=args.subsidy_workers,
            )
            started.append(subsidy)
            subsidy.wait_healthy()
            fin = clients.enter_context(
                httpx.Client(
                    base_url=subsidy.url,
                    headers={"Authorization": f"Bearer {tokens['finance']}"},
                    timeout=args.timeout,
                )
            )
            result["catch_up"] = run_catch_up(
                started, workdir, size, env, fin, head, names, registry.pid, subsidy.pid, args
            )
            consumer = next(p for p in started if p.name == "subsidy consume")

            # 3. the queries
            meter = ps.CpuMeter(
                {
                    "subsidy serve": subsidy.pid,
                    "subsidy consume": consumer.pid,
                    "registry": registry.pid,
                    "relay": next(p for p in started if p.name == "relay").pid,
                    "broker": broker.pid,
                },
                list(names.values()),
            ).start()
            result["queries"] = run_queries(reg, fin, tokens, head, args)
            cpu = meter.stop()
            result["queries_cpu"] = cpu
            result["queries_other_users_cores"] = others_cores(cpu)
            ps.log("  " + ps.cpu_line(cpu))
            hwm = ps.vm_hwm_kib(consumer.pid)
            result["consumer_peak_rss_mib_at_end"] = round(hwm / 1024, 1) if hwm else None
            # With one worker the finance API is this very process (no supervisor).
            hwm = ps.vm_hwm_kib(subsidy.pid)
            result["finance_api_peak_rss_mib"] = round(hwm / 1024, 1) if hwm else None
            for process in started:
                process.check()
            result["logs"] = {
                p.name: {
                    "warnings": p.log_text().count(" WARNING "),
                    "errors": p.log_text().count(" ERROR "),
                    "tracebacks": p.log_text().count("Traceback"),
                }
                for p in started
            }
        finally:
            for process in reversed(started):
                process.stop()
    return result


def run_relay(
    started: list[ps.Process],
    workdir: Path,
    size: int,
    env: dict[str, str],
    registry_libpq: str,
    head: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Start ``tcr relay`` and wait until its saved position reaches the head."""
    ps.log("relay: publishing the log to Kafka…")
    relay = ps.Process(
        "relay", [*ps.tcr_command(), "relay"], workdir / f"relay-{size}.log", env=env
    )
    started.append(relay)
    t = time.perf_counter()
    deadline = time.monotonic() + args.stage_timeout
    position = None
    while time.monotonic() < deadline:
        relay.check()
        position = relay_position(registry_libpq)
        if position is not None and position >= head:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"relay at {position} of {head} after {args.stage_timeout:.0f} s")
    seconds = time.perf_counter() - t
    ps.log(f"  published {head:,} in {seconds:.1f} s ({head / seconds:,.0f}/s)")
    return {"seconds": round(seconds, 1), "events_per_s": round(head / seconds, 1)}


def run_catch_up(
    started: list[ps.Process],
    workdir: Path,
    size: int,
    env: dict[str, str],
    fin: httpx.Client,
    head: int,
    names: dict[str, str],
    registry_pid: int,
    subsidy_pid: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Start ``tcr subsidy consume`` on the empty store; time until finance sees the head."""
    ps.log(f"consumer: catching up {head:,} events from empty…")
    consumer = ps.Process(
        "subsidy consume",
        [*ps.tcr_command(), "subsidy", "consume"],
        workdir / f"consume-{size}.log",
        env=env,
    )
    t = time.perf_counter()
    started.append(consumer)
    meter = ps.CpuMeter(
        {"subsidy consume": consumer.pid, "registry": registry_pid, "subsidy serve": subsidy_pid},
        list(names.values()),
    ).start()
    deadline = time.monotonic() + args.stage_timeout
    last_report = time.monotonic()
    position = 0
    while time.monotonic() < deadline:
        consumer.check()
        with contextlib.suppress(httpx.HTTPError):
            position = applied(fin)
        if position >= head:
            break
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            ps.log(
                f"  applied {position:,}/{head:,} ({position / (time.perf_counter() - t):,.0f}/s)"
            )
        time.sleep(0.1)
    else:
        raise RuntimeError(f"consumer at {position} of {head} after {args.stage_timeout:.0f} s")
    seconds = time.perf_counter() - t
    cpu = meter.stop()
    hwm = ps.vm_hwm_kib(consumer.pid)
    waited = wait_idle(consumer.pid)
    ps.log(
        f"  caught up in {seconds:.1f} s ({head / seconds:,.0f}/s), consumer peak RSS "
        f"{(hwm or 0) / 1024:,.0f} MiB; idle after {waited} s more"
    )
    ps.log("  " + ps.cpu_line(cpu))
    return {
        "events": head,
        "seconds": round(seconds, 1),
        "events_per_s": round(head / seconds, 1),
        "consumer_peak_rss_mib": round(hwm / 1024, 1) if hwm else None,
        "seconds_until_consumer_idle": waited,
        "cpu": cpu,
        "other_users_cores": others_cores(cpu),
    }


def run_queries(
    reg: httpx.Client,
    fin: httpx.Client,
    tokens: dict[str, str],
    head: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    n, cap = args.requests, args.cap_seconds
    auditor = {"Authorization": f"Bearer {tokens['auditor']}"}
    bureau = {"Authorization": f"Bearer {tokens['bureau']}", "Content-Type": "application/json"}
    out: dict[str, Any] = {}
    listing = {"year": YEAR, "limit": 1000}

    ps.log("queries: baselines (health), then finance and the registry's proofs…")
    out["baseline_finance_health"] = timed_series(
        "finance /v1/health", lambda: fin.get("/v1/health"), n, cap
    )
    out["baseline_registry_health"] = timed_series(
        "registry /v1/health", lambda: reg.get("/v1/health"), n, cap
    )

    t = time.perf_counter()
    first = fin.get("/v1/entitlements", params=listing)
    first.raise_for_status()
    out["entitlements_first_after_catch_up"] = {
        "ms": round((time.perf_counter() - t) * 1000, 1),
        "bytes": len(first.content),
        "rows": rows_of(first.json()),
    }
    ps.log(
        f"  first entitlements after catch-up: {out['entitlements_first_after_catch_up']['ms']} ms"
    )
    out["entitlements_warm"] = timed_series(
        "entitlements warm", lambda: fin.get("/v1/entitlements", params=listing), n, cap
    )

    writes = iter(requests_for(ps.run_tag(), 0, n))

    def write_one() -> dict[str, float]:
        _, path, body = next(writes)
        t = time.perf_counter()
        answer = reg.post(path, content=body, headers=bureau)
        if answer.status_code != 201:
            raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text[:300]}")
        committed = time.perf_counter()
        if not wait_applied(fin, int(answer.json()["position"]), args.timeout, 0.005):
            raise RuntimeError(f"position {answer.json()['position']} never applied")
        return {"write_ms": committed - t, "commit_to_applied_ms": time.perf_counter() - committed}

    out["entitlements_after_write"] = timed_series(
        "entitlements after one new event",
        lambda: fin.get("/v1/entitlements", params=listing),
        n,
        cap,
        before=write_one,
    )

    instants = middle_instants(reg, auditor, head, n, args.instants_between)
    out["middle_instants"] = [instants[0], instants[-1]]
    as_of = iter(instants)
    out["entitlements_as_of"] = timed_series(
        "entitlements as_of the middle",
        lambda: fin.get("/v1/entitlements", params={**listing, "as_of": next(as_of)}),
        n,
        cap,
    )
    rows = fin.get("/v1/entitlements", params=listing).json()["entitlements"]
    coded = [r for r in rows if r["category"] != "broker"] or rows
    beneficiary = coded[len(coded) // 2]["beneficiary"]
    out["beneficiary"] = beneficiary
    out["entitlements_one_beneficiary"] = timed_series(
        "one beneficiary",
        lambda: fin.get(f"/v1/entitlements/{beneficiary}", params={"year": YEAR}),
        n,
        cap,
    )

    checkpoint = reg.post("/v1/checkpoints", headers=auditor)
    checkpoint.raise_for_status()
    tree_size = int(checkpoint.json()["tree_size"])
    proof_head = int(reg.get("/v1/health").json()["head"])
    out["proof_tree_size"] = tree_size
    out["proof_position"] = proof_head
    out["proof_inclusion"] = timed_series(
        "inclusion proof",
        lambda: reg.get(
            "/v1/proofs/inclusion",
            params={"position": proof_head, "tree_size": tree_size},
            headers=auditor,
        ),
        n,
        cap,
    )
    out["proof_consistency"] = timed_series(
        "consistency proof",
        lambda: reg.get(
            "/v1/proofs/consistency",
            params={"from": tree_size // 2, "to": tree_size},
            headers=auditor,
        ),
        n,
        cap,
    )
    # Last: today one revisions request can outlast the client's timeout, and the server then
    # goes on computing it, which would disturb any figure measured after it.
    since = iter(instants)
    out["revisions_since"] = timed_series(
        "revisions since the middle",
        lambda: fin.get("/v1/revisions", params={**listing, "since": next(since)}),
        n,
        cap,
    )
    # The page a client gets by default (100 revisions); the figure above is a page of 1,000.
    since_again = iter(instants)
    out["revisions_since_default_page"] = timed_series(
        "revisions since the middle, default page",
        lambda: fin.get("/v1/revisions", params={"year": YEAR, "since": next(since_again)}),
        n,
        cap,
    )
    return out


# -- end-to-end lag, goals, table ----------------------------------------------------------------


def run_e2e(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """``bench/end_to_end_lag.py`` with short options, as a subprocess of our process group
    (a Ctrl-C reaches it too, and it cleans up after itself)."""
    out = workdir / "e2e.json"
    command = [sys.executable, str(Path(__file__).with_name("end_to_end_lag.py"))]
    command += ["--rate", str(args.e2e_rate), "--duration", str(args.e2e_duration)]
    command += ["--warmup", "5", "--baseline-seconds", "5", "--out", str(out)]
    ps.log(f"end-to-end lag: {' '.join(command[1:])}")
    process = subprocess.Popen(
        command,
        cwd=ps.REPO,
        stdout=subprocess.DEVNULL,
        # A shell's background job starts with SIGINT ignored, and a child would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        code = process.wait()
    except BaseException:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
        raise
    if code != 0 or not out.exists():
        return {"error": f"end_to_end_lag.py exited with {code}", "command": command[1:]}
    e2e = orjson.loads(out.read_bytes())
    lag = e2e["run"]["lag"]
    ps.log(f"  lag p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms")
    return {
        "command": command[1:-2],
        "rate": e2e["rate"],
        "duration_s": e2e["duration_s"],
        "lag": lag,
        "baseline_kafka_hop": e2e["baseline_kafka_hop"],
        "achieved_events_per_s": e2e["run"]["achieved_events_per_s"],
        "caught_up": e2e["caught_up"],
        "cpu": e2e.get("cpu"),
    }


def _p99(size_result: dict[str, Any], figure: str) -> float | None:
    """A figure's p99 in ms; when its first request already timed out, that request's time
    (a lower bound, so the goal reads as not met rather than unmeasured)."""
    series = size_result.get("queries", {}).get(figure, {})
    if series.get("p99_ms") is not None:
        return float(series["p99_ms"])
    if series.get("failed"):
        return float(series["seconds_spent"]) * 1000
    return None


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of issue 9 against the figures of the largest (and smallest) size measured."""
    done = {int(k): v for k, v in report["sizes"].items() if "queries" in v}
    out: list[dict[str, Any]] = []
    if not done:
        return out
    large, small = done[max(done)], done[min(done)]
    at = f"at {large['events']:,} events"

    def check(
        goal: str, value: float | None, limit: float, unit: str, higher: bool = False
    ) -> None:
        met = None if value is None else (value >= limit if higher else value <= limit)
        out.append(
            {
                "goal": goal,
                "measured": None if value is None else f"{value:,.1f} {unit}",
                "met": met,
            }
        )

    check(
        f"after-write p99 ≤ {GOALS['after_write_p99_ms']:.0f} ms {at}",
        _p99(large, "entitlements_after_write"),
        GOALS["after_write_p99_ms"],
        "ms",
    )
    if max(done) != min(done):
        big = _p99(large, "entitlements_after_write")
        little = _p99(small, "entitlements_after_write")
        growth = big / little if big is not None and little else None
        check(
            f"after-write p99 {max(done):,} ≤ {GOALS['after_write_growth']}× {min(done):,}",
            growth,
            GOALS["after_write_growth"],
            "×",
        )
    for figure, label, key in (
        ("entitlements_as_of", "as_of", "as_of_p99_ms"),
        ("revisions_since", "revisions", "revisions_p99_ms"),
        ("proof_inclusion", "inclusion proof", "proof_p99_ms"),
        ("proof_consistency", "consistency proof", "proof_p99_ms"),
    ):
        check(f"{label} p99 ≤ {GOALS[key]:.0f} ms {at}", _p99(large, figure), GOALS[key], "ms")
    check(
        f"catch-up ≥ {GOALS['catch_up_events_per_s']:,.0f} events/s {at}",
        large.get("catch_up", {}).get("events_per_s"),
        GOALS["catch_up_events_per_s"],
        "events/s",
        higher=True,
    )
    return out


QUERY_ROWS = (
    ("finance /v1/health (baseline)", "baseline_finance_health"),
    ("registry /v1/health (baseline)", "baseline_registry_health"),
    ("entitlements warm", "entitlements_warm"),
    ("entitlements after one new event", "entitlements_after_write"),
    ("entitlements as_of the middle", "entitlements_as_of"),
    ("revisions since the middle", "revisions_since"),
    ("revisions, default page (100)", "revisions_since_default_page"),
    ("one beneficiary", "entitlements_one_beneficiary"),
    ("inclusion proof (auditor)", "proof_inclusion"),
    ("consistency proof (auditor)", "proof_consistency"),
)


def table(report: dict[str, Any]) -> str:
    sizes = report["sizes"]
    headers = ["", *(f"{int(k):,}" for k in sizes)]

    def cells(get: Callable[[dict[str, Any]], str]) -> list[str]:
        out = []
        for r in sizes.values():
            try:
                out.append(get(r))
            except (KeyError, TypeError, ZeroDivisionError):
                out.append("–")
        return out

    def series(figure: str) -> Callable[[dict[str, Any]], str]:
        def get(r: dict[str, Any]) -> str:
            s = r["queries"][figure]
            if not s["count"] and s.get("failed"):
                return f"none: {s['failed']}"
            capped = "*" if s["capped"] else ""
            p50, p99 = ps.fmt(s["p50_ms"], ",.1f"), ps.fmt(s["p99_ms"], ",.1f")
            return f"{p50} / {p99} ({s['count']}{capped})"

        return get

    def ratio(figure: str) -> Callable[[dict[str, Any]], str]:
        def get(r: dict[str, Any]) -> str:
            q = r["queries"]
            return f"{q[figure]['p50_ms'] / q['baseline_finance_health']['p50_ms']:,.0f}×"

        return get

    def after_write_wait(r: dict[str, Any]) -> str:
        s = r["queries"]["entitlements_after_write"]["commit_to_applied_ms"]
        return f"{ps.fmt(s['p50_ms'], ',.1f')} / {ps.fmt(s['p99_ms'], ',.1f')}"

    def rss(r: dict[str, Any]) -> str:
        return (
            f"{r['catch_up']['consumer_peak_rss_mib']:,.0f} / "
            f"{r['consumer_peak_rss_mib_at_end']:,.0f}"
        )

    def others(r: dict[str, Any]) -> str:
        phases = (r["load"], r["catch_up"], {"other_users_cores": r["queries_other_users_cores"]})
        return " / ".join(f"{p['other_users_cores']:.2f}" for p in phases)

    def timed(phase: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: f"{r[phase]['seconds']:,.0f} ({r[phase]['events_per_s']:,.0f})"

    def size_of(figure: str) -> Callable[[dict[str, Any]], str]:
        def get(r: dict[str, Any]) -> str:
            response = r["queries"][figure]["response"]
            return f"{response['bytes']:,} / {ps.fmt(response['rows'])}"

        return get

    def first(r: dict[str, Any]) -> str:
        return f"{r['queries']['entitlements_first_after_catch_up']['ms']:,.1f}"

    blank = [""] * len(sizes)
    rows = [
        ["events in the log", *cells(lambda r: f"{r['events']:,}")],
        [
            "  contracts a year (6 years)",
            *cells(lambda r: f"{r['history']['contracts_per_year']:,}"),
        ],
        ["history generated in s", *cells(lambda r: ps.fmt(r["history"]["seconds"], ",.0f"))],
        ["load s (events/s)", *cells(timed("load"))],
        ["relay to Kafka s (events/s)", *cells(timed("relay"))],
        ["catch-up from empty s (events/s)", *cells(timed("catch_up"))],
        ["consumer peak RSS MiB (catch-up / end)", *cells(rss)],
        ["finance API peak RSS MiB", *cells(lambda r: f"{r['finance_api_peak_rss_mib']:,.0f}")],
        ["other users' cores: load / catch-up / queries", *cells(others)],
        ["ms p50 / p99 (requests; * = capped)", *blank],
        ["first entitlements after catch-up", *cells(first)],
    ]
    for label, figure in QUERY_ROWS:
        rows.append([label, *cells(series(figure))])
        if figure == "entitlements_after_write":
            rows.append(["  post → applied, before it", *cells(after_write_wait)])
    rows.append(["p50 ÷ finance health p50", *blank])
    for label, figure in QUERY_ROWS[2:8]:
        rows.append([f"  {label}", *cells(ratio(figure))])
    rows.append(["response bytes / rows", *blank])
    for label, figure in (
        ("  entitlements (limit=1000)", "entitlements_warm"),
        ("  entitlements as_of", "entitlements_as_of"),
        ("  revisions", "revisions_since"),
        ("  one beneficiary", "entitlements_one_beneficiary"),
    ):
        rows.append([label, *cells(size_of(figure))])
    m = report["machine"]
    lines = [
        f"Read side at scale — PostgreSQL, commit {report['commit'][:12]}, {m['cpus']} cores "
        f"({m.get('cpu_model', '?')}), load average at start "
        + " ".join(f"{x:.2f}" for x in m["load_average_at_start"]),
        "",
        ps.render_table(headers, rows),
    ]
    for k, r in sizes.items():
        if "error" in r:
            lines.append(f"{int(k):,} events: FAILED: {r['error']}")
    e2e = report.get("end_to_end")
    if e2e:
        if "error" in e2e:
            lines.append(f"\nend-to-end lag: {e2e['error']}")
        else:
            lines.append(
                f"\nend-to-end lag (bench/end_to_end_lag.py, {e2e['rate']:,.0f} events/s for "
                f"{e2e['duration_s']:.0f} s on its own fresh stack): "
                f"p50 {e2e['lag']['p50_ms']} ms, "
                f"p99 {e2e['lag']['p99_ms']} ms (one raw Kafka hop p99 "
                f"{e2e['baseline_kafka_hop']['p99_ms']} ms); goal p99 ≤ 1,000 ms"
            )
    lines.append("\ngoals (issue 9):")
    for g in report["goals"]:
        verdict = {True: "MET", False: "NOT MET", None: "–"}[g["met"]]
        lines.append(f"  {g['goal']:<52} {ps.fmt(g['measured']):>18}  {verdict}")
    return "\n".join(lines)


def parse_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not two fractions LOW,HIGH: {text}") from None
    if not 0 <= low <= high < 1:
        raise argparse.ArgumentTypeError("need 0 <= LOW <= HIGH < 1")
    return low, high


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text}") from None
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError("sizes must be at least 100 events")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Read side at scale (issue 9): load demo histories of each size into a PostgreSQL "
            "registry, run relay, subsidy consumer and finance API as real processes, and time "
            "catch-up, finance queries (warm, after a write, as_of, revisions, one beneficiary) "
            "and the registry's Merkle proofs."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[100_000, 1_000_000],
        help="approximate log sizes in events, comma-separated (the real counts are reported)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast check: sizes 20000,100000, 20 requests, 20 s cap, 10 s of end-to-end lag",
    )
    parser.add_argument(
        "--instants-between",
        type=parse_range,
        default=(0.7, 0.8),
        help=(
            "where in the log (fractions of its positions) the as_of and since instants lie; "
            "the demo records its years in order, and year 2024's part of the log is about "
            "0.63-0.97 of it (the middle of the whole log is still 2023: no 2024 entitlement)"
        ),
    )
    parser.add_argument("--requests", type=int, default=50, help="timed requests per figure")
    parser.add_argument(
        "--cap-seconds",
        type=float,
        default=60,
        help="stop a figure's requests once they took this long together (at least one is made)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds one HTTP request may take; a request that takes longer ends its figure",
    )
    parser.add_argument(
        "--stage-timeout",
        type=float,
        default=1800,
        help="seconds the relay, and then the consumer, may take to reach the head",
    )
    parser.add_argument(
        "--registry-workers", type=int, default=2, help="workers of `tcr registry serve`"
    )
    parser.add_argument(
        "--subsidy-workers", type=int, default=1, help="workers of `tcr subsidy serve`"
    )
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="commands per /v1/batch of `tcr demo load`"
    )
    parser.add_argument("--no-e2e", action="store_true", help="skip bench/end_to_end_lag.py")
    parser.add_argument(
        "--e2e-rate", type=float, default=500, help="events/s of the end-to-end lag run"
    )
    parser.add_argument(
        "--e2e-duration", type=float, default=20, help="seconds of the end-to-end lag run"
    )
    parser.add_argument(
        "--admin-url",
        default=ps.DEFAULT_ADMIN_URL,
        help="PostgreSQL server where fresh databases are created (and dropped)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the databases, history files and service logs (names and path printed)",
    )
    parser.add_argument(
        "--history-dir",
        type=Path,
        help=(
            "keep generated histories in this directory and reuse them on later runs "
            "(generating 1,000,000 events takes minutes)"
        ),
    )
    parser.add_argument("--out", help="JSON result file (default bench/results/read_scale-*.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.requests, args.cap_seconds = [20_000, 100_000], 20, 20.0
        args.e2e_duration = 10.0
    logging.basicConfig(level=logging.WARNING, format=ps.LOG_FORMAT)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the broker's start-up refusals
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in background

    workdir = Path(tempfile.mkdtemp(prefix="tcr-read-scale-"))
    # The registry's checkpoint signing key, in the run's own directory rather than var/.
    os.environ["TCR_SIGNING_KEY_FILE"] = str(workdir / "registry-signing-key.pem")
    report: dict[str, Any] = {
        "benchmark": "read_scale",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": ps.git_commit(),
        "machine": ps.machine(),
        "store": "postgresql",
        "parameters": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in ("admin_url", "out")
        },
        "year": YEAR,
        "goals_issue_9": GOALS,
        "sizes": {},
    }
    orjson.dumps(report)  # fail now, not after half an hour, if something cannot be written
    interrupted = False
    try:
        for size in args.sizes:
            ps.log(f"== {size:,} events ==")
            try:
                report["sizes"][str(size)] = measure_size(size, args, workdir)
            except Exception as exc:  # record it, go on with the next size
                ps.log(f"{size:,} events failed: {type(exc).__name__}: {exc}")
                report["sizes"][str(size)] = {"error": f"{type(exc).__name__}: {exc}"}
        if not args.no_e2e:
            report["end_to_end"] = run_e2e(args, workdir)
    except (KeyboardInterrupt, Stop):
        interrupted = True
        ps.log("interrupted: every process and database of the run was stopped and dropped")
    finally:
        if args.keep:
            ps.log(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report["interrupted"] = interrupted
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    report["load_average_at_end"] = os.getloadavg()
    report["goals"] = goals(report)
    path = ps.write_results("read_scale", report, args.out)
    print(table(report))
    print(f"\nresults: {path}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
