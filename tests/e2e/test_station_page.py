"""The station page in a real browser: Debian's chromium driven by Playwright against a real
``tcr registry serve`` process on SQLite. Each screen is photographed at 1,280 and 420 px into
``var/screenshots/`` (never committed) for a person to look at."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from tests.conftest import Tokens, make_tokens
from tests.support.parties import OUTSIDE_ENTERPRISE, contract_body, invoice_body
from tests.support.registry_process import registry_process
from tests.support.workbooks import (
    CONTRACT_HEADERS,
    INVOICE_HEADERS,
    contract_row,
    invoice_row,
    workbook,
)

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
WIDTHS = (1280, 420)
sync_api = pytest.importorskip("playwright.sync_api")

SEEDED = "2024410400000001"  # S1's, with an invoice
OTHERS = "2024410400000099"  # S2's
UPLOADED = "2024410400000777"


@dataclass
class Registry:
    url: str
    tokens: Tokens


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """The registry as a real process, holding one contract of S1's and one of S2's."""
    tokens = make_tokens(tmp_path)
    with registry_process(tmp_path, tokens.path) as url, httpx.Client(base_url=url) as client:
        posts = [
            ("station", "/v1/contracts", contract_body(SEEDED)),
            ("station", f"/v1/contracts/{SEEDED}/invoices", invoice_body()),
            (
                "station",
                "/v1/contracts",
                contract_body("2024410400000002", registered_on="2024-03-02", title="尼龙新材料"),
            ),
            ("other_station", "/v1/contracts", contract_body(OTHERS, station_id="S2")),
        ]
        for who, path, body in posts:
            answer = client.post(path, json=body, headers=tokens.header(who))
            assert answer.status_code == 201, answer.text
        yield Registry(url, tokens)


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make browser installs it)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _photograph(folder: Path, page: object, name: str) -> None:
    """A full-page screenshot at each width; at 420 px the page itself must not scroll
    sideways (wide tables scroll inside their own box)."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})  # type: ignore[attr-defined]
        page.screenshot(path=str(folder / f"station-page-{name}-{width}.png"), full_page=True)  # type: ignore[attr-defined]
        overflow = page.evaluate(  # type: ignore[attr-defined]
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width}px scrolls sideways by {overflow}px"
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})  # type: ignore[attr-defined]


def _sign_in(page: object, url: str, token: str) -> None:
    page.goto(f"{url}/")  # type: ignore[attr-defined]
    page.fill("#token", token)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_a_clerk_finds_a_contract_uploads_a_file_fixes_it_and_finds_what_it_stored(
    registry: Registry, browser: object, screenshots: Path, tmp_path: Path
) -> None:
    expect = sync_api.expect
    shoot = partial(_photograph, screenshots)
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900}, locale="zh-CN")  # type: ignore[attr-defined]
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    # Signing in: a wrong token is refused in Chinese, a station's token opens a session.
    page.goto(f"{registry.url}/")
    shoot(page, "1-sign-in")
    page.fill("#token", "not-a-token")
    with page.expect_navigation() as refused:
        page.click("button[type=submit]")
    assert refused.value is not None and refused.value.status == 401
    expect(page.locator("[role=alert]")).to_contain_text("令牌无效")
    page.fill("#token", registry.tokens.finance)
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("不属于登记机构")
    page.fill("#token", registry.tokens.station)
    page.click("button[type=submit]")
    expect(page.locator(".sign-out .who")).to_contain_text("station-s1")
    (cookie,) = [c for c in context.cookies() if c["name"] == "tcr_station_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert registry.tokens.station not in cookie["value"], "the token must be sealed"

    # My contracts: S1's two, newest first, amounts in 元 with separators; never S2's.
    rows = page.locator("#contracts tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("2024410400000002")
    expect(page.locator("#contracts")).not_to_contain_text(OTHERS)
    expect(rows.nth(1)).to_contain_text("1,200,000.00")
    shoot(page, "2-my-contracts")

    # Paging one row at a time: next, then previous, back where it started.
    page.goto(f"{registry.url}/?rows=1")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("2024410400000002")
    page.click("a[rel=next]")
    expect(rows.first).to_contain_text(SEEDED)
    expect(page.locator("a[rel=next]")).to_have_count(0)
    page.click("a[rel=prev]")
    expect(rows.first).to_contain_text("2024410400000002")

    # Search, then open the contract: parties, amounts, the invoice, its history in the log.
    page.goto(f"{registry.url}/")
    page.fill("input[name=q]", "巡检机器人")
    page.click(".filters button[type=submit]")
    expect(rows).to_have_count(1)
    page.click(f"#contracts a:has-text('{SEEDED}')")
    expect(page.locator("#registration-no")).to_have_text(SEEDED)
    expect(page.locator("#parties")).to_contain_text("平顶山学院")
    expect(page.locator("#amounts")).to_contain_text("1,200,000.00")
    expect(page.locator("#invoices")).to_contain_text("INV-0001")
    expect(page.locator("#invoices")).to_contain_text("600,000.00")
    history = page.locator("#history tbody tr")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text("合同登记")
    expect(history.nth(1)).to_contain_text("发票登记")
    expect(history.nth(1)).to_contain_text("2024-04-01")  # the invoice's own date
    shoot(page, "3-contract")

    # Another station's contract is not found, exactly like one that does not exist.
    other = page.goto(f"{registry.url}/contracts/{OTHERS}")
    assert other is not None and other.status == 404
    expect(page.locator("[role=alert]")).to_contain_text(f"没有登记号为 {OTHERS} 的合同")
    missing = page.goto(f"{registry.url}/contracts/2024410400000404")
    assert missing is not None and missing.status == 404
    shoot(page, "4-not-found")

    # Upload a workbook with mistakes: a bad check character, an invoice over the contract
    # amount, a number used twice in the file. Every one is listed with its row and column.
    page.goto(f"{registry.url}/upload")
    template = context.request.get(f"{registry.url}/template.xlsx")
    assert template.status == 200 and template.body()[:2] == b"PK"
    bad_code = OUTSIDE_ENTERPRISE["credit_code"][:17] + (
        "0" if OUTSIDE_ENTERPRISE["credit_code"][17] != "0" else "1"
    )
    mistaken = workbook(
        {
            "合同": (
                CONTRACT_HEADERS,
                [
                    contract_row(UPLOADED, 买方统一社会信用代码=bad_code),
                    contract_row("2024410400000778"),
                    contract_row("2024410400000778"),
                ],
            ),
            "发票": (INVOICE_HEADERS, [invoice_row(SEEDED, "INV-0002", amount=700000)]),
        }
    )
    path = tmp_path / "登记表.xlsx"
    path.write_bytes(mistaken)
    page.set_input_files("#file", str(path))
    page.click(".upload button[type=submit]")
    problems = page.locator("#problems tbody tr")
    expect(page.locator("[role=alert]")).to_contain_text("未保存任何数据")
    expect(problems).to_have_count(3)
    # (sheet, row, column, rule) of each problem, as the table shows them.
    shown = {
        (c[0].split()[0], c[1], c[2].split()[0], c[3]): c[4]
        for c in (r.split("\t") for r in problems.all_inner_texts())
    }
    assert "校验位" in shown[("合同", "2", "买方统一社会信用代码", "check_character")]
    assert "重复" in shown[("合同", "4", "登记号", "duplicate_in_file")]
    assert any(k[0] == "发票" and k[1] == "2" for k in shown), shown
    expect(page.locator("#commit")).to_have_count(0)
    shoot(page, "5-upload-errors")
    marked_link = page.locator("a[href$='/errors.xlsx']").get_attribute("href")
    marked = context.request.get(f"{registry.url}{marked_link}")
    assert marked.status == 200
    marked_book = load_workbook(io.BytesIO(marked.body()))
    assert any(cell.comment for row in marked_book["合同"].iter_rows() for cell in row)

    # Fixed, it passes the check; committed, it is stored and its positions are shown.
    fixed = workbook(
        {
            "合同": (CONTRACT_HEADERS, [contract_row(UPLOADED), contract_row("2024410400000778")]),
            "发票": (INVOICE_HEADERS, [invoice_row(SEEDED, "INV-0002", amount=600000)]),
        }
    )
    path.write_bytes(fixed)
    page.goto(f"{registry.url}/upload")
    page.set_input_files("#file", str(path))
    page.click(".upload button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("检查无误")
    shoot(page, "6-upload-checked")
    with page.expect_navigation() as stored:
        page.click("#commit")
    assert stored.value is not None and stored.value.status == 201
    expect(page.locator("[role=status]")).to_contain_text("日志位置 5 至 7")
    shoot(page, "7-stored")

    # The new contract is found by search, and its history says it came from the file.
    page.goto(f"{registry.url}/")
    page.fill("input[name=q]", UPLOADED)
    page.click(".filters button[type=submit]")
    expect(rows).to_have_count(1)
    page.click(f"#contracts a:has-text('{UPLOADED}')")
    expect(page.locator("#history")).to_contain_text("表格导入")

    # Signing out ends the session; nothing was fetched from any other origin.
    page.click(".sign-out button[type=submit]")
    expect(page.locator("#token")).to_be_visible()
    assert all(u.startswith(registry.url) for u in requested), [
        u for u in requested if not u.startswith(registry.url)
    ]


def test_the_bureau_sees_every_station_and_forms_need_their_secret(
    registry: Registry, browser: object
) -> None:
    expect = sync_api.expect
    context = browser.new_context(locale="zh-CN")  # type: ignore[attr-defined]
    page = context.new_page()

    # A sign-in not posted from the page's own form is refused, even with a good token.
    forged = context.request.post(
        f"{registry.url}/sign-in", form={"token": registry.tokens.station}, max_redirects=0
    )
    assert forged.status == 403
    assert not [c for c in context.cookies() if c["name"] == "tcr_station_session"]

    _sign_in(page, registry.url, registry.tokens.bureau)
    rows = page.locator("#contracts tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#contracts")).to_contain_text(OTHERS)
    page.fill("input[name=station]", "S2")
    page.click(".filters button[type=submit]")
    expect(rows).to_have_count(1)
    page.goto(f"{registry.url}/contracts/{OTHERS}")
    expect(page.locator("#registration-no")).to_have_text(OTHERS)

    # Forms without the session's secret are refused, and a bad filter is named.
    upload = context.request.post(
        f"{registry.url}/upload", multipart={"file": {"name": "x.csv", "mimeType": "text/csv",
                                                      "buffer": b"a,b\n"}},
    )  # fmt: skip
    assert upload.status == 403
    signed_out = context.request.post(f"{registry.url}/sign-out", form={"csrf": "x"})
    assert signed_out.status == 403
    page.goto(f"{registry.url}/?registered_from=2024-02-30")
    expect(page.locator("[role=alert]")).to_contain_text("YYYY-MM-DD")
