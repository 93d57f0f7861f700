"""Reading an uploaded file: an XLSX workbook (streaming, :mod:`.xlsx`) or one CSV sheet, into
rows of cells under their headers, each sheet's rows read as they are asked for. The file as a
whole is refused here: not a spreadsheet, over 20 MiB, a sheet of more than 50,000 data rows,
a sheet nobody knows."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from services.common.errors import Invalid, TooLarge
from services.registry.imports.columns import SHEET_ENGLISH, SHEETS, normal, sheet_named
from services.registry.imports.xlsx import Workbook

MAX_BYTES = 20 * 1024 * 1024
# Per sheet, not per file: a file of 20,000 contracts with an invoice and a transfer proof each
# (60,000 rows) is the size the registry is built to take in one piece.
MAX_ROWS = 50_000
_SHEETS_WORDS = "、".join(SHEETS)


@dataclass
class RawSheet:
    """One sheet: its headers (row ``header_row``) and its non-empty data rows."""

    name: str  # 合同, 发票 or 转账凭证
    title: str  # as the file names it
    header_row: int
    headers: list[str]
    # (row number, cells): a list, or from each_sheet the rows as they are read
    rows: Iterable[tuple[int, tuple[Any, ...]]] = field(default_factory=list)


def is_xlsx(data: bytes, filename: str) -> bool:
    return data[:4] == b"PK\x03\x04" or filename.lower().endswith((".xlsx", ".xlsm"))


def read_sheets(data: bytes, filename: str, sheet: str | None = None) -> list[RawSheet]:
    """The sheets of an upload in the order 合同, 发票, 转账凭证, every row read."""
    sheets = []
    for raw in each_sheet(data, filename, sheet):
        raw.rows = list(raw.rows)
        sheets.append(raw)
    return sorted(sheets, key=lambda s: list(SHEETS).index(s.name))


def each_sheet(data: bytes, filename: str, sheet: str | None = None) -> Iterator[RawSheet]:
    """The sheets of an upload in the file's order, each one's rows read as they are iterated
    (and those left unread read before the next sheet, so that every limit and damage is found):
    a sheet's cells need not all be held at once."""
    if len(data) > MAX_BYTES:
        raise TooLarge(
            "file",
            f"the file is {len(data):,} bytes, over the limit of 20 MiB: split it",
            f"文件大小 {len(data):,} 字节，超过 20 MiB 上限：请拆分后上传",
        )
    wanted = _wanted(sheet)
    if is_xlsx(data, filename):
        yield from _xlsx(data, wanted)
    else:
        yield _csv(data, wanted)


def _wanted(sheet: str | None) -> str | None:
    if sheet is None or not sheet.strip():
        return None
    name = sheet_named(sheet)
    if name is None:
        raise Invalid(
            "sheet",
            f"no sheet {sheet!r}: the sheets are {', '.join(SHEETS)} "
            "(or contracts, invoices, transfer_proofs)",
            f"没有名为“{sheet}”的工作表：可用 {_SHEETS_WORDS}",
        )
    return name


def _too_many(sheet: str) -> TooLarge:
    """Raised at the first row over the limit: the rest of the sheet is not read."""
    english = SHEET_ENGLISH.get(sheet, sheet)
    return TooLarge(
        "file",
        f"sheet {sheet} ({english}) holds more than {MAX_ROWS:,} data rows, the limit of a "
        "sheet: split it into files of at most that many rows each",
        f"工作表“{sheet}”的数据行超过每个工作表 {MAX_ROWS:,} 行的上限：请拆分为多个文件后上传",
    )


def _not_spreadsheet(why: str) -> Invalid:
    return Invalid(
        "file",
        f"not a spreadsheet: {why}; upload an XLSX workbook or a CSV file (UTF-8)",
        "不是电子表格：请上传 XLSX 工作簿或 CSV 文件（UTF-8 编码）",
    )


def _xlsx(data: bytes, wanted: str | None) -> Iterator[RawSheet]:
    from lxml.etree import LxmlError  # type: ignore[import-untyped]

    try:
        workbook = Workbook(data)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, LxmlError) as exc:
        raise _not_spreadsheet(f"the workbook cannot be opened ({type(exc).__name__})") from None
    try:
        found = 0
        titles = list(workbook.sheets)
        for title in titles:
            name = sheet_named(title)
            if name is None and wanted is not None and len(titles) == 1:
                name = wanted  # a workbook of one sheet, named by ?sheet=
            if name is None or (wanted is not None and name != wanted):
                continue
            raw = _sheet(_damage_named(workbook.rows(title), title), name, title)
            if raw is not None:
                found += 1
                yield raw
                for _ in raw.rows:  # what the reader left
                    pass
    finally:
        workbook.close()
    if not found:
        names = wanted or _SHEETS_WORDS
        raise Invalid(
            "file",
            f"the workbook has no sheet named {names} with a header row "
            f"(its sheets: {', '.join(titles)})",
            f"工作簿中没有名为 {names} 且带表头的工作表（现有：{'、'.join(titles)}）",
        )


def _damage_named(
    cells: Iterator[tuple[int, tuple[Any, ...]]], title: str
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """A sheet's rows; a sheet that cannot be read is refused as no spreadsheet, naming it."""
    from lxml.etree import LxmlError

    try:
        yield from cells
    except (KeyError, ValueError, IndexError, LxmlError) as exc:
        raise _not_spreadsheet(f"sheet {title} cannot be read ({type(exc).__name__})") from None


def _sheet(
    cells: Iterator[tuple[int, tuple[Any, ...]]], name: str | None, title: str
) -> RawSheet | None:
    """The sheet whose header is the first non-empty row, its data rows read as iterated;
    ``name`` None: the sheet its headers tell. None for a sheet with no header."""
    for number, row in cells:
        if not _blank(row):
            headers = ["" if v is None else str(v).strip() for v in row]
            name = name or _guess(headers)
            return RawSheet(name, title, number, headers, _data_rows(cells, name))
    return None


def _data_rows(
    cells: Iterator[tuple[int, tuple[Any, ...]]], name: str
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    count = 0
    for number, row in cells:
        if _blank(row):
            continue
        count += 1
        if count > MAX_ROWS:
            raise _too_many(name)
        yield number, row


def _blank(row: tuple[Any, ...]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def _csv(data: bytes, wanted: str | None) -> RawSheet:
    if b"\x00" in data[:4096]:
        raise _not_spreadsheet("it holds binary data")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # what a Chinese Excel writes when asked for plain "CSV"
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise _not_spreadsheet("the text is neither UTF-8 nor GB 18030") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    raw = _sheet(((n, tuple(r)) for n, r in enumerate(rows, start=1)), wanted, "")
    if raw is None:
        raise _not_spreadsheet("the file is empty")
    raw.title = raw.name
    return raw


def _guess(headers: list[str]) -> str:
    """The sheet a CSV without ?sheet= holds, told by its number column."""
    keys = {normal(h) for h in headers}
    if keys & {normal("发票号码"), "invoice_no"}:
        return "发票"
    if keys & {normal("银行流水号"), "serial_no"}:
        return "转账凭证"
    return "合同"
