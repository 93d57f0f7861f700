#!/usr/bin/env python3
"""What a page of entitlements costs in-process (issue 9): with the contracts behind each row
(``include=claims``, what every list page carried before) and without (the default now).

1. ``tcr demo generate`` writes a history of about ``--events`` commands, stored by an
   in-process registry and applied to a subsidy store on a SQLite file, as
   ``bench/finance_exports.py`` does (or ``--store`` names a store made before);
2. the first page of ``--limit`` entitlements of ``--year`` is asked of ``Subsidy.entitlements``
   and encoded as JSON as the API would, ``--runs`` times each way: CPU time of the call and of
   the encoding, the answer's bytes and how many contract rows it carries.

    .venv/bin/python bench/entitlements_page.py                  # ~100,000 events
    .venv/bin/python bench/entitlements_page.py --events 10000 --runs 5

The table goes to stdout, progress to stderr, every figure to
``bench/results/entitlements_page-<timestamp>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pipeline_support as ps
from finance_exports import generate, store_history

from services.common.policy.loader import load_schedule
from services.subsidy.application import Subsidy
from services.subsidy.store import EntryStore


def measure(subsidy: Subsidy, year: int, limit: int, claims: bool, runs: int) -> dict[str, Any]:
    cpus, body = [], b""
    subsidy.entitlements(year, limit=limit, claims=claims)  # warm: caches and pages read once
    for _ in range(runs):
        cpu = time.process_time()
        answer = subsidy.entitlements(year, limit=limit, claims=claims)
        body = orjson.dumps(answer)
        cpus.append(time.process_time() - cpu)
    rows = answer["entitlements"]
    contracts = sum(len(e["contracts"] or ()) + len(e["excluded"] or ()) for e in rows)
    figure = {
        "entitlements": len(rows),
        "contract_rows": contracts,
        "bytes": len(body),
        "cpu_ms_best": round(min(cpus) * 1000, 1),
        "cpu_ms_median": round(statistics.median(cpus) * 1000, 1),
    }
    ps.log(f"claims={claims}: {figure}")
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--store", help="a subsidy store (SQLite file) filled before: reused")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="entitlements-page-") as folder:
        work = Path(folder)
        history: dict[str, Any] = {}
        store_path = Path(args.store) if args.store else work / "subsidy.db"
        if not store_path.exists():
            history = store_history(
                generate(args.events, work), f"sqlite:///{work / 'registry.db'}",
                f"sqlite:///{store_path}",
            )  # fmt: skip
        store = EntryStore(f"sqlite:///{store_path}", load_schedule())
        try:
            subsidy = Subsidy(store, store.schedule)
            history.setdefault("events", store.head().position)
            figures = {
                "with_claims": measure(subsidy, args.year, args.limit, True, args.runs),
                "without": measure(subsidy, args.year, args.limit, False, args.runs),
            }
        finally:
            store.close()
    report = {
        "history": history,
        "year": args.year,
        "limit": args.limit,
        "figures": figures,
        "machine": ps.machine(),
        "commit": ps.git_commit(),
    }
    out = ps.write_results("entitlements_page", report, args.out)
    print(table(report))
    ps.log(f"written to {out}")
    return 0


def table(report: dict[str, Any]) -> str:
    lines = [
        f"history: {report['history']['events']:,} events; year {report['year']}, "
        f"a page of {report['limit']:,}",
        f"{'page':<14}{'rows':>7}{'contracts':>11}{'bytes':>12}{'cpu ms best':>13}{'median':>9}",
    ]
    for name, f in report["figures"].items():
        lines.append(
            f"{name:<14}{f['entitlements']:>7,}{f['contract_rows']:>11,}{f['bytes']:>12,}"
            f"{f['cpu_ms_best']:>13}{f['cpu_ms_median']:>9}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
