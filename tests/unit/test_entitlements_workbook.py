"""The entitlements workbook as Excel reads it: whatever a name or code holds, it stays text,
never a formula, a link or a number; amounts are numbers to the fen; codes keep their digits."""

from __future__ import annotations

import io
from decimal import Decimal
from fractions import Fraction

import pytest
from openpyxl import load_workbook
from openpyxl.utils.escape import unescape
from openpyxl.worksheet.worksheet import Worksheet

from services.common.spreadsheet import safe_cell
from services.subsidy.exports import Export, write_xlsx
from services.subsidy.projection import ClaimValue, EntitlementValue
from services.subsidy.reads import Row

NAMES = [
    '=HYPERLINK("http://example.invalid","点击")',
    "+1+1",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "http://example.invalid/a",  # a link only if someone clicks it in the text
    "-12.50",  # a name that is a number stays the text it is
    "00120",
    "汝州数字材料有限公司",
    "A & B <研究院>",  # XML's own characters
    " 前后有空格 ",  # kept, spaces and all
    "_x0041_",  # what Excel would read as an escape stays these seven characters
]
CODE = "914104820000000001"  # all digits: Excel shows 9.14105E+17 unless the cell is text


def sheets(names: list[str]) -> tuple[Worksheet, Worksheet]:
    rows = [
        Row(
            (2024, "absorption", f"{CODE[:-2]}{i:02d}"),
            EntitlementValue(name, "410482", f"R{i}", 1, Fraction(2_000_001, 2), 100_000, 100_000),
            [(f"00{i}", ClaimValue(name, "410482", Fraction(2_000_001, 2), None))],
        )
        for i, name in enumerate(names)
    ]
    out = io.BytesIO()
    write_xlsx(Export(2024, "pingdingshan-2020.1", 42, {}, rows), out)
    book = load_workbook(io.BytesIO(out.getvalue()))
    entitlements, contracts = book.worksheets
    return entitlements, contracts


@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_a_name_is_text_in_both_sheets_and_one_that_would_start_a_formula_is_quoted(
    name: str,
) -> None:
    entitlements, contracts = sheets([name])
    for sheet in (entitlements, contracts):
        cell = sheet.cell(row=3, column=3)
        assert cell.data_type == "s", (sheet.title, cell.data_type)
        # A control character is stored as Excel stores it (_x000D_), which openpyxl leaves.
        assert unescape(str(cell.value)) == safe_cell(name)
        assert cell.hyperlink is None
    assert safe_cell(name).startswith("'") == name.startswith(("=", "+", "@", "\t", "\r", "-2"))


def test_codes_stay_text_amounts_are_numbers_to_the_fen_and_counts_are_numbers() -> None:
    entitlements, contracts = sheets(["汝州数字材料有限公司"])
    row = [c for c in entitlements[3]]
    assert (row[1].value, row[1].data_type, row[1].number_format) == (CODE[:-2] + "00", "s", "@")
    assert (row[4].value, row[4].number_format) == ("410482", "@")
    turnover = row[6]
    assert turnover.data_type == "n" and turnover.number_format == "#,##0.00"
    assert Decimal(str(turnover.value)) == Decimal("10000.01")  # 1,000,000.5 fen, half up
    assert (row[0].value, row[10].value, row[12].value) == (2024, 1, 42)
    number = contracts.cell(row=3, column=5)
    assert (number.value, number.data_type, number.number_format) == ("000", "s", "@")
    assert not any(c.data_type == "f" for r in entitlements.iter_rows() for c in r)


def test_the_totals_rows_are_bold_and_keep_the_columns_formats() -> None:
    entitlements, _ = sheets(["汝州数字材料有限公司"])
    *_, grand = entitlements.iter_rows(min_row=3)
    assert grand[1].value == "总计" and grand[1].font.bold
    assert grand[8].font.bold and grand[8].number_format == "#,##0.00"
    assert [c.value for c in entitlements[1]][:2] == ["年度", "受益人统一社会信用代码"]
    assert all(c.font.bold for c in entitlements[2])


def test_a_name_longer_than_a_cell_holds_is_cut_to_what_excel_keeps() -> None:
    entitlements, contracts = sheets(["研" * 40_000])
    for sheet in (entitlements, contracts):
        assert sheet.cell(row=3, column=3).value == "研" * 32_767
