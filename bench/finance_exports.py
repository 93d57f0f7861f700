#!/usr/bin/env python3
"""Finance's exports at scale (issue 12): time and peak memory of a year's XLSX and CSV.

1. ``tcr demo generate`` writes a history of about ``--events`` commands (years 2020–2025);
2. an in-process registry on a SQLite file stores it through its batch writer, as the bureau;
3. its log, read in pages, fills a subsidy store on a SQLite file (``EntryStore.add``);
4. ``Subsidy.xlsx(year)`` and ``Subsidy.csv(year)`` (both sheets) are read to their last byte,
   ``--runs`` times each: wall and CPU time of each; then once more under ``tracemalloc`` for
   the peak of Python allocations (the temporary files the workbook's rows go to are on disk).
   In the same run, as the baseline: the year's rows read and nothing written (``read``, the
   floor of every export), and the workbook written by openpyxl's write-only mode as the
   export wrote it before XlsxWriter (``xlsx_openpyxl``, left out with ``--without-openpyxl``);
   and the workbook asked for now after one was written at the position of the year's last
   change (entries of other years may follow it), read back from the folder the finance API
   keeps them in (``xlsx_kept``). Best and median (p50) of the runs.

Goal: the XLSX of a year in ≤ 2 s. CPU time is measured in-process; the machine is shared, so
wall time is reported beside it, and the load average at the start and the end.

    .venv/bin/python bench/finance_exports.py                   # ~100,000 events
    .venv/bin/python bench/finance_exports.py --events 20000 --runs 1
    .venv/bin/python bench/finance_exports.py --store var/bench-100k   # build once, keep
    .venv/bin/python bench/finance_exports.py --database-url postgresql+psycopg://…/subsidy

A PostgreSQL store given by ``--database-url`` is only read: its sessions are read-only, so a
bench that tried to write to it would fail rather than change it.

The table goes to stdout, progress to stderr, every figure to
``bench/results/finance_exports-<timestamp>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pipeline_support as ps
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from services.common.policy.loader import load_schedule
from services.common.spreadsheet import safe_cell
from services.demo.load import FINANCE_OPS
from services.registry.api.batch import batch_args
from services.registry.application import Registry
from services.registry.commands import Command, Principal
from services.subsidy import reads
from services.subsidy.application import Subsidy
from services.subsidy.exports import (
    CONTRACT_COLUMNS,
    ENTITLEMENT_COLUMNS,
    SHEET_TITLES,
    Column,
    Export,
    contract_rows,
    entitlement_row,
    last_change,
    totals_rows,
)
from services.subsidy.store import EntryStore
from services.subsidy.workbook_cache import WorkbookCache

GOAL_SECONDS = 2.0
GOAL_EVENTS = 1_000_000
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


def read_only(export: Export) -> Iterator[bytes]:
    """The rows an export reads, each row's cells built, nothing written: the floor."""
    for row in export.rows:
        entitlement_row(export, row)
        for _ in contract_rows(export, row):
            pass
    yield b""


def openpyxl_chunks(export: Export) -> Iterator[bytes]:
    """The workbook as the export wrote it before XlsxWriter (commit 9d219ce): openpyxl's
    write-only mode, one styled cell kept per column and given each row's value."""
    book = Workbook(write_only=True)
    writers = []
    for title, columns in (
        (SHEET_TITLES["entitlements"], ENTITLEMENT_COLUMNS),
        (SHEET_TITLES["contracts"], CONTRACT_COLUMNS),
    ):
        sheet = book.create_sheet(title)
        for i, column in enumerate(columns, 1):
            sheet.column_dimensions[get_column_letter(i)].width = column.width
        sheet.freeze_panes = "A3"
        for header in ([c.zh for c in columns], [c.en for c in columns]):
            cells = []
            for text in header:
                cell = WriteOnlyCell(sheet, text)
                cell.font = Font(bold=True)
                cells.append(cell)
            sheet.append(cells)
        writers.append(OpenpyxlRows(sheet, columns))
    entitlements, contracts = writers
    counted: Counter[str] = Counter()
    for row in export.rows:
        entitlements(entitlement_row(export, row))
        counted[row.key[1]] += row.counted
        for values in contract_rows(export, row):
            contracts(values)
    totals = OpenpyxlRows(entitlements.sheet, ENTITLEMENT_COLUMNS, Font(bold=True))
    for values in totals_rows(export, counted):
        totals(values)
    with tempfile.TemporaryFile() as out:
        book.save(out)
        out.seek(0)
        while chunk := out.read(256 * 1024):
            yield chunk


class OpenpyxlRows:
    """The old ``exports.RowWriter``: one styled cell per column, words as plain values."""

    def __init__(self, sheet: Any, columns: Sequence[Column], font: Font | None = None) -> None:
        self.sheet = sheet
        self._words = [c.kind in ("code", "text") for c in columns]
        self._cells: list[Any] = []
        for column in columns:
            if column.kind in ("text", "count") and font is None:
                self._cells.append(None)
                continue
            cell = WriteOnlyCell(sheet)
            if column.kind == "code":
                cell.number_format = "@"
            elif column.kind == "amount":
                cell.number_format = "#,##0.00"
            if font is not None:
                cell.font = font
            self._cells.append(cell)

    def __call__(self, values: Sequence[Any]) -> None:
        row: list[Any] = []
        for cell, words, value in zip(self._cells, self._words, values, strict=True):
            if value is None:
                row.append(None)
                continue
            value = safe_cell(str(value)) if words else value
            if cell is None:
                row.append(value)
            else:
                cell.value = value
                row.append(cell)
        self.sheet.append(row)


def kept_xlsx(
    stack: contextlib.ExitStack, store: EntryStore, year: int, changed: int
) -> Callable[[], Iterator[bytes]]:
    """The year's workbook asked for now, after it was written (not timed) at the position of
    the year's last change: read back from the folder the finance API keeps its workbooks in,
    whatever entries of other years came after that position."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="finance-kept-")))
    subsidy = Subsidy(store, store.schedule, workbooks=WorkbookCache(folder))
    read_through(subsidy.xlsx(year, position=changed))
    return lambda: subsidy.xlsx(year)


def read_only_url(url: str) -> str:
    """A PostgreSQL URL whose sessions cannot write (another one unchanged)."""
    if not url.startswith("postgresql"):
        return url
    return url + ("&" if "?" in url else "?") + "options=-c%20default_transaction_read_only%3Don"


def year_changed(store: EntryStore, year: int) -> dict[str, Any]:
    """The head, the year's last change at or before it, and how long finding it took."""
    with reads.snapshot(store.engine) as conn:
        head = reads.head(conn).position
        times = []
        for _ in range(5):
            t = time.perf_counter()
            changed = last_change(conn, year, head)
            times.append(time.perf_counter() - t)
    return {
        "head": head,
        "last_change": changed.position,
        "last_change_query_ms_best": round(min(times) * 1000, 2),
        "last_change_query_ms": [round(x * 1000, 2) for x in times],
    }


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
        "wall_s_p50": round(statistics.median(walls), 3),
        "cpu_s_best": round(min(cpus), 3),
        "cpu_s_p50": round(statistics.median(cpus), 3),
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
        "--without-openpyxl", action="store_true", help="leave out the openpyxl baseline"
    )
    parser.add_argument(
        "--database-url",
        help="measure this subsidy store as it is (e.g. the 1M-event one of bench/read_scale.py)",
    )
    parser.add_argument(
        "--store",
        help="a folder to keep the stores in: built there when it has none, else measured "
        "as it is (the history is not generated again)",
    )
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()
    with contextlib.ExitStack() as stack:
        if args.database_url:
            history: dict[str, Any] = {"database_url": args.database_url}
            url = read_only_url(args.database_url)
        else:
            if args.store:
                work = Path(args.store)
                work.mkdir(parents=True, exist_ok=True)
            else:
                folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="finance-exports-"))
                work = Path(folder)
            history = built(work, args.events)
            url = f"sqlite:///{work / 'subsidy.db'}"
        store = EntryStore(url, load_schedule())
        stack.callback(store.close)
        history.setdefault("events", store.head().position)
        subsidy = Subsidy(store, store.schedule)
        year = args.year
        rows = sum(1 for _ in subsidy.export(year).rows)
        claims = sum(len(r.claims) for r in subsidy.export(year).rows)
        changed = year_changed(store, year)
        ps.log(f"year {year}: {changed}")
        figures = {
            "read": measure("read", lambda: read_only(subsidy.export(year)), args.runs),
        }
        if not args.without_openpyxl:
            figures["xlsx_openpyxl"] = measure(
                "xlsx openpyxl", lambda: openpyxl_chunks(subsidy.export(year)), args.runs
            )
        kept = kept_xlsx(stack, store, year, changed["last_change"])
        figures |= {
            "xlsx": measure("xlsx", lambda: subsidy.xlsx(year), args.runs),
            "xlsx_kept": measure("xlsx kept", kept, args.runs),
            "csv": measure("csv", lambda: subsidy.csv(year), args.runs),
            "csv_contracts": measure(
                "csv contracts", lambda: subsidy.csv(year, sheet="contracts"), args.runs
            ),
        }
    report = {
        "history": history,
        "year": args.year,
        "year_changed": changed,
        "entitlement_rows": rows,
        "contract_rows": claims,
        "goal_xlsx_s": GOAL_SECONDS,
        "figures": figures,
        "machine": {
            **ps.machine(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
        },
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
        f"{'export':<16}{'bytes':>12}{'wall best':>10}{'wall p50':>10}{'cpu best':>10}"
        f"{'peak MiB':>10}",
    ]
    for name, f in report["figures"].items():
        lines.append(
            f"{name:<16}{f['bytes']:>12,}{f['wall_s_best']:>10}{f['wall_s_p50']:>10}"
            f"{f['cpu_s_best']:>10}{f['peak_python_mib']:>10}"
        )
    xlsx = report["figures"]["xlsx"]["wall_s_best"]
    events = report["history"].get("events")
    if events is not None and events < 0.9 * GOAL_EVENTS:  # a 1M-event store holds 996,846
        # The cost grows with the year's rows: a tenth of the history must take a tenth.
        share = GOAL_SECONDS * events / GOAL_EVENTS
        verdict = f"on course ({xlsx} ≤ {share:.2f} s)" if xlsx <= share else "NOT on course"
    else:
        verdict = "met" if xlsx <= GOAL_SECONDS else "NOT met"
    lines.append(f"goal: XLSX of a year ≤ {GOAL_SECONDS} s at {GOAL_EVENTS:,} events — {verdict}")
    load = report["machine"]
    lines.append(
        "load average at start / end: "
        f"{' '.join(f'{x:.2f}' for x in load['load_average_at_start'])} / "
        f"{' '.join(f'{x:.2f}' for x in load['load_average_at_end'])}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
