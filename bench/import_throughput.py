#!/usr/bin/env python3
"""Spreadsheet import throughput (issue 13): a contract sheet of ``--rows`` rows plus two
evidence rows per contract (an invoice and a transfer proof), checked (dry run) and stored
(commit) by ``services.registry.imports.run_import``, on PostgreSQL (a fresh database, dropped
after) and on SQLite (a file in a temporary folder).

The workbook is written once with openpyxl's write-only mode. Each backend runs in a child
process of its own, so that its peak RSS (``ru_maxrss``) is the import's alone: opening the
registry, a dry run, then a commit (which checks the file again, then stores it in one
transaction through the writer). The upload's HTTP framing is not measured (the route reads the
file, then calls the same function in a thread).

    .venv/bin/python bench/import_throughput.py                 # 20,000 contracts, 60,000 rows
    .venv/bin/python bench/import_throughput.py --rows 2000     # quick check
    .venv/bin/python bench/import_throughput.py --backend sqlite --rows 2000

Goal: 20,000 contracts (60,000 rows: each sheet within the 50,000-row limit of a sheet)
validated and committed in ≤ 30 s on PostgreSQL (the dry run and the commit together), peak
memory ≤ 500 MB. A table goes to stdout, progress to stderr, every figure to ``--out`` (JSON,
default ``bench/results/import_throughput-<time>.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``services`` importable
    sys.path.insert(0, str(REPO))

from pipeline_support import (  # noqa: E402
    BUYERS,
    DEFAULT_ADMIN_URL,
    SELLERS,
    db_name,
    fmt,
    git_commit,
    log,
    machine,
    postgres_database,
    render_table,
    sqlalchemy_url,
    write_results,
)

GOAL_SECONDS = 30.0
GOAL_PEAK_MB = 500.0
KIND_LABELS = {
    "enterprise": "企业",
    "university": "高等院校",
    "research_institute": "科研院所",
    "new_rd_institution": "新型研发机构",
    "other": "其他",
}
TYPES = ("技术开发", "技术转让", "技术许可", "技术咨询", "技术服务")


def write_workbook(path: Path, rows: int) -> int:
    """``rows`` contracts, each with an invoice and a transfer proof; the data rows written."""
    from openpyxl import Workbook

    from services.registry.imports.columns import SHEETS

    book = Workbook(write_only=True)
    contracts = book.create_sheet("合同")
    invoices = book.create_sheet("发票")
    transfers = book.create_sheet("转账凭证")
    for sheet, name in ((contracts, "合同"), (invoices, "发票"), (transfers, "转账凭证")):
        sheet.append([c.header for c in SHEETS[name]])
    for n in range(rows):
        mix = n * 131
        year = 2021 + mix % 5
        day = 1 + mix % 28
        no = f"{year}4104{n:09d}"
        seller = SELLERS[mix % len(SELLERS)]
        buyer = BUYERS[(mix // 3) % len(BUYERS)]
        contract_yuan = 50_000 + (mix * 7919) % 950_000
        contracts.append(
            [
                no, "S1", dt.date(year, 3, day), f"{year}-02-{day:02d}", f"技术合同 {n}",
                TYPES[mix % 5], "先进制造",
                seller["name"], seller["credit_code"], KIND_LABELS[seller["kind"]],
                seller["region_code"],
                buyer["name"], buyer["credit_code"], KIND_LABELS[buyer["kind"]],
                buyer["region_code"],
                contract_yuan, contract_yuan * 4 // 5, "否", "",
            ]
        )  # fmt: skip
        part = round(contract_yuan * 0.6, 2)
        invoices.append(
            [no, f"INV-{n:09d}", dt.date(year, 4, day), part, seller["credit_code"],
             buyer["credit_code"]]
        )  # fmt: skip
        transfers.append(
            [no, f"BANK-{n:09d}", f"{year}-05-{day:02d}", part, buyer["credit_code"],
             seller["credit_code"], "中国银行平顶山分行"]
        )  # fmt: skip
    book.save(path)
    return rows * 3


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(database_url: str, path: Path) -> dict[str, Any]:
    """Run in a process of its own: open the registry, a dry run, a commit; figures."""
    from services.common.tokens import Principal
    from services.registry.application import Registry
    from services.registry.imports import run_import

    data = path.read_bytes()
    registry = Registry(database_url)
    registry.start()
    who = Principal("bench-bureau", "bureau")
    try:
        opened_mb = peak_mb()
        started = time.perf_counter()
        report = run_import(registry, who, data, filename=path.name, dry_run=True)
        dry_s = time.perf_counter() - started
        dry_mb = peak_mb()
        if report.errors:
            raise SystemExit(f"the generated file has problems: {report.errors[:3]}")
        started = time.perf_counter()
        stored = run_import(registry, who, data, filename=path.name, dry_run=False)
        commit_s = time.perf_counter() - started
        head = registry.head()
    finally:
        registry.close()
    return {
        "rows": report.rows,
        "events": stored.events,
        "head": head,
        "dry_run_s": dry_s,
        "commit_s": commit_s,
        "dry_run_rows_s": report.rows / dry_s,
        "commit_rows_s": report.rows / commit_s,
        "peak_mb_opened": opened_mb,
        "peak_mb_after_dry_run": dry_mb,
        "peak_mb": peak_mb(),
        "file_bytes": len(data),
    }


def measure(backend: str, database_url: str, path: Path) -> dict[str, Any]:
    log(f"{backend}: dry run and commit of {path.name}")
    out = subprocess.run(
        [sys.executable, __file__, "--child", database_url, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{backend}: the import failed:\n{out.stderr[-3000:]}")
    figures: dict[str, Any] = orjson.loads(out.stdout.strip().splitlines()[-1])
    figures["backend"] = backend
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=20_000,
        help="contracts, each with an invoice and a transfer proof (default 20,000: 60,000 rows)",
    )
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument(
        "--database", help="PostgreSQL database to create and drop (default tcr_import_<pid>_…)"
    )
    parser.add_argument("--out", help="JSON file to write (default bench/results/…)")
    parser.add_argument(
        "--child", nargs=2, metavar=("DATABASE_URL", "FILE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(orjson.dumps(child(args.child[0], Path(args.child[1]))).decode())
        return 0

    results = []
    with tempfile.TemporaryDirectory(prefix="tcr-import-bench-") as folder:
        path = Path(folder) / "import.xlsx"
        started = time.perf_counter()
        written = write_workbook(path, args.rows)
        log(f"wrote {written:,} rows ({path.stat().st_size / 1e6:.1f} MB) in "
            f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        if args.backend in ("postgresql", "both"):
            name = args.database or db_name("import", "registry")
            with postgres_database(args.admin_url, name) as url:
                results.append(measure("postgresql", sqlalchemy_url(url), path))
        if args.backend in ("sqlite", "both"):
            sqlite_url = f"sqlite:///{Path(folder) / 'registry.db'}"
            results.append(measure("sqlite", sqlite_url, path))

    rows = []
    for r in results:
        total = r["dry_run_s"] + r["commit_s"]
        # "Validated and committed": a clerk's dry run and commit together.
        r["goal_met"] = total <= GOAL_SECONDS and r["peak_mb"] <= GOAL_PEAK_MB
        rows.append(
            [r["backend"], fmt(r["rows"]), fmt(r["dry_run_s"], ".1f"), fmt(r["dry_run_rows_s"]),
             fmt(r["commit_s"], ".1f"), fmt(r["commit_rows_s"]), fmt(total, ".1f"),
             fmt(r["peak_mb"], ".0f"), "yes" if r["goal_met"] else "NO"]
        )  # fmt: skip
    headers = ["backend", "rows", "dry run s", "rows/s", "commit s", "rows/s", "both s"]
    print(render_table([*headers, "peak MB", "goal"], rows))
    print(
        f"goal: {args.rows:,} contracts + {2 * args.rows:,} evidence rows validated (dry run) "
        f"and committed in ≤ {GOAL_SECONDS:.0f} s together on PostgreSQL, peak ≤ "
        f"{GOAL_PEAK_MB:.0f} MB"
    )
    report = {
        "bench": "import_throughput",
        "when": dt.datetime.now(dt.UTC).isoformat(),
        "commit": git_commit(),
        "machine": machine(),
        "parameters": {"contracts": args.rows, "evidence_rows": 2 * args.rows},
        "goal": {"seconds": GOAL_SECONDS, "peak_mb": GOAL_PEAK_MB},
        "results": results,
    }
    print(f"figures: {write_results('import_throughput', report, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
