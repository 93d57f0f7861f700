"""Spreadsheet cells as the API's fields: amounts exact to the fen, codes typed as numbers only
when Excel holds them exactly, dates as date cells or YYYY-MM-DD."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from services.registry.imports.cells import CellProblem, code, flag, iso_date, yuan
from services.registry.imports.columns import SHEETS, column_named


@pytest.mark.parametrize(
    ("cell", "scale", "expected"),
    [
        (1200000, 1, "1200000.00"),
        (600000.5, 1, "600000.50"),
        (0.1 + 0.2, 1, None),  # 0.30000000000000004: not what anyone typed, refused
        ("1,200,000.10", 1, "1200000.10"),
        (120.0001, 10_000, "1200001.00"),
        (123.45678, 10_000, "1234567.80"),
        ("0.000001", 10_000, "0.01"),
        (120.0000001, 10_000, None),
        ("12.345", 1, None),
    ],
)
def test_amounts_are_exact_to_the_fen_or_refused(cell: object, scale: int, expected: str) -> None:
    if expected is None:
        with pytest.raises(CellProblem) as refused:
            yuan(cell, scale)
        assert refused.value.rule == "amount_precision"
    else:
        assert yuan(cell, scale) == expected


def test_codes_typed_as_numbers_are_taken_only_when_excel_holds_them_exactly() -> None:
    assert code(410402) == "410402"
    assert code(410402.0) == "410402"
    assert code(" 91410400MA0000002G ") == "91410400MA0000002G"
    for inexact in (2024410400000001, 2.0244104e15 + 0.5, 4104.5, -1):
        with pytest.raises(CellProblem) as refused:
            code(inexact)
        assert refused.value.rule == "exact_number" and refused.value.message_zh


def test_dates_are_date_cells_or_text() -> None:
    assert iso_date(datetime(2024, 3, 1)) == "2024-03-01"
    assert iso_date(date(2024, 3, 1)) == "2024-03-01"
    assert iso_date(" 2024-03-01 ") == "2024-03-01"
    with pytest.raises(CellProblem):
        iso_date(datetime(2024, 3, 1, 9, 30))
    with pytest.raises(CellProblem):
        iso_date(45352)


def test_related_party_reads_yes_and_no_in_chinese_or_english() -> None:
    assert (flag("是"), flag("否"), flag("TRUE"), flag(False)) == (True, False, True, False)
    with pytest.raises(CellProblem):
        flag("可能")


def test_headers_are_matched_in_chinese_english_and_wan_yuan_ignoring_width() -> None:
    contract_amount = next(c for c in SHEETS["合同"] if c.field == "contract_amount")
    assert column_named("合同", "合同成交额（元）") == (contract_amount, 1)
    assert column_named("合同", "合同成交额(元)") == (contract_amount, 1)
    assert column_named("合同", "合同成交额（万元）") == (contract_amount, 10_000)
    assert column_named("合同", "contract_amount") == (contract_amount, 1)
    assert column_named("合同", "Seller.Credit_Code") is not None
    assert column_named("合同", "发票号码") is None
