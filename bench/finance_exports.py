#!/usr/bin/env python3
"""Finance's exports at scale (issue 12): time and peak memory of a year's XLSX and CSV.

1. ``tcr demo generate`` writes a history of about ``--events`` commands (years 2020–2025);
2. an in-process registry on a SQLite file stores it through its batch writer, as the bureau;
3. its log, read in pages, fills a subsidy store on a SQLite file (``EntryStore.add``);
4. ``Subsidy.xlsx(year)`` and ``Subsidy.csv(year)`` (both sheets) are read to their last byte,
   ``--runs`` times each: wall and CPU time of each; then once more under ``tracemalloc`` for
   the peak of Python allocations (the temporary file openpyxl writes rows to is on disk).

Goal: the XLSX of a year in ≤ 2 s. CPU time is measured in-process; the machine is shared, so
wall time is reported beside it.

    .venv/bin/python bench/finance_exports.py                   # ~100,000 events
    .venv/bin/python bench/finance_exports.py --events 20000 --runs 1

The table goes to stdout, progress to stderr, every figure to
``bench/results/finance_exports-<timestamp>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pipeline_support as ps

from services.common.policy.loader import load_schedule
from services.demo.load import FINANCE_OPS
from services.registry.api.batch import batch_args
from services.registry.application import Registry
from services.registry.commands import Command, Principal
from services.subsidy.application import Subsidy
from services.subsidy.store import EntryStore

GOAL_SECONDS = 2.0
YEARS = "2020-2025"
COMMANDS_PER_CONTRACT = 4.4  # what `tcr demo generate` writes per contract (bench/read_scale.py)
BATCH = 1000
PAGE = 5000


def generate(events: int, folder: Path) -> Path:
    per_year = max(1, round(events / (6 * COMMANDS_PER_CONTRACT)))
    path = folder / "history.jsonl"
    ps.log(f"generating ~{events:,} commands ({per_year:,} contracts a year)…")
    command = [*ps.tcr_command(), "demo", "generate", "--years", YEARS]
    command += ["--contracts-per-year", str(per_year), "--out", str(path)]
    subprocess.run(command, check=True, cwd=ps.REPO, stdout=subprocess.DEVNULL)
    return path


def built(work: Path, events: int) -> dict[str, Any]:
    """The stores in ``work``: kept ones as they are (with what building them said), else
    built from a newly generated history."""
    kept = work / "history.json"
    if kept.exists() and (work / "subsidy.db").exists():
        ps.log(f"measuring the stores kept in {work}")
        history: dict[str, Any] = orjson.loads(kept.read_bytes())
        return history
    registry, store = f"sqlite:///{work / 'registry.db'}", f"sqlite:///{work / 'subsidy.db'}"
    history = store_history(generate(events, work), registry, store)
    kept.write_bytes(orjson.dumps(history))
    return history


def store_history(history: Path, registry_url: str, store_url: str) -> dict[str, Any]:
    """The history into the registry, then the registry's log into the subsidy store."""
    commands = [orjson.loads(line) for line in history.read_bytes().splitlines() if line.strip()]
    registry = Registry(registry_url)
    registry.start()
    store = EntryStore(store_url, load_schedule())
    try:
        t = time.perf_counter()
        for principal, batch in _batches(commands):
            registry.submit(principal, batch, batch=True).result(120)  # a refusal raises
        stored = time.perf_counter() - t
        ps.log(f"registry: {len(commands):,} commands in {stored:.1f} s")
        t, after = time.perf_counter(), 0
        while True:
            page = registry.read_log(after, PAGE)["events"]
            if not page:
                break
            store.add(page)
            after = page[-1]["position"]
        applied = time.perf_counter() - t
        ps.log(f"subsidy store: {after:,} events applied in {applied:.1f} s")
    finally:
        store.close()
        registry.close()
    return {"commands": len(commands), "events": after, "registry_s": stored, "store_s": applied}


def _batches(commands: list[dict[str, Any]]) -> Iterator[tuple[Principal, list[Command]]]:
    """The history's commands in batches of at most ``BATCH``, each posted by the bureau or,
    for the payouts the demo records, by finance, as ``tcr demo load`` posts them."""
    bureau, finance = Principal("bureau", "bureau"), Principal("finance", "finance")
    batch: list[Command] = []
    who = bureau
    for c in commands:
        by = finance if c["op"] in FINANCE_OPS else bureau
        if batch and (by is not who or len(batch) == BATCH):
            yield who, batch
            batch = []
        who = by
        batch.append(Command(c["op"], batch_args(c["op"], c["body"])))
    if batch:
        yield who, batch


def read_through(chunks: Iterator[bytes]) -> int:
    return sum(len(chunk) for chunk in chunks)


def measure(name: str, export: Callable[[], Iterator[bytes]], runs: int) -> dict[str, Any]:
    walls, cpus, size = [], [], 0
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        size = read_through(export())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    tracemalloc.start()
    read_through(export())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figure = {
        "bytes": size,
        "wall_s_best": round(min(walls), 3),
        "cpu_s_best": round(min(cpus), 3),
        "wall_s": [round(w, 3) for w in walls],
        "peak_python_mib": round(peak / 2**20, 1),
    }
    ps.log(f"{name}: {figure}")
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument(
        "--store",
        help="a folder to keep the stores in: built there when it has none, else measured "
        "as it is (the history is not generated again)",
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.store:
            work = Path(args.store)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="finance-exports-")))
        history = built(work, args.events)
        store = EntryStore(f"sqlite:///{work / 'subsidy.db'}", load_schedule())
        try:
            subsidy = Subsidy(store, store.schedule)
            rows = sum(1 for _ in subsidy.export(args.year).rows)
            claims = sum(len(r.claims) for r in subsidy.export(args.year).rows)
            year = args.year
            figures = {
                "xlsx": measure("xlsx", lambda: subsidy.xlsx(year), args.runs),
                "csv": measure("csv", lambda: subsidy.csv(year), args.runs),
                "csv_contracts": measure(
                    "csv contracts", lambda: subsidy.csv(year, sheet="contracts"), args.runs
                ),
            }
        finally:
            store.close()
    report = {
        "history": history,
        "year": args.year,
        "entitlement_rows": rows,
        "contract_rows": claims,
        "goal_xlsx_s": GOAL_SECONDS,
        "figures": figures,
        "machine": ps.machine(),
        "commit": ps.git_commit(),
    }
    out = ps.write_results("finance_exports", report, args.out)
    print(table(report))
    ps.log(f"written to {out}")
    return 0


def table(report: dict[str, Any]) -> str:
    lines = [
        f"history: {report['history']['events']:,} events; year {report['year']}: "
        f"{report['entitlement_rows']:,} entitlements, {report['contract_rows']:,} contract rows",
        f"{'export':<16}{'bytes':>12}{'wall s':>10}{'cpu s':>10}{'peak MiB':>10}",
    ]
    for name, f in report["figures"].items():
        lines.append(
            f"{name:<16}{f['bytes']:>12,}{f['wall_s_best']:>10}{f['cpu_s_best']:>10}"
            f"{f['peak_python_mib']:>10}"
        )
    xlsx = report["figures"]["xlsx"]["wall_s_best"]
    lines.append(f"goal: XLSX of a year ≤ {GOAL_SECONDS} s — {'met' if xlsx <= 2 else 'NOT met'}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
