"""The streaming sheet reader gives what openpyxl gives: text, numbers, dates from date
styles, booleans, empty cells where a row skips columns."""

from __future__ import annotations

import io
from datetime import date, datetime

from openpyxl import Workbook as OpenpyxlWorkbook
from openpyxl import load_workbook

from services.registry.imports.xlsx import Workbook


def saved(write_only: bool) -> bytes:
    book = OpenpyxlWorkbook(write_only=write_only)
    if not write_only:
        first = book.active
        assert first is not None
        book.remove(first)
    sheet = book.create_sheet("合同")
    sheet.append(["登记号", "登记日期", "金额", "关联交易", None, "备注"])
    sheet.append(["R-1", date(2024, 3, 1), 600000.5, True, None, "平顶山"])
    sheet.append([])
    sheet.append([2024, datetime(2024, 3, 1, 9, 30), 1200000, False, None, None])
    book.create_sheet("说明").append(["x"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_rows_read_as_openpyxl_reads_them_from_either_kind_of_workbook() -> None:
    for write_only in (False, True):
        data = saved(write_only)
        book = Workbook(data)
        try:
            assert list(book.sheets) == ["合同", "说明"]
            ours = [(n, _trimmed(values)) for n, values in book.rows("合同")]
        finally:
            book.close()
        reference = load_workbook(io.BytesIO(data), read_only=True, data_only=True)["合同"]
        theirs = [
            (n, _trimmed(values))
            for n, values in enumerate(reference.iter_rows(values_only=True), start=1)
            if any(v is not None for v in values)
        ]
        assert [r for r in ours if r[1]] == theirs
        assert ours[1] == (2, ("R-1", datetime(2024, 3, 1), 600000.5, True, None, "平顶山"))


def _trimmed(values: tuple[object, ...]) -> tuple[object, ...]:
    values = tuple(values)
    while values and values[-1] is None:
        values = values[:-1]
    return values
