"""The streaming sheet reader gives what openpyxl gives: text, numbers, dates from date
styles, booleans, empty cells where a row skips columns."""

from __future__ import annotations

import io
import zipfile
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


def test_an_inline_string_of_runs_reads_as_its_text_without_its_phonetic_guide() -> None:
    sheet_xml = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<sheetData>"
        '<row r="1"><c r="A1" t="inlineStr"><is><r><t>平顶</t></r><r><t xml:space="preserve">'
        '山 </t></r><rPh sb="0" eb="2"><t>ピンディン</t></rPh></is></c>'
        '<c r="C1" t="inlineStr"><is><t>R-1</t></is></c><c r="D1" t="inlineStr"/></row>'
        '<row r="3"><c r="B3"><v>2.5</v></c><c r="C3" t="str"><f>A1</f><v>平顶山 </v></c></row>'
        "</sheetData></worksheet>"
    )
    data = _with_sheet(saved(write_only=True), "xl/worksheets/sheet1.xml", sheet_xml)
    book = Workbook(data)
    try:
        rows = list(book.rows("合同"))
    finally:
        book.close()

    assert rows == [(1, ("平顶山 ", None, "R-1", None)), (3, (None, 2.5, "平顶山 "))]


def _with_sheet(data: bytes, name: str, xml: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = xml.encode() if item.filename == name else source.read(item.filename)
            target.writestr(item, body)
    return out.getvalue()
