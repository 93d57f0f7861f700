#!/usr/bin/env python3
"""The finance page's speed (issue #12): time to first byte and full load of the year screen
and of a beneficiary screen.

By default it starts ``tcr stack --demo`` on SQLite in a temporary folder (the demo history of
about 10,000 events) on free ports, and stops it at the end; ``--finance URL --token T``
measures a running finance service instead, with whatever history it holds (e.g. the 1M-event
databases ``bench/read_scale.py --keep`` leaves, served by ``tcr subsidy serve``).

- TTFB: httpx over one keep-alive connection with the session cookie, from sending the request
  to the response's headers (the page renders before it sends them), ``--requests`` times.
- Full load: headless chromium (Debian's, through Playwright) navigating to the screen, until
  its ``load`` event (the HTML, its CSS and its script), ``--loads`` times.

The beneficiary is the first one the year screen links to. Prints p50/p99 in ms and writes
them with the machine's description to ``--out`` (default ``bench/results/finance_page-*.json``);
goal p99 ≤ 300 ms for both screens. The figures share the machine with whatever else runs.

    .venv/bin/python bench/finance_page.py
    .venv/bin/python bench/finance_page.py --requests 50 --loads 20 --rows 25 50 100  # quick
    .venv/bin/python bench/finance_page.py --finance http://127.0.0.1:8001 \\
        --token "$(grep ^finance= var/local-tokens.txt | cut -d= -f2)" --year 2024
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from pipeline_support import (
    free_port,
    git_commit,
    log,
    machine,
    percentile,
    tcr_command,
    write_results,
)

CHROMIUM = "/usr/bin/chromium"
GOAL_MS = 300.0


def ms(seconds: list[float]) -> dict[str, Any]:
    ordered = sorted(s * 1000 for s in seconds)
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 50) or 0, 1),
        "p99_ms": round(percentile(ordered, 99) or 0, 1),
    }


def ttfb(client: httpx.Client, path: str, count: int) -> list[float]:
    client.get(path).raise_for_status()  # warm: templates compiled, connection open
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with client.stream("GET", path) as response:
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            response.read()
    return times


def full_loads(base: str, token: str, paths: list[str], count: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, list[float]] = {p: [] for p in paths}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{base}/")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_selector(".sign-out")
        for path in paths:
            page.goto(f"{base}{path}", wait_until="load")  # warm
            for _ in range(count):
                started = time.perf_counter()
                page.goto(f"{base}{path}", wait_until="load")
                found[path].append(time.perf_counter() - started)
        browser.close()
    return found


@contextmanager
def demo_stack() -> Iterator[tuple[str, str]]:
    """``tcr stack --demo`` in a temporary folder: (the finance URL, the finance token)."""
    with tempfile.TemporaryDirectory(prefix="tcr-bench-page-") as folder:
        var = Path(folder) / "var"
        ports = {name: free_port() for name in ("registry", "subsidy", "audit", "kafka")}
        argv = [*tcr_command(), "stack", "--demo", "--var", str(var)]
        argv += [f"--{name}-port={port}" for name, port in ports.items()]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TCR_")}
        with (Path(folder) / "stack.log").open("wb") as out:
            stack = subprocess.Popen(
                argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            try:
                log("starting tcr stack --demo (about a minute)")
                deadline = time.monotonic() + 600
                while b"stack    | ready:" not in (Path(folder) / "stack.log").read_bytes():
                    if stack.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((Path(folder) / "stack.log").read_text()[-3000:])
                    time.sleep(0.5)
                tokens = dict(
                    line.split("=", 1)
                    for line in (var / "local-tokens.txt").read_text().splitlines()
                    if "=" in line
                )
                yield f"http://127.0.0.1:{ports['subsidy']}", tokens["finance"]
            finally:
                os.killpg(stack.pid, signal.SIGTERM)
                stack.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finance", help="a running finance service (default: start the demo)")
    parser.add_argument("--token", help="a finance officer's token for --finance")
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--loads", type=int, default=50)
    parser.add_argument(
        "--rows",
        type=int,
        nargs="*",
        default=[],
        help="also time the year screen at these rows per page (e.g. --rows 50 100)",
    )
    parser.add_argument("--out", help="where to write the JSON (default under bench/results/)")
    args = parser.parse_args(argv)
    if args.finance:
        report = measure(args, args.finance, args.token)
    else:
        with demo_stack() as (finance, token):
            report = measure(args, finance, token)
            report["history"] = "tcr stack --demo (SQLite)"
    report |= {"machine": machine(), "commit": git_commit()}
    path = write_results("finance_page", report, args.out)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    log(f"written to {path}")
    return 0


def measure(args: argparse.Namespace, finance: str, token: str) -> dict[str, Any]:
    """Sign in, find a beneficiary on the year screen, time both screens both ways."""
    with httpx.Client(base_url=finance, timeout=60, follow_redirects=True) as client:
        form = client.get("/").raise_for_status().text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        fields = {"token": token, **({"csrf": csrf.group(1)} if csrf else {})}
        client.post("/sign-in", data=fields).raise_for_status()
        year_path = f"/years/{args.year}"
        year_html = client.get(year_path).raise_for_status().text
        linked = re.search(rf'href="(/years/{args.year}/beneficiaries/[^"]+)"', year_html)
        if linked is None:
            raise SystemExit(f"the {args.year} screen links to no beneficiary")
        paths = {"year": year_path, "beneficiary": linked.group(1)}
        paths |= {f"year rows={n}": f"{year_path}?rows={n}" for n in args.rows}
        rows = year_html.count("/beneficiaries/")
        first_bytes = {name: ttfb(client, path, args.requests) for name, path in paths.items()}
    loads = full_loads(finance, token, list(paths.values()), args.loads)
    return {
        "year": args.year,
        "year_screen_links": rows,
        "ttfb": {name: ms(t) for name, t in first_bytes.items()},
        "full_load": {name: ms(loads[path]) for name, path in paths.items()},
        "goal_p99_ms": GOAL_MS,
    }


if __name__ == "__main__":
    sys.exit(main())
