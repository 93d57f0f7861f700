"""The evaluation report over a history from ``tcr demo generate``, stored in a real registry and
exported: the figures and findings the report gave before it streamed (pinned in
``tests/data``), and a page that fits a desktop, a tablet and a phone in a real browser.

The browser is Debian's ``chromium`` driven by Playwright (``make test`` installs it);
screenshots are left in ``var/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.cli import main
from tests.support.demo_bundle import demo_bundle

PINNED = Path(__file__).parents[1] / "data" / "audit_report_demo_2020_2023.json"
CHROMIUM = "/usr/bin/chromium"
WIDTHS = (1280, 800, 420)
# A4 less the print stylesheet's margins (12 mm each side), in CSS pixels.
A4_PRINTABLE_PX = round((210 - 24) / 25.4 * 96)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_bundle(tmp_path_factory.mktemp("demo"), range(2020, 2024), 50, seed=1)


def report(bundle: Path, out: Path, year: int) -> Path:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["audit", "report", str(bundle), "--year", str(year), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("year", [2021, 2023])
def test_the_streamed_report_gives_the_figures_and_findings_it_gave_before(
    bundle: Path, tmp_path: Path, year: int
) -> None:
    out = report(bundle, tmp_path / "report", year)

    written = json.loads((out / "figures.json").read_text("utf-8"))
    pinned = json.loads(PINNED.read_text("utf-8"))[str(year)]
    for key in ("years", "turnover", "regions", "subsidies", "brokers", "achievements"):
        assert written[key] == pinned[key], key
    assert written["findings_by_kind"] == pinned["findings_by_kind"]
    with (out / "findings.csv").open(encoding="utf-8-sig") as rows:
        found = [[r["kind"], r["registration_no"], r["position"]] for r in csv.DictReader(rows)]
    assert found == pinned["findings"]


# -- the page in a browser ---------------------------------------------------------------------

# Every element wider than the viewport or reaching past its right edge, except what lies
# inside a scrolling container (which scrolls, the page does not).
_OVERFLOW = """
() => {
  const width = window.innerWidth;
  const over = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.parentElement && el.parentElement.closest(".scroll")) continue;
    const box = el.getBoundingClientRect();
    if (box.right > width + 0.5 || box.width > width + 0.5) {
      over.push(`${el.tagName.toLowerCase()}.${el.getAttribute("class") || ""}: ${box.right}`);
    }
  }
  return {scrollWidth: document.scrollingElement.scrollWidth, width, over: over.slice(0, 10)};
}
"""


@pytest.fixture(scope="module")
def page_file(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The plan's last year: every year in force gets its columns, the widest the page gets.
    return report(bundle, tmp_path_factory.mktemp("page"), 2025) / "report.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_report_page_fits_the_screen_without_scrolling_sideways(
    browser: Any, page_file: Path, width: int, screenshots: Path
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(page_file.as_uri())
        page.screenshot(path=str(screenshots / f"audit-report-{width}.png"), full_page=True)
        measured = page.evaluate(_OVERFLOW)
    finally:
        page.close()

    assert measured["scrollWidth"] <= measured["width"], measured
    assert measured["over"] == [], measured


def test_the_report_page_prints_on_a4_within_its_margins(browser: Any, page_file: Path) -> None:
    page = browser.new_page(viewport={"width": A4_PRINTABLE_PX, "height": 1100})
    try:
        page.emulate_media(media="print")
        page.goto(page_file.as_uri())
        measured = page.evaluate(_OVERFLOW.replace('el.parentElement.closest(".scroll")', "false"))
        pdf = page.pdf(format="A4")
    finally:
        page.close()

    assert measured["over"] == [], measured
    assert pdf.startswith(b"%PDF")


def test_the_report_page_loads_nothing_from_the_network(browser: Any, page_file: Path) -> None:
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(page_file.as_uri())
    finally:
        page.close()

    assert requested == [page_file.as_uri()]
