#!/usr/bin/env python3
"""Policy simulation at scale (issue 14): a draft policy tried on one year of the history.

1. The demo generator (``tcr demo generate``) writes a history of about ``--events``
   commands (years 2020–2025); an in-process registry on a SQLite file stores it in batches,
   and its log fills a subsidy store on a SQLite file. With ``--database-url`` an existing
   subsidy store is read instead (e.g. one ``bench/read_scale.py --keep`` left on PostgreSQL),
   and nothing is built.
2. ``Simulations.simulate(year, draft)`` runs ``--runs`` times — the draft is the bundled policy
   with every rate raised by half — wall and CPU time of each, and of its two parts: reading
   the facts tables (one snapshot, one read of each table) and the engine over them twice.

Goal: a simulation over the 1,000,000-event history in ≤ 10 s.

    .venv/bin/python bench/simulation.py                        # ~1,000,000 events (long)
    .venv/bin/python bench/simulation.py --events 20000 --runs 1
    .venv/bin/python bench/simulation.py --database-url postgresql+psycopg://…/subsidy

The table goes to stdout, progress to stderr, every figure to
``bench/results/simulation-<timestamp>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
import pipeline_support as ps

from services.common.db import make_engine
from services.common.policy.loader import load_schedule, policy_from_text
from services.common.policy.simulation import simulate
from services.demo.generate import write_history
from services.registry.api.batch import batch_args
from services.registry.application import Registry
from services.registry.commands import Command, Principal
from services.subsidy import reads
from services.subsidy.simulations import Simulations, facts_of_year
from services.subsidy.store import EntryStore

GOAL_SECONDS = 10.0
YEARS = range(2020, 2026)
COMMANDS_PER_CONTRACT = 4.4  # what the demo generator writes per contract (bench/read_scale.py)
BATCH = 1000  # the registry's limit of commands per batch
PAGE = 5000


def build(events: int, folder: Path) -> dict[str, Any]:
    """A demo history of about ``events`` commands into a registry, then into a subsidy store
    at ``folder / "subsidy.db"``."""
    history = folder / "history.jsonl"
    per_year = max(1, round(events / (len(YEARS) * COMMANDS_PER_CONTRACT)))
    ps.log(f"generating ~{events:,} commands ({per_year:,} contracts a year)…")
    write_history(history, YEARS, per_year)
    registry = Registry(f"sqlite:///{folder / 'registry.db'}")
    store = EntryStore(f"sqlite:///{folder / 'subsidy.db'}", load_schedule())
    try:
        registry.start()
        t = time.perf_counter()
        for principal, commands in _batches(history):
            parsed = [Command(c["op"], batch_args(c["op"], c["body"])) for c in commands]
            registry.submit(principal, parsed, batch=True).result(timeout=300)
        stored = time.perf_counter() - t
        t, after = time.perf_counter(), 0
        while True:
            page = registry.read_log(after, PAGE)["events"]
            if not page:
                break
            store.add(page)
            after = page[-1]["position"]
        applied = time.perf_counter() - t
        ps.log(f"registry {stored:.1f} s, subsidy store {applied:.1f} s: {after:,} events")
    finally:
        store.close()
        registry.close()
    return {"events": after, "registry_s": round(stored, 1), "store_s": round(applied, 1)}


def _batches(history: Path) -> Iterator[tuple[Principal, list[dict[str, Any]]]]:
    """The commands in order, in batches of one principal: finance's payouts apart."""
    bureau, finance = Principal("bureau", "bureau"), Principal("finance", "finance")
    batch: list[dict[str, Any]] = []
    principal = bureau
    for line in history.read_bytes().splitlines():
        command = orjson.loads(line)
        who = finance if command["op"] == "record_payout" else bureau
        if batch and (who is not principal or len(batch) == BATCH):
            yield principal, batch
            batch = []
        principal = who
        batch.append(command)
    if batch:
        yield principal, batch


def draft_text() -> str:
    """The bundled policy with each category's rate raised by half (10 % → 15 %, 1 % → 1.5 %)."""
    text = (files("services.schemas") / "policy" / "pingdingshan-2020.toml").read_text("utf-8")
    text = text.replace('version = "pingdingshan-2020.1"', 'version = "bench-draft"')
    return re.sub(r'rate = "([0-9.]+)"', lambda m: f'rate = "{float(m.group(1)) * 1.5:.3f}"', text)


def measure(url: str, year: int, runs: int) -> dict[str, Any]:
    engine = make_engine(url)
    schedule = load_schedule()
    text = draft_text()
    draft = policy_from_text(text, "draft")
    walls, cpus, reading, computing = [], [], [], []
    answer: dict[str, Any] = {}
    try:
        for _ in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            answer = Simulations(engine, schedule).simulate(year, text)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            # The same again in its two parts.
            t = time.perf_counter()
            with reads.snapshot(engine) as conn:
                facts = facts_of_year(conn, year)
            reading.append(time.perf_counter() - t)
            t = time.perf_counter()
            simulate(facts, year, schedule.for_year(year), draft)
            computing.append(time.perf_counter() - t)
            ps.log(f"simulation: {walls[-1]:.2f} s ({len(facts.contracts):,} contracts)")
        with reads.snapshot(engine) as conn:
            contracts_paid = len(facts_of_year(conn, year).contracts)
    finally:
        engine.dispose()
    return {
        "position": answer["position"],
        "contracts_paid_in_year": contracts_paid,
        "beneficiaries_changed": answer["beneficiaries_changed"],
        "wall_s_best": round(min(walls), 3),
        "cpu_s_best": round(min(cpus), 3),
        "wall_s": [round(w, 3) for w in walls],
        "read_facts_s_best": round(min(reading), 3),
        "engine_s_best": round(min(computing), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="history size to build")
    parser.add_argument("--database-url", help="an existing subsidy store to read instead")
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    history: dict[str, Any] = {"database_url": args.database_url}
    if args.database_url:
        figures = measure(args.database_url, args.year, args.runs)
    else:
        with tempfile.TemporaryDirectory(prefix="simulation-") as folder:
            history = build(args.events, Path(folder))
            figures = measure(f"sqlite:///{Path(folder) / 'subsidy.db'}", args.year, args.runs)
    report = {
        "history": history,
        "year": args.year,
        "goal_s": GOAL_SECONDS,
        "figures": figures,
        "machine": ps.machine(),
        "commit": ps.git_commit(),
    }
    out = ps.write_results("simulation", report, args.out)
    print(table(report))
    ps.log(f"written to {out}")
    return 0


def table(report: dict[str, Any]) -> str:
    f = report["figures"]
    met = f["wall_s_best"] <= GOAL_SECONDS
    return "\n".join(
        [
            f"history at position {f['position']:,}; year {report['year']}: "
            f"{f['contracts_paid_in_year']:,} contracts paid in it, "
            f"{f['beneficiaries_changed']:,} beneficiaries changed by the draft",
            f"{'simulation':<12}{'wall s':>10}{'cpu s':>10}{'read s':>10}{'engine s':>10}",
            f"{'best':<12}{f['wall_s_best']:>10}{f['cpu_s_best']:>10}"
            f"{f['read_facts_s_best']:>10}{f['engine_s_best']:>10}",
            f"goal: ≤ {GOAL_SECONDS} s at 1,000,000 events — {'met' if met else 'NOT met'} "
            "at this size",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
