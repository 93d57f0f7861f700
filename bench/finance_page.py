#!/usr/bin/env python3
"""The finance page's speed (issue #12): time to first byte and full load of the year screen
and of a beneficiary screen, against a running finance service and whatever history it holds
(``make run``'s demo, or the databases ``bench/read_scale.py --keep`` leaves, served by
``tcr subsidy serve``).

- TTFB: httpx over one keep-alive connection with the session cookie, from sending the request
  to the response's headers (the page renders before it sends them), ``--requests`` times.
- Full load: headless chromium (Debian's, through Playwright) navigating to the screen, until
  its ``load`` event (the HTML, its CSS and its script), ``--loads`` times.

The beneficiary is the first one the year screen links to. Prints p50/p99 in ms as JSON; goal
p99 ≤ 300 ms for both screens. The figures share the machine with whatever else runs on it.

    .venv/bin/python bench/finance_page.py --finance http://127.0.0.1:8001 \\
        --token "$(grep ^finance= var/local-tokens.txt | cut -d= -f2)" --year 2024
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

import httpx
from pipeline_support import percentile

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finance", required=True, help="the finance service's URL")
    parser.add_argument("--token", required=True, help="a finance officer's token")
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--loads", type=int, default=50)
    args = parser.parse_args(argv)

    with httpx.Client(base_url=args.finance, timeout=60, follow_redirects=True) as client:
        client.post("/sign-in", data={"token": args.token}).raise_for_status()
        year_path = f"/years/{args.year}"
        year_html = client.get(year_path).raise_for_status().text
        linked = re.search(rf'href="(/years/{args.year}/beneficiaries/[^"]+)"', year_html)
        if linked is None:
            print(f"the {args.year} screen links to no beneficiary", file=sys.stderr)
            return 1
        paths = {"year": year_path, "beneficiary": linked.group(1)}
        rows = year_html.count("/beneficiaries/")
        first_bytes = {name: ttfb(client, path, args.requests) for name, path in paths.items()}
    loads = full_loads(args.finance, args.token, list(paths.values()), args.loads)
    report = {
        "year": args.year,
        "year_screen_links": rows,
        "ttfb": {name: ms(t) for name, t in first_bytes.items()},
        "full_load": {name: ms(loads[path]) for name, path in paths.items()},
        "goal_p99_ms": GOAL_MS,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
