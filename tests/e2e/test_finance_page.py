"""The finance page in a real browser: Debian's chromium driven by Playwright over ``tcr stack``
on SQLite, with the hand-worked history loaded. Each screen is photographed at 1,280 and 420 px
into ``var/screenshots/`` (never committed) for a person to look at."""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from services.common.policy.present import REASON_ZH
from tests.e2e import history as h
from tests.e2e.conftest import RunningStack
from tests.e2e.test_whole_system import _post_all, _wait_caught_up

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
NEXT, PREVIOUS = "#entitlement-pages a[rel=next]", "#entitlement-pages a[rel=prev]"
WIDTHS = (1280, 420)
YEAR = 2024
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def loaded(sqlite_stack: RunningStack) -> RunningStack:
    """The stack with the hand-worked history applied by the finance service."""
    with httpx.Client(base_url=sqlite_stack.registry, timeout=30) as client:
        _post_all(client, sqlite_stack, h.HISTORY)
        _wait_caught_up(client, sqlite_stack)
    return sqlite_stack


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make browser installs it)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _follow(page: object, selector: str) -> None:
    """Click what leads to another page, and wait until that page is the one shown."""
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click(selector)  # type: ignore[attr-defined]


def _photograph(folder: Path, page: object, name: str) -> None:
    """A full-page screenshot at each width; at 420 px the page itself must not scroll
    sideways (wide tables scroll inside their own box)."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})  # type: ignore[attr-defined]
        page.screenshot(path=str(folder / f"finance-page-{name}-{width}.png"), full_page=True)  # type: ignore[attr-defined]
        overflow = page.evaluate(  # type: ignore[attr-defined]
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width}px scrolls sideways by {overflow}px"
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})  # type: ignore[attr-defined]


def test_an_officer_signs_in_reads_a_year_and_a_beneficiary_and_signs_out(
    loaded: RunningStack, browser: object, screenshots: Path
) -> None:
    expect = sync_api.expect
    shoot = partial(_photograph, screenshots)
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900}, locale="zh-CN")  # type: ignore[attr-defined]
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    # Signing in: a wrong token is refused in Chinese, a finance token opens a session.
    page.goto(f"{loaded.finance}/")
    shoot(page, "1-sign-in")
    page.fill("#token", "not-a-token")
    with page.expect_navigation() as refused:
        page.click("button[type=submit]")
    assert refused.value is not None and refused.value.status == 401
    expect(page.locator("[role=alert]")).to_contain_text("令牌无效")
    shoot(page, "2-sign-in-refused")
    page.fill("#token", loaded.tokens["auditor"])
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("不属于财务人员")
    page.fill("#token", loaded.tokens["finance"])
    page.click("button[type=submit]")
    expect(page.locator(".sign-out .who")).to_have_text("finance")
    (cookie,) = [c for c in context.cookies() if c["name"] == "tcr_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert loaded.tokens["finance"] not in cookie["value"], "the token must be sealed"
    shoot(page, "3-years")

    # A year: totals by category (元) and by county (万元), every entitlement, downloads.
    page.click(f"a[href='/years/{YEAR}']")
    expect(page.locator("h1")).to_contain_text(f"{YEAR} 年度补助")
    rows = page.locator("#entitlements tbody tr")
    assert rows.count() > 1
    expect(page.locator("table.totals").first).to_contain_text("技术吸纳")
    expect(page.get_by_text("单位：万元")).to_be_visible()
    amounts = page.locator("#entitlements td.num").all_inner_texts()
    assert any("," in a for a in amounts), f"no thousands separator in {amounts[:6]}"
    shoot(page, "4-year")
    csv = context.request.get(f"{loaded.finance}/years/{YEAR}/entitlements.csv")
    assert csv.status == 200 and csv.body().startswith("\ufeff".encode())
    xlsx = context.request.get(f"{loaded.finance}/years/{YEAR}/entitlements.xlsx")
    assert xlsx.status == 200 and xlsx.body()[:2] == b"PK", "an XLSX is a zip"

    # Filters: one category, then a minimum amount nothing reaches.
    page.select_option("select[name=category]", "broker")
    _follow(page, ".filters button[type=submit]")
    categories = page.locator("#entitlements tbody tr td:nth-child(2)").all_inner_texts()
    assert categories and all("技术经纪人" in c for c in categories), categories
    shoot(page, "5-year-filtered")
    page.fill("input[name=min_amount]", "99999999.00")
    _follow(page, ".filters button[type=submit]")
    expect(page.locator("#entitlements tbody")).to_contain_text("没有符合条件的补贴")
    page.fill("input[name=min_amount]", "12.345")
    _follow(page, ".filters button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("最低金额")

    # Paging through the API's cursor, three rows at a time, to the last page and back.
    codes = "#entitlements tbody tr td:first-child code"
    page.goto(f"{loaded.finance}/years/{YEAR}?rows=3")
    assert page.locator(PREVIOUS).count() == 0, "the first page has none before it"
    pages = [page.locator(codes).all_inner_texts()]
    while page.locator(NEXT).count():
        _follow(page, NEXT)
        pages.append(page.locator(codes).all_inner_texts())
        assert 1 <= len(pages[-1]) <= 3
    back = [pages[-1]]
    while page.locator(PREVIOUS).count():
        _follow(page, PREVIOUS)
        back.append(page.locator(codes).all_inner_texts())
    assert back[::-1] == pages, "previous pages must be the pages seen on the way forward"
    shoot(page, "4b-year-first-page-again")
    page.goto(f"{loaded.finance}/years/{YEAR}?rows=1000")
    whole = page.locator(codes).all_inner_texts()
    seen = [code for shown in pages for code in shown]
    assert len(pages) > 2 and seen == whole, "pages of three must add up to the whole year"

    # The balances a page at a time too: the next page holds others.
    page.goto(f"{loaded.finance}/years/{YEAR}?rows=3")
    balance_codes = "#balances table.rows tbody td:first-child code"
    first_balances = page.locator(balance_codes).all_inner_texts()
    _follow(page, "#balance-pages a[rel=next]")
    later = page.locator(balance_codes).all_inner_texts()
    assert len(first_balances) == 3 and later and not set(later) & set(first_balances)

    # Sorting by entitlement, largest first: over the whole year, before paging.
    page.goto(f"{loaded.finance}/years/{YEAR}?rows=3")
    _follow(page, "#sort-entitlement")
    expect(page.locator("select[name=sort]")).to_have_value("-entitlement")
    amounts = "#entitlements tbody tr td:nth-child(6)"
    shown = page.locator(amounts).all_inner_texts()
    while page.locator(NEXT).count():
        _follow(page, NEXT)
        shown += page.locator(amounts).all_inner_texts()
    largest_first = [float(t.replace(",", "")) for t in shown]
    assert len(largest_first) == len(whole)
    assert largest_first == sorted(largest_first, reverse=True), largest_first
    page.goto(f"{loaded.finance}/years/{YEAR}?rows=3")
    first_page = [float(t.replace(",", "")) for t in page.locator(amounts).all_inner_texts()]
    assert largest_first[:3] != first_page, "the first page by amount is not the key order's"
    shoot(page, "4c-year-sorted")

    # The year's balances for Excel, from the year screen's own link.
    href = page.locator("#balances-xlsx").get_attribute("href")
    balances = context.request.get(f"{loaded.finance}{href}")
    assert balances.status == 200 and balances.body()[:2] == b"PK"
    sheet = load_workbook(io.BytesIO(balances.body())).worksheets[0]
    assert [c.value for c in sheet[1]][6:10] == ["应得", "已付", "已追回", "待补拨(+)/待追回(−)"]

    # A beneficiary: its contracts, and the reason in Chinese for one left out.
    (_, category, code), reasons = next((k, v) for k, v in h.EXCLUDED.items() if k[0] == YEAR)
    page.goto(f"{loaded.finance}/years/{YEAR}?rows=1000")
    page.click(f"#entitlements a[href='/years/{YEAR}/beneficiaries/{code}']")
    expect(page.locator("h1")).not_to_be_empty()
    section = page.locator("section.entitlement", has_text=category)
    for registration_no, reason in reasons:
        expect(section).to_contain_text(registration_no)
        expect(section).to_contain_text(REASON_ZH[reason])
    expect(page.locator("main")).to_contain_text("政策版本")
    expect(page.locator("main")).to_contain_text("封顶额")
    shoot(page, "6-beneficiary")

    # The payout draft approved: the receipt gives the position the registry stored it at.
    page.goto(f"{loaded.finance}/years/{YEAR}/payouts/draft")
    shoot(page, "7-draft")
    page.fill("#payout_no", f"ZF-{YEAR + 1}-001")
    page.fill("#paid_on", f"{YEAR + 1}-06-30")
    page.click("form.approve button[type=submit]")
    expect(page.locator("h1")).to_contain_text("付款已记录")
    position = int(page.locator("#receipt-position").inner_text())
    assert position > 0
    shoot(page, "8-receipt")

    # A contract cancelled after that payout: what was paid for it is now to recover.
    with httpx.Client(base_url=loaded.registry, timeout=30) as client:
        _post_all(client, loaded, (h.C08.cancel(f"{YEAR + 1}-07-01"),))
        assert _wait_caught_up(client, loaded) > position
    page.goto(f"{loaded.finance}/years/{YEAR}/beneficiaries/{h.R['credit_code']}")
    owed = page.locator("#balances")
    expect(owed).to_contain_text("待追回")
    expect(owed).to_contain_text("-30,000.00")
    expect(owed).to_contain_text(f"ZF-{YEAR + 1}-001")
    expect(owed).to_contain_text("ContractCancelled")
    shoot(page, "9-to-recover")

    # Nothing came from anywhere but the finance service, which allows nothing else.
    assert requested and all(url.startswith(loaded.finance) for url in requested), {
        url for url in requested if not url.startswith(loaded.finance)
    }
    policy = context.request.get(f"{loaded.finance}/").headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy

    # Sign out: the cookie goes, and the year is closed again.
    page.click(".sign-out button")
    expect(page.locator("#token")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == "tcr_session"]
    page.goto(f"{loaded.finance}/years/{YEAR}")
    expect(page.locator("#token")).to_be_visible()
    context.close()


def test_approving_signing_out_or_in_without_the_forms_secret_is_refused(
    loaded: RunningStack, browser: object
) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{loaded.finance}/")
    page.fill("#token", loaded.tokens["finance"])
    page.click("button[type=submit]")
    sync_api.expect(page.locator(".sign-out .who")).to_have_text("finance")
    before = httpx.get(f"{loaded.registry}/v1/health").json()["head"]

    form = {"payout_no": "ZF-X", "paid_on": "2025-06-30", "basis_position": str(before)}
    for path, fields in (
        (f"/years/{YEAR}/payouts", form),
        (f"/years/{YEAR}/payouts", {**form, "csrf": "forged"}),
        ("/sign-out", {}),
        ("/sign-in", {"token": loaded.tokens["finance"]}),
        ("/sign-in", {"token": loaded.tokens["finance"], "csrf": "forged"}),
    ):
        answer = context.request.post(f"{loaded.finance}{path}", form=fields)
        assert answer.status == 403, f"POST {path} {fields} → {answer.status}"
        assert "表单已失效" in answer.text()

    assert httpx.get(f"{loaded.registry}/v1/health").json()["head"] == before
    page.goto(f"{loaded.finance}/years/{YEAR}")
    sync_api.expect(page.locator(".sign-out .who")).to_have_text("finance")  # still signed in
    context.close()
