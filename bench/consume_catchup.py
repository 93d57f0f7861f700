#!/usr/bin/env python3
"""`tcr subsidy consume` catching up from empty, this checkout against another, pair by pair.

The consumer as it runs in production: its own process, reading the registry's HTTP feed
(``tcr registry serve --workers 2``) into a fresh PostgreSQL store, timed from its start until
the store's applied head is the registry's. The registry database is one kept by an earlier
run (``read_scale.py --keep``, or ``subsidy_catchup.py --registry-db``): loading 1M events
takes five minutes, and this compares consumers, not loads. Every run gets a fresh subsidy
database, whose schema the checkout being run creates.

With ``--baseline CHECKOUT`` (another clone or ``git worktree``, set up with ``make setup``)
the runs alternate between the two, the baseline first in odd pairs and last in even ones, so
that the machine's drift falls on both; each pair's ratio is reported, and the median. The
registry served is always this checkout's: only the consumer differs. Run with the project's
virtualenv::

    .venv/bin/python bench/consume_catchup.py --registry-db tcr_readscale_123_1000000_registry
    git worktree add ../before <commit> && (cd ../before && make setup)
    .venv/bin/python bench/consume_catchup.py --registry-db NAME --baseline ../before --pairs 3

Nothing else should run on the machine meanwhile (a run of 1M events takes about 100 s here).
The table goes to stdout, progress to stderr, every figure to bench/results/ (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pipeline_support as ps
import psycopg

from services.subsidy.projector import CATCH_UP_RUN


def checkout_python(checkout: Path) -> str:
    python = checkout / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{checkout} has no .venv: run `make setup` there first")
    return str(python)


def consumer_run(
    checkout: Path,
    registry: ps.HttpService,
    token: str,
    head: int,
    log_path: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One catch-up from empty by ``checkout``'s consumer; its figures."""
    python = checkout_python(checkout)
    name = ps.db_name("consume", "subsidy")
    with ps.postgres_database(args.admin_url, name) as libpq:
        url = ps.sqlalchemy_url(libpq)
        schema = f"from services.subsidy.store import EntryStore; EntryStore({url!r}).close()"
        subprocess.run([python, "-c", schema], cwd=checkout, check=True)
        env = {
            "TCR_SUBSIDY_DATABASE_URL": url,
            "TCR_REGISTRY_URL": registry.url,
            "TCR_REGISTRY_TOKEN": token,
            # Catching up comes first; Kafka is not asked until the store is at the head.
            "TCR_KAFKA_BOOTSTRAP": "127.0.0.1:9",
            "PYTHONPATH": str(checkout),
        }
        command = [python, "-m", "services.cli", "subsidy", "consume"]
        started = time.perf_counter()
        consumer = ps.Process("subsidy consume", command, log_path, env=env, cwd=checkout)
        position, last_report = 0, started
        try:
            with psycopg.connect(libpq, autocommit=True) as conn:
                while position < head:
                    consumer.check()
                    if time.perf_counter() - started > args.timeout:
                        raise RuntimeError(f"at {position:,} of {head:,} after {args.timeout} s")
                    time.sleep(0.05)
                    row = conn.execute("SELECT position FROM subsidy_head").fetchone()
                    position = int(row[0]) if row else 0
                    if time.perf_counter() - last_report >= 15:
                        last_report = time.perf_counter()
                        ps.log(f"    applied {position:,} of {head:,}")
            seconds = time.perf_counter() - started
            peak = ps.vm_hwm_kib(consumer.pid)
            cpu = ps.process_cpu_seconds(consumer.pid)
        finally:
            consumer.stop()
    return {
        "seconds": round(seconds, 2),
        "events_per_s": round(head / seconds, 1),
        "consumer_cpu_s": round(cpu, 1) if cpu is not None else None,
        "consumer_peak_rss_mib": round(peak / 1024, 1) if peak else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--registry-db",
        required=True,
        help="a kept PostgreSQL registry database holding the log (read_scale.py --keep)",
    )
    parser.add_argument(
        "--baseline", type=Path, help="another checkout (with .venv) whose consumer to pair with"
    )
    parser.add_argument("--pairs", type=int, default=3, help="runs of each checkout")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take")
    parser.add_argument("--admin-url", default=ps.DEFAULT_ADMIN_URL)
    parser.add_argument("--out", help="JSON result file (default bench/results/consume-*.json)")
    args = parser.parse_args()

    registry_libpq = f"{args.admin_url.rsplit('/', 1)[0]}/{args.registry_db}"
    registry_url = ps.sqlalchemy_url(registry_libpq)
    head = ps.registry_head(registry_url)
    if not head:
        raise SystemExit(f"{args.registry_db} holds no log")
    sides = {"this": ps.REPO}
    if args.baseline is not None:
        sides = {"baseline": args.baseline.resolve(), **sides}
    report: dict[str, Any] = {
        "machine": ps.machine(),
        "commit": ps.git_commit(),
        "baseline": str(args.baseline) if args.baseline else None,
        "baseline_commit": _commit(args.baseline) if args.baseline else None,
        "registry_db": args.registry_db,
        "events": head,
        "catch_up_run": CATCH_UP_RUN,
        "runs": [],
    }
    ps.log(f"{head:,} events in {args.registry_db}; {args.pairs} pair(s) of {', '.join(sides)}")
    workdir = Path(tempfile.mkdtemp(prefix="tcr-consume-"))
    tokens = workdir / "tokens.toml"
    token = ps.add_token(tokens, "bench-feed-reader", "service")
    registry = ps.registry_server(registry_url, tokens, workdir / "registry.log", workers=2)
    try:
        registry.wait_healthy()
        for pair in range(1, args.pairs + 1):
            order = list(sides.items())
            if pair % 2 == 0:
                order.reverse()
            for side, checkout in order:
                ps.log(f"pair {pair}: {side} ({checkout})")
                log_path = workdir / f"consume-{pair}-{side}.log"
                run = consumer_run(checkout, registry, token, head, log_path, args)
                run.update(pair=pair, side=side)
                report["runs"].append(run)
                ps.log(f"  {run['events_per_s']:,.0f} events/s, {run['seconds']} s")
    finally:
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.baseline is not None:
        ratios = pair_ratios(report["runs"])
        report["ratios"] = [round(x, 3) for x in ratios]
        report["median_ratio"] = round(statistics.median(ratios), 3)
    print(render(report, list(sides)))
    path = ps.write_results(f"consume-{time.strftime('%Y%m%d-%H%M%S')}", report, args.out)
    print(f"\nresults: {path}")


def pair_ratios(runs: list[dict[str, Any]]) -> list[float]:
    """This checkout's rate over the baseline's, pair by pair."""
    rate = {(r["pair"], r["side"]): r["events_per_s"] for r in runs}
    pairs = sorted({r["pair"] for r in runs})
    return [rate[(p, "this")] / rate[(p, "baseline")] for p in pairs]


def render(report: dict[str, Any], sides: list[str]) -> str:
    runs = report["runs"]
    rows = []
    for side in sides:
        mine = [r for r in runs if r["side"] == side]
        rates = [r["events_per_s"] for r in mine]
        rows.append(
            [
                side,
                " / ".join(f"{x:,.0f}" for x in rates),
                f"{statistics.median(rates):,.0f}",
                f"{max(r['consumer_peak_rss_mib'] or 0 for r in mine):,.0f}",
            ]
        )
    if "ratios" in report:
        rows.append(
            [
                "this ÷ baseline",
                " / ".join(f"{x:.2f}" for x in report["ratios"]),
                f"{report['median_ratio']:.2f}",
                "",
            ]
        )
    title = f"`tcr subsidy consume` catch-up from empty, {report['events']:,} events"
    headers = ["", "events/s, each pair", "median", "peak RSS MiB"]
    return f"{title}\n\n{ps.render_table(headers, rows)}"


def _commit(checkout: Path) -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True
        ).stdout.strip()
    return "unknown"


if __name__ == "__main__":
    main()
