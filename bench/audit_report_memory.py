#!/usr/bin/env python3
"""Audit benchmark: peak memory of ``tcr audit report`` as the log grows.

For each size, a history from ``tcr demo generate`` (six years, N contracts a year) is stored in
a registry (SQLite file, in-process) and exported as a bundle, cached in ``--workdir``; then
``tcr audit report --year 2025`` runs over it in a child process of its own, whose peak RSS
(``ru_maxrss`` from ``wait4``) and CPU time are its own.

Run with the project's virtualenv::

    .venv/bin/python bench/audit_report_memory.py                  # 385 and 3,850 a year
    .venv/bin/python bench/audit_report_memory.py --per-year 385 3850 15400

A table goes to stdout, progress to stderr, every figure to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``services`` and ``tests`` importable
    sys.path.insert(0, str(REPO))

from tests.support.demo_bundle import demo_bundle  # noqa: E402

YEARS = range(2020, 2026)
TCR = str(Path(sys.executable).with_name("tcr"))


def bundle_of(workdir: Path, per_year: int) -> Path:
    folder = workdir / f"demo-{per_year}"
    if not (folder / "bundle" / "manifest.json").exists():
        print(f"storing and exporting {per_year:,} contracts a year…", file=sys.stderr)
        started = time.monotonic()
        demo_bundle(folder, YEARS, per_year)
        print(f"  {time.monotonic() - started:.0f} s", file=sys.stderr)
    return folder / "bundle"


# Run from a small interpreter of its own: a child forked from this one (which has imported
# the registry to build bundles) would count this one's pages in its peak RSS.
_MEASURE = """
import os, subprocess, sys, time
started = time.monotonic()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime,
      time.monotonic() - started)
"""


def measure(bundle: Path) -> tuple[int, float, float]:
    """Peak RSS (KiB), CPU seconds and wall seconds of one ``tcr audit report``."""
    with tempfile.TemporaryDirectory() as out:
        argv = [TCR, "audit", "report", str(bundle), "--year", "2025", "--out", out]
        answer = subprocess.run(
            [sys.executable, "-c", _MEASURE, *argv], capture_output=True, text=True, check=True
        )
    code, rss, cpu, wall = answer.stdout.split()
    if code != "0":
        raise SystemExit(f"tcr audit report exited {code} over {bundle}")
    return int(rss), float(cpu), float(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-year", type=int, nargs="+", default=[385, 3850])
    parser.add_argument("--workdir", type=Path, default=REPO / "var" / "bench-audit-report")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "audit_report_memory.json"
    )
    args = parser.parse_args()
    rows = []
    print("| events | contracts | peak RSS | CPU | wall |")
    print("|---|---|---|---|---|")
    for per_year in args.per_year:
        bundle = bundle_of(args.workdir, per_year)
        with (bundle / "events.jsonl").open("rb") as lines:
            events = sum(1 for _ in lines)
        rss, cpu, wall = measure(bundle)
        rows.append(
            {
                "events": events,
                "contracts": per_year * len(YEARS),
                "peak_rss_kib": rss,
                "cpu_s": round(cpu, 2),
                "wall_s": round(wall, 2),
            }
        )
        print(
            f"| {events:,} | {per_year * len(YEARS):,} | {rss / 1024:.0f} MiB | {cpu:.1f} s "
            f"| {wall:.1f} s |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"report": rows}, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
