"""Finance's exports (XLSX and CSV) and the one-beneficiary explanation, through the API over a
real SQLite file and a real PostgreSQL database holding a hand-worked history.

The history, turnover year 2024 (amounts in yuan):

- contract A, bought by a local firm whose name starts with "=" from an outside seller, with
  brokers B-1 and B-2: paid 600,000.00 in 2024 (and 400,000.00 in 2025), invoiced 500,000.01
  by 1 March 2025 and 99,999.99 more on 1 June 2025; contract amount 1,200,000.00. Evidenced in
  2024: min(600,000.00, 500,000.01, 1,200,000.00) = 500,000.01 as of 31 March 2025, then
  min(600,000.00, 600,000.00, 1,200,000.00) = 600,000.00; each broker's half 250,000.005, then
  300,000.00.
- contract B, the same buyer from a local university: 100,000.00 settled. Excluded from the
  buyer's absorption (seller local); the university's output, 10% = 10,000.00.
- contract C, the same buyer from a related outside firm: 50,000.00 settled, excluded.
- contract D, registered 2023, bought by a firm whose credit code is all digits: paid and
  invoiced 300,000.00 in 2023, paid 200,000.00 more in 2024; contract amount 800,000.00. In
  2024: min(500,000.00, 500,000.00, 800,000.00) − 300,000.00 counted in 2023 = 200,000.00.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from openpyxl.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

from services.common.policy.model import Invoice, Party
from services.subsidy.application import Subsidy
from services.subsidy.store import EntryStore
from services.subsidy.workbook_cache import WorkbookCache
from tests.conftest import Tokens
from tests.support.finance import finance_client
from tests.support.parties import credit_code
from tests.support.policy_facts import (
    LOCAL_UNIVERSITY,
    OUTSIDE_FIRM,
    OUTSIDE_FIRM_SH,
    YUAN,
    broker,
    broker_filed,
    contract,
    contract_events,
    invoice_recorded,
    numbered,
    party,
)

YEAR = 2024
FORMULA = '=HYPERLINK("http://example.invalid","点击")'
FORMULA_FIRM = party("enterprise", "410403", 77, FORMULA)
DIGITS_FIRM = Party(
    credit_code("91410482000000000"), "汝州数字材料有限公司", "enterprise", "410482"
)
assert DIGITS_FIRM.credit_code.isdigit()  # what Excel shows as 9.14105E+17 unless it is text

A, B, C, D = "2024410400000001", "2024410400000002", "2024410400000003", "2023410400000004"
CONTRACT_A = contract(
    A,
    buyer=FORMULA_FIRM,
    brokers=("B-1", "B-2"),
    proofs=[(date(2024, 5, 1), 600_000 * YUAN), (date(2025, 2, 1), 400_000 * YUAN)],
    invoices=[(date(2024, 5, 1), 500_000 * YUAN + 1)],
)
LATE_INVOICE = Invoice("INV-A-LATE", date(2025, 5, 1), 100_000 * YUAN - 1)
CONTRACT_B = contract(
    B,
    seller=LOCAL_UNIVERSITY,
    buyer=FORMULA_FIRM,
    amount_fen=100_000 * YUAN,
    settled=[(date(2024, 6, 1), 100_000 * YUAN)],
)
CONTRACT_C = contract(
    C,
    seller=OUTSIDE_FIRM_SH,
    buyer=FORMULA_FIRM,
    related_party=True,
    settled=[(date(2024, 7, 1), 50_000 * YUAN)],
)
CONTRACT_D = contract(
    D,
    seller=OUTSIDE_FIRM,
    buyer=DIGITS_FIRM,
    registered_on=date(2023, 6, 1),
    amount_fen=800_000 * YUAN,
    invoices=[(date(2023, 12, 1), 500_000 * YUAN)],
    proofs=[(date(2023, 12, 1), 300_000 * YUAN), (date(2024, 3, 1), 200_000 * YUAN)],
)

FIRST = numbered(
    [
        broker_filed(broker("B-1", date(2024, 1, 15))),
        broker_filed(broker("B-2", date(2024, 1, 15))),
        *(e for c in (CONTRACT_A, CONTRACT_B, CONTRACT_C, CONTRACT_D) for e in contract_events(c)),
    ],
    recorded_at="2025-03-01T02:00:00.000000Z",
)
LATER = numbered(
    [invoice_recorded(CONTRACT_A, LATE_INVOICE)],
    after=FIRST[-1],
    recorded_at="2025-06-01T02:00:00.000000Z",
)
HEAD = LATER[-1]["position"]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def client(database_url: str, tokens: Tokens) -> Iterator[TestClient]:
    """The finance API over a store that applied the whole history (SQLite and PostgreSQL)."""
    store = EntryStore(database_url)
    try:
        store.add(FIRST + LATER)
    finally:
        store.close()
    with finance_client(database_url, tokens) as test_client:
        yield test_client


def workbook(client: TestClient, **params: Any) -> tuple[Worksheet, Worksheet]:
    response = client.get("/v1/entitlements.xlsx", params={"year": YEAR, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX_TYPE
    book = load_workbook(io.BytesIO(response.content))
    entitlements, contracts = book.worksheets
    return entitlements, contracts


def by_beneficiary(sheet: Worksheet) -> dict[tuple[str, str], tuple[Cell, ...]]:
    """Data rows (below both header rows, above the totals) by (category, beneficiary)."""
    return {
        (str(row[3].value), str(row[1].value)): row
        for row in sheet.iter_rows(min_row=3)
        if not str(row[1].value).startswith(("合计", "总计"))
    }


def amount(cell: Cell) -> Decimal:
    """A number cell's amount, exact to the fen (openpyxl reads numbers as floats)."""
    assert cell.data_type == "n", cell
    assert cell.number_format == "#,##0.00", cell.number_format
    return Decimal(str(cell.value)).quantize(Decimal("0.01"))


def csv_rows(client: TestClient, **params: Any) -> list[list[str]]:
    response = client.get("/v1/entitlements.csv", params={"year": YEAR, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


# -- the workbook ---------------------------------------------------------------------------


def test_the_workbook_has_chinese_headers_over_english_and_keeps_both_in_view(
    client: TestClient,
) -> None:
    entitlements, contracts = workbook(client)
    head = [[c.value for c in row] for row in entitlements.iter_rows(max_row=2)]
    assert head[0][:4] == ["年度", "受益人统一社会信用代码", "名称", "类别"]
    assert head[1][:4] == ["year", "beneficiary", "name", "category"]
    assert "补助金额" in head[0] and "entitlement" in head[1]
    assert head[0][head[1].index("turnover")] == "认定成交额"
    assert all(str(h).isascii() for h in head[1])
    assert not any(str(h).isascii() for h in head[0])
    sub = [[c.value for c in row] for row in contracts.iter_rows(max_row=2)]
    assert sub[0][4] == "登记号" and sub[1][4] == "registration no"
    assert entitlements.freeze_panes == contracts.freeze_panes == "A3"
    assert entitlements.column_dimensions["B"].width >= 18  # a credit code is readable


def test_codes_and_numbers_are_text_and_amounts_are_numbers_with_two_decimals(
    client: TestClient,
) -> None:
    entitlements, contracts = workbook(client)
    row = by_beneficiary(entitlements)[("技术吸纳", DIGITS_FIRM.credit_code)]
    code = row[1]
    assert code.value == DIGITS_FIRM.credit_code and code.data_type == "s"
    assert code.number_format == "@"
    assert [c.value for c in row[2:6]] == [DIGITS_FIRM.name, "技术吸纳", "410482", "汝州市"]
    assert [amount(c) for c in row[6:9]] == [
        Decimal("200000.00"), Decimal("20000.00"), Decimal("20000.00"),
    ]  # fmt: skip
    assert row[9].value == "否"  # not capped
    (d_row,) = [r for r in contracts.iter_rows(min_row=3) if r[4].value == D]
    assert d_row[4].data_type == "s" and d_row[4].number_format == "@"
    assert amount(d_row[5]) == Decimal("200000.00")


def test_the_workbooks_rows_and_totals_are_the_answers(client: TestClient) -> None:
    answer = client.get("/v1/entitlements", params={"year": YEAR}).json()
    entitlements, _ = workbook(client)
    rows = by_beneficiary(entitlements)
    labels = {"absorption": "技术吸纳", "output": "技术输出", "broker": "技术经纪人",
              "one_time": "一次性补助"}  # fmt: skip
    assert {
        (labels[e["category"]], e["beneficiary"]): [e["turnover"], e["gross"], e["entitlement"]]
        for e in answer["entitlements"]
    } == {key: [f"{amount(c)}" for c in row[6:9]] for key, row in rows.items()}
    totals = {str(row[1].value): row for row in entitlements.iter_rows(min_row=3) if row[1].value}
    for category, total in answer["totals"].items():
        row = totals[f"合计 {labels[category]}"]
        assert [f"{amount(c)}" for c in row[6:9]] == [
            total["turnover"], total["gross"], total["entitlement"],
        ]  # fmt: skip
    grand = totals["总计"]
    assert [f"{amount(c)}" for c in grand[6:9]] == ["1500000.00", "96000.00", "96000.00"]
    assert grand[10].value == 5  # contracts counted: A (buyer and two brokers), B, D
    assert {row[12].value for row in rows.values()} == {HEAD}  # computed at the head


def test_a_name_that_would_start_a_formula_is_text_in_the_workbook_and_the_csv(
    client: TestClient,
) -> None:
    entitlements, contracts = workbook(client)
    row = by_beneficiary(entitlements)[("技术吸纳", FORMULA_FIRM.credit_code)]
    assert row[2].value == "'" + FORMULA and row[2].data_type == "s"
    names = {r[2].value for r in contracts.iter_rows(min_row=3)}
    assert "'" + FORMULA in names and FORMULA not in names
    cells = [c for r in entitlements.iter_rows() for c in r]
    assert not any(c.data_type == "f" for c in cells)
    (line,) = [r for r in csv_rows(client) if r[1] == FORMULA_FIRM.credit_code]
    assert line[2] == "'" + FORMULA
    assert line[8] == "60000.00"  # amounts stay numbers


def test_an_export_as_of_an_earlier_day_shows_what_was_known_that_day(
    client: TestClient,
) -> None:
    then, _ = workbook(client, as_of="2025-03-31")
    at_position, _ = workbook(client, position=FIRST[-1]["position"])
    now, _ = workbook(client)
    earlier, later = by_beneficiary(then), by_beneficiary(now)
    key = ("技术吸纳", FORMULA_FIRM.credit_code)
    assert amount(earlier[key][6]) == Decimal("500000.01")  # before the late invoice
    assert amount(earlier[key][8]) == Decimal("50000.00")
    assert amount(later[key][6]) == Decimal("600000.00")
    assert amount(earlier[("技术经纪人", "B-1")][6]) == Decimal("250000.01")  # half of 500,000.01
    assert amount(earlier[("技术经纪人", "B-1")][8]) == Decimal("2500.00")
    assert {row[12].value for row in earlier.values()} == {FIRST[-1]["position"]}
    assert [[c.value for c in r] for r in then.iter_rows()] == [
        [c.value for c in r] for r in at_position.iter_rows()
    ]
    lines = csv_rows(client, as_of="2025-03-31")
    (line,) = [r for r in lines if r[1] == FORMULA_FIRM.credit_code]
    assert line[6] == "500000.01"


def test_min_amount_leaves_smaller_entitlements_out_of_both_sheets_but_not_the_totals(
    client: TestClient,
) -> None:
    entitlements, contracts = workbook(client, min_amount="10000.00")
    assert sorted(by_beneficiary(entitlements)) == sorted(
        [
            ("技术吸纳", FORMULA_FIRM.credit_code),
            ("技术吸纳", DIGITS_FIRM.credit_code),
            ("技术输出", LOCAL_UNIVERSITY.credit_code),
        ]
    )
    assert {r[1].value for r in contracts.iter_rows(min_row=3)} == {
        FORMULA_FIRM.credit_code, DIGITS_FIRM.credit_code, LOCAL_UNIVERSITY.credit_code,
    }  # fmt: skip
    (grand,) = [r for r in entitlements.iter_rows(min_row=3) if r[1].value == "总计"]
    assert amount(grand[8]) == Decimal("96000.00")  # the brokers' 6,000.00 still in it
    lines = csv_rows(client, min_amount="10000.00", sheet="contracts")
    assert {r[1] for r in lines[2:]} == {
        FORMULA_FIRM.credit_code, DIGITS_FIRM.credit_code, LOCAL_UNIVERSITY.credit_code,
    }  # fmt: skip


def test_a_year_with_nothing_entitled_exports_headers_and_zero_totals(
    client: TestClient,
) -> None:
    entitlements, contracts = workbook(client, year=2021)
    rows = [[c.value for c in r] for r in entitlements.iter_rows(min_row=3)]
    assert [r[1] for r in rows] == [
        "合计 技术吸纳", "合计 技术输出", "合计 技术经纪人", "合计 一次性补助", "总计",
    ]  # fmt: skip
    assert all(r[8] == 0 for r in rows)
    assert contracts.max_row == 2


def test_the_files_are_named_for_the_year_in_ascii_and_in_chinese(client: TestClient) -> None:
    response = client.get("/v1/entitlements.xlsx", params={"year": YEAR})
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="entitlements-2024.xlsx"')
    assert f"filename*=UTF-8''{quote('技术转移补助-2024年度.xlsx')}" in disposition
    sheet = client.get("/v1/entitlements.csv", params={"year": YEAR, "sheet": "contracts"})
    assert 'filename="entitlements-2024-contracts.csv"' in sheet.headers["content-disposition"]


def sheet_values(chunks: Iterator[bytes]) -> list[list[list[Any]]]:
    book = load_workbook(io.BytesIO(b"".join(chunks)))
    return [[[c.value for c in row] for row in sheet.iter_rows()] for sheet in book.worksheets]


# Contract E: 2023's only (registered, invoiced and paid in 2023), so it changes no 2024 row.
CONTRACT_E = contract(
    "2023410400000005",
    seller=OUTSIDE_FIRM,
    buyer=DIGITS_FIRM,
    registered_on=date(2023, 7, 1),
    amount_fen=90_000 * YUAN,
    settled=[(date(2023, 8, 1), 90_000 * YUAN)],
)


def test_a_kept_workbook_is_read_back_after_other_years_entries_and_written_after_its_own(
    database_url: str, tmp_path: Path
) -> None:
    other_year = numbered(
        contract_events(CONTRACT_E), after=FIRST[-1], recorded_at="2025-04-01T02:00:00.000000Z"
    )
    late = numbered(
        [invoice_recorded(CONTRACT_A, LATE_INVOICE)],
        after=other_year[-1],
        recorded_at="2025-06-01T02:00:00.000000Z",
    )
    store = EntryStore(database_url)
    kept = tmp_path / "exports"
    try:
        store.add(FIRST)
        subsidy = Subsidy(store, store.schedule, workbooks=WorkbookCache(kept))
        before = sheet_values(subsidy.xlsx(YEAR))
        written = set(kept.glob("*.xlsx"))
        store.add(other_year)
        assert sheet_values(subsidy.xlsx(YEAR)) == before
        assert set(kept.glob("*.xlsx")) == written  # read back: 2024 is as it was
        lines = list(csv.reader(io.StringIO(b"".join(subsidy.csv(YEAR)).decode("utf-8-sig"))))
        _, contracts_2023 = sheet_values(subsidy.xlsx(2023))
        assert CONTRACT_E.registration_no in {r[4] for r in contracts_2023}
        assert len(list(kept.glob("*.xlsx"))) == 2  # 2023's, which changed, written
        store.add(late)
        after = sheet_values(subsidy.xlsx(YEAR))
        assert len(list(kept.glob("*.xlsx"))) == 3  # 2024 changed: written anew
        then = sheet_values(subsidy.xlsx(YEAR, position=other_year[-1]["position"]))
        assert len(list(kept.glob("*.xlsx"))) == 3
    finally:
        store.close()
    assert then == before
    # Each states the position of 2024's last change, not the head it was asked at.
    (row,) = [r for r in before[0] if r[1] == FORMULA_FIRM.credit_code]
    assert (row[6], row[12]) == (500_000.01, FIRST[-1]["position"])
    assert before[0][1][12] == "position of the year's last change"
    assert lines[1][12] == "position of the year's last change"
    (line,) = [r for r in lines if r[1] == FORMULA_FIRM.credit_code]
    assert (line[6], line[12]) == ("500000.01", str(FIRST[-1]["position"]))
    (row,) = [r for r in after[0] if r[1] == FORMULA_FIRM.credit_code]
    assert (row[6], row[12]) == (600_000, late[-1]["position"])  # the late invoice


# -- the CSV --------------------------------------------------------------------------------


def test_the_csv_has_the_workbooks_columns_one_row_per_entitlement_and_the_totals(
    client: TestClient,
) -> None:
    lines = csv_rows(client)
    entitlements, _ = workbook(client)
    sheet = [["" if c.value is None else str(c.value) for c in r] for r in entitlements.iter_rows()]
    assert lines[:2] == sheet[:2]
    answer = client.get("/v1/entitlements", params={"year": YEAR}).json()
    data = [r for r in lines[2:] if not r[1].startswith(("合计", "总计"))]
    assert len(data) == len(answer["entitlements"]) == 5
    assert {(r[3], r[1]): r[8] for r in data} == {
        ("技术吸纳", FORMULA_FIRM.credit_code): "60000.00",
        ("技术吸纳", DIGITS_FIRM.credit_code): "20000.00",
        ("技术输出", LOCAL_UNIVERSITY.credit_code): "10000.00",
        ("技术经纪人", "B-1"): "3000.00",
        ("技术经纪人", "B-2"): "3000.00",
    }
    assert lines[-1][1] == "总计" and lines[-1][8] == "96000.00"
    assert all(";" not in cell for r in lines for cell in r)  # no contracts packed in a cell


def test_the_contracts_sheet_lists_every_contract_counted_or_excluded_with_its_reason(
    client: TestClient,
) -> None:
    lines = csv_rows(client, sheet="contracts")
    assert lines[0][4:] == ["登记号", "认定金额", "是否计入", "未计入原因", "原因代码"]
    assert lines[1][4:] == [
        "registration no", "evidenced", "counted", "excluded reason", "reason code",
    ]  # fmt: skip
    rows = {(r[3], r[1], r[4]): r[5:] for r in lines[2:]}
    buyer = FORMULA_FIRM.credit_code
    assert rows == {
        ("技术吸纳", buyer, A): ["600000.00", "是", "", ""],
        ("技术吸纳", buyer, B): ["100000.00", "否", "卖方为本市单位，不属技术吸纳", "seller_local"],
        ("技术吸纳", buyer, C): ["50000.00", "否", "关联企业间交易", "related_party"],
        ("技术吸纳", DIGITS_FIRM.credit_code, D): ["200000.00", "是", "", ""],
        ("技术输出", LOCAL_UNIVERSITY.credit_code, B): ["100000.00", "是", "", ""],
        ("技术经纪人", "B-1", A): ["300000.00", "是", "", ""],
        ("技术经纪人", "B-2", A): ["300000.00", "是", "", ""],
    }
    _, contracts = workbook(client)
    assert len(list(contracts.iter_rows(min_row=3))) == len(rows)


# -- the explanation ------------------------------------------------------------------------


def explanation(client: TestClient, beneficiary: str) -> dict[str, Any]:
    response = client.get(f"/v1/entitlements/{beneficiary}", params={"year": YEAR})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["position"] == HEAD
    (entitlement,) = body["entitlements"]
    return dict(entitlement)


def test_the_explanation_gives_paid_invoiced_ceiling_and_evidenced_per_contract(
    client: TestClient,
) -> None:
    e = explanation(client, FORMULA_FIRM.credit_code)
    assert (e["rate"], e["cap"], e["ceiling_basis"]) == ("0.1", "500000.00", "contract_amount")
    assert (e["policy_version"], e["position"]) == ("pingdingshan-2020.1", HEAD)
    assert (e["turnover"], e["gross"], e["entitlement"]) == ("600000.00", "60000.00", "60000.00")
    assert e["contracts"] == [
        {
            "registration_no": A,
            "paid": "600000.00",  # the 400,000.00 of 2025 is not paid by 31 Dec 2024
            "invoiced": "600000.00",
            "ceiling": "1200000.00",
            "counted_before": "0.00",
            "evidenced": "600000.00",
            "brokers": None,
            "share": "600000.00",
        }
    ]
    excluded = {x["registration_no"]: x for x in e["excluded"]}
    assert excluded[C] == {
        "registration_no": C,
        "paid": "50000.00",
        "invoiced": "50000.00",
        "ceiling": "1200000.00",
        "counted_before": "0.00",
        "evidenced": "50000.00",
        "brokers": None,
        "share": "50000.00",
        "reason": "related_party",
        "reason_zh": "关联企业间交易",
    }
    assert excluded[B]["reason"] == "seller_local"
    assert excluded[B]["reason_zh"] == "卖方为本市单位，不属技术吸纳"


def test_the_explanation_shows_what_earlier_years_already_counted(client: TestClient) -> None:
    e = explanation(client, DIGITS_FIRM.credit_code)
    assert (e["county"], e["county_name"]) == ("410482", "汝州市")
    (d,) = e["contracts"]
    assert (d["paid"], d["invoiced"], d["ceiling"]) == ("500000.00", "500000.00", "800000.00")
    assert (d["counted_before"], d["evidenced"]) == ("300000.00", "200000.00")
    assert e["entitlement"] == "20000.00"


def test_a_broker_sees_the_contract_split_and_among_how_many(client: TestClient) -> None:
    e = explanation(client, "B-1")
    (a,) = e["contracts"]
    assert (a["evidenced"], a["brokers"], a["share"]) == ("600000.00", 2, "300000.00")
    assert (e["rate"], e["cap"]) == ("0.01", "200000.00")
    assert (e["turnover"], e["entitlement"]) == ("300000.00", "3000.00")


def test_the_list_gives_each_exclusion_its_reason_in_chinese(client: TestClient) -> None:
    params = {"year": YEAR, "category": "absorption", "include": "claims"}
    body = client.get("/v1/entitlements", params=params).json()
    (buyer,) = [e for e in body["entitlements"] if e["beneficiary"] == FORMULA_FIRM.credit_code]
    assert sorted((x["reason"], x["reason_zh"]) for x in buyer["excluded"]) == [
        ("related_party", "关联企业间交易"),
        ("seller_local", "卖方为本市单位，不属技术吸纳"),
    ]


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/v1/entitlements.xlsx", {"year": 2019}, 404, "year"),
        ("/v1/entitlements.csv", {"year": 2026}, 404, "year"),
        ("/v1/entitlements.xlsx", {"year": YEAR, "as_of": "2025-02-30"}, 422, "as_of"),
        ("/v1/entitlements.csv", {"year": YEAR, "as_of": "yesterday"}, 422, "as_of"),
        ("/v1/entitlements.xlsx", {"year": YEAR, "as_of": "2025-03-31", "position": 1}, 422,
         "position"),
        ("/v1/entitlements.xlsx", {"year": YEAR, "position": HEAD + 1}, 422, "position"),
        ("/v1/entitlements", {"year": YEAR, "cursor": "not-a-cursor"}, 422, "cursor"),
        ("/v1/entitlements", {"year": YEAR, "min_amount": "-5"}, 422, "min_amount"),
        ("/v1/entitlements.xlsx", {"year": YEAR, "min_amount": "1.234"}, 422, "min_amount"),
        ("/v1/entitlements/91110000MA0000999X", {"year": YEAR}, 404, "beneficiary"),
    ],
    ids=["xlsx-year", "csv-year", "no-such-day", "word", "both", "beyond", "cursor", "amount",
         "xlsx-amount", "unknown"],
)  # fmt: skip
def test_refusals_say_in_chinese_and_english_which_field_broke_which_rule(
    client: TestClient, path: str, params: dict[str, Any], status: int, field: str
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["field"] == field
    assert body["message"]
    assert body["message_zh"] and not body["message_zh"].isascii()
