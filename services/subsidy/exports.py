"""A year's entitlements for spreadsheets: an XLSX workbook (entitlements, then the contracts
behind them) and the same sheets as CSV, Chinese headers first and English beneath.

Both are written row by row from the pages the store returns, the workbook's rows into
temporary files, the CSV as a stream, so a national year needs no more memory than one page.
XlsxWriter lays the workbook out (styles, widths, frozen headers, the bold totals rows); the
rows between are written as the sheet's XML here, each in one string, and put in its place when
the workbook is zipped: XlsxWriter's own work per cell was 85% of a workbook's cost (4.2 s of
the writing at 1M events, 719,000 cells; the same cells as XML here take 0.6 s).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import xlsxwriter
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from xlsxwriter.format import Format

from services.common import counties, spreadsheet
from services.common.counties import county_name
from services.common.policy import present
from services.common.policy.model import ALL_CATEGORIES
from services.common.policy.present import CATEGORY_ZH, REASON_ZH, yuan_decimal
from services.common.spreadsheet import safe_cell
from services.subsidy import tables as t
from services.subsidy.projection import NO_TOTAL, TotalValue
from services.subsidy.reads import Row

Sheet = Literal["entitlements", "contracts"]
# code: text that looks like a number (credit codes, registration numbers, region codes), kept
# text by its cell's format; text: any other words; amount: yuan to the fen; count: an integer.
Kind = Literal["code", "text", "amount", "count"]

_CHUNK_BYTES = 256 * 1024
# What lays a workbook out besides the rows: these modules and the writer. A workbook kept on
# disk (``workbook_cache``) is kept under it, so code that lays it out otherwise writes anew.
LAYOUT = hashlib.sha256(
    b"".join(
        Path(module.__file__ or "").read_bytes()
        for module in (sys.modules[__name__], spreadsheet, present, counties)
    )
    + xlsxwriter.__version__.encode()
).hexdigest()[:16]
TEXT_FORMAT = "@"  # Excel keeps these as typed: an all-digit credit code is no 9.14104E+17
AMOUNT_FORMAT = "#,##0.00"
YES, NO = "是", "否"
TOTAL = "合计"
GRAND_TOTAL = "总计"


@dataclass(frozen=True)
class Column:
    zh: str
    en: str
    kind: Kind
    width: int


# Both sheets start with whose row it is.
_WHOSE = (
    Column("年度", "year", "count", 8),
    Column("受益人统一社会信用代码", "beneficiary", "code", 24),
    Column("名称", "name", "text", 36),
    Column("类别", "category", "text", 12),
)
ENTITLEMENT_COLUMNS = (
    *_WHOSE,
    Column("区县代码", "county", "code", 10),
    Column("区县", "county name", "text", 10),
    Column("认定成交额", "turnover", "amount", 18),
    Column("应补助", "gross", "amount", 16),
    Column("补助金额", "entitlement", "amount", 16),
    Column("封顶", "capped", "text", 6),
    Column("计入合同数", "contracts counted", "count", 10),
    Column("政策版本", "policy version", "text", 20),
    Column("计算位置（本年度最后变动）", "position of the year's last change", "count", 14),
)

CONTRACT_COLUMNS = (
    *_WHOSE,
    Column("登记号", "registration no", "code", 22),
    Column("认定金额", "evidenced", "amount", 18),
    Column("是否计入", "counted", "text", 8),
    Column("未计入原因", "excluded reason", "text", 30),
    Column("原因代码", "reason code", "text", 18),
)

SHEET_TITLES: dict[Sheet, str] = {
    "entitlements": "补助 Entitlements",
    "contracts": "合同 Contracts",
}


@dataclass
class Export:
    """What an export holds: a year's rows and totals as they stand since ``position``, the
    year's last change at or before the cut asked for (what the sheets state as their
    position: every later entry, of other years, left them as they are)."""

    year: int
    policy_version: str
    position: int
    totals: dict[str, TotalValue]
    rows: Iterable[Row]
    # The log entry at ``position`` (recorded_at, subject, type): which history it is of.
    entry: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class LastChange:
    """Where a year's rows last changed at or before a cut, and the log entry there."""

    position: int
    entry: tuple[str, str, str] | None  # None: the year never changed (it has no rows)


def last_change(conn: Connection, year: int, upto: int) -> LastChange:
    """The highest position at or before ``upto`` where a version of one of the year's
    entitlements began or ended or one of its claims began: the year's sheets at any cut from
    there to ``upto`` are the same. (A claim that ends without another beginning changes its
    entitlement's count of contracts, so ends a version of it; totals change only with an
    entitlement.) Three backward scans of an index leading with the year, a row each."""
    e, c = t.entitlements.c, t.claims.c
    found = conn.execute(
        select(
            select(func.max(e.valid_from))
            .where(e.year == year, e.valid_from <= upto)
            .scalar_subquery(),
            select(func.max(e.valid_to))
            .where(e.year == year, e.valid_to <= upto)
            .scalar_subquery(),
            select(func.max(c.valid_from))
            .where(c.year == year, c.valid_from <= upto)
            .scalar_subquery(),
        )
    ).one()
    position = max((int(p) for p in found if p is not None), default=0)
    log = t.log.c
    entry = conn.execute(
        select(log.recorded_at, log.subject, log.type).where(log.position == position)
    ).first()
    return LastChange(position, (entry[0], entry[1], entry[2]) if entry else None)


def entitlement_row(export: Export, row: Row) -> list[Any]:
    """One beneficiary's entitlement in one category, in ``ENTITLEMENT_COLUMNS``' order."""
    _, category, beneficiary = row.key
    value = row.value
    return [
        export.year,
        beneficiary,
        row.name,
        CATEGORY_ZH[category],  # type: ignore[index]
        value.region_code,
        county_name(value.region_code),
        yuan_decimal(value.turnover),
        yuan_decimal(value.gross_fen),
        yuan_decimal(value.entitlement_fen),
        YES if value.gross_fen > value.entitlement_fen else NO,
        row.counted,
        export.policy_version,
        export.position,
    ]


def contract_rows(export: Export, row: Row) -> Iterator[list[Any]]:
    """The contracts behind one entitlement, counted or excluded, in ``CONTRACT_COLUMNS``."""
    _, category, beneficiary = row.key
    for registration_no, claim in row.claims:
        yield [
            export.year,
            beneficiary,
            claim.name,
            CATEGORY_ZH[category],  # type: ignore[index]
            registration_no,
            yuan_decimal(claim.share),
            YES if claim.reason is None else NO,
            REASON_ZH[claim.reason] if claim.reason else None,
            claim.reason,
        ]


def totals_rows(export: Export, counted: Counter[str]) -> list[list[Any]]:
    """A totals row per category, as the JSON answer's ``totals`` has them, and the sum."""
    rows = []
    whole = NO_TOTAL
    for category in ALL_CATEGORIES:
        total = export.totals.get(category, NO_TOTAL)
        whole = TotalValue(
            whole.beneficiaries + total.beneficiaries,
            whole.turnover + total.turnover,
            whole.gross_fen + total.gross_fen,
            whole.entitlement_fen + total.entitlement_fen,
        )
        rows.append(
            _total_row(export, f"{TOTAL} {CATEGORY_ZH[category]}", total, counted[category])
        )
    rows.append(_total_row(export, GRAND_TOTAL, whole, sum(counted.values())))
    return rows


def _total_row(export: Export, label: str, total: TotalValue, counted: int) -> list[Any]:
    return [
        export.year,
        label,
        f"{total.beneficiaries} 个受益人 beneficiaries",
        None,
        None,
        None,
        yuan_decimal(total.turnover),
        yuan_decimal(total.gross_fen),
        yuan_decimal(total.entitlement_fen),
        None,
        counted,
        export.policy_version,
        export.position,
    ]


# -- XLSX ------------------------------------------------------------------------------------


def xlsx_chunks(export: Export) -> Iterator[bytes]:
    """The workbook's bytes: written to a temporary file first (a workbook is a zip, finished
    at its end), then read back a chunk at a time."""
    with tempfile.TemporaryFile() as out:
        write_xlsx(export, out)
        out.seek(0)
        while chunk := out.read(_CHUNK_BYTES):
            yield chunk


def write_xlsx(export: Export, out: IO[bytes]) -> None:
    """The workbook into ``out``: sheet 1 the entitlements with totals rows, sheet 2 every
    contract behind them."""
    with (
        tempfile.TemporaryFile() as book_file,
        tempfile.TemporaryFile() as entitlement_xml,
        tempfile.TemporaryFile() as contract_xml,
    ):
        book = new_workbook(book_file)
        styles = Styles(book)
        entitlements = SheetWriter(book, styles, SHEET_TITLES["entitlements"], ENTITLEMENT_COLUMNS)
        SheetWriter(book, styles, SHEET_TITLES["contracts"], CONTRACT_COLUMNS)  # the headers
        entitlement_rows = RowsXml(entitlement_xml, styles, ENTITLEMENT_COLUMNS)
        contract_rows_xml = RowsXml(contract_xml, styles, CONTRACT_COLUMNS)
        counted: Counter[str] = Counter()
        for row in export.rows:
            entitlement_rows.write(entitlement_row(export, row))
            counted[row.key[1]] += row.counted
            for values in contract_rows(export, row):
                contract_rows_xml.write(values)
        entitlements.skip(entitlement_rows.count)
        for values in totals_rows(export, counted):
            entitlements.write(values, bold=True)
        book.close()
        # XlsxWriter names the sheets' parts in the order they were added.
        spliced = {
            "xl/worksheets/sheet1.xml": entitlement_rows.spliced(first_total=True),
            "xl/worksheets/sheet2.xml": contract_rows_xml.spliced(first_total=False),
        }
        book_file.seek(0)
        splice(book_file, out, spliced)


def new_workbook(out: IO[bytes]) -> xlsxwriter.Workbook:
    """A workbook written to ``out`` a row at a time (constant memory: each sheet's rows go to
    a temporary file as they are finished, strings inline), and no cell's text ever read as a
    formula, a link or a number."""
    return xlsxwriter.Workbook(
        out,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )


def finished(book: xlsxwriter.Workbook, out: IO[bytes]) -> Iterator[bytes]:
    """A workbook closed (zipped into ``out``), then its bytes a chunk at a time."""
    book.close()
    out.seek(0)
    while chunk := out.read(_CHUNK_BYTES):
        yield chunk


class Styles:
    """The workbook's few formats, each made once: a column's (text for codes, two decimals for
    amounts), and bold ones for the header and totals rows."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        code = {"num_format": TEXT_FORMAT}
        amount = {"num_format": AMOUNT_FORMAT}
        self.column: dict[Kind, Format | None] = {
            "code": book.add_format(code),
            "amount": book.add_format(amount),
            "text": None,
            "count": None,
        }
        self.header = book.add_format({"bold": True})
        self.bold: dict[Kind, Format | None] = {
            "code": book.add_format({"bold": True, **code}),
            "amount": book.add_format({"bold": True, **amount}),
            "text": self.header,
            "count": self.header,
        }


class SheetWriter:
    """One sheet: its columns' widths and formats, both header rows (frozen), then rows written
    in order, each cell typed by its column.

    A cell takes its column's format (XlsxWriter writes the column's style into a cell that has
    none), so a row is plain values: no cell object or style per value."""

    def __init__(
        self,
        book: xlsxwriter.Workbook,
        styles: Styles,
        title: str,
        columns: Sequence[Column],
    ) -> None:
        self._sheet = sheet = book.add_worksheet(title)
        self._bold = [styles.bold[c.kind] for c in columns]
        # Words are written as text: a code keeps its leading zeros and digits.
        self._words = [c.kind in ("code", "text") for c in columns]
        for i, column in enumerate(columns):
            sheet.set_column(i, i, column.width, styles.column[column.kind])
        sheet.freeze_panes(2, 0)  # both header rows stay in view
        for row, header in enumerate(([c.zh for c in columns], [c.en for c in columns])):
            for i, text in enumerate(header):
                sheet.write_string(row, i, text, styles.header)
        self._next = 2

    def skip(self, rows: int) -> None:
        """Rows written elsewhere (``RowsXml``): the next row is written below them."""
        self._next += rows

    def write(self, values: Sequence[Any], *, bold: bool = False) -> None:
        """The next row; None leaves its cell empty."""
        row, self._next = self._next, self._next + 1
        string, number = self._sheet.write_string, self._sheet.write_number
        formats = self._bold if bold else None
        for i, (words, value) in enumerate(zip(self._words, values, strict=True)):
            if value is None:
                continue
            style = formats[i] if formats else None
            if words:
                # The quote keeps it text when an officer edits the cell in Excel too.
                string(row, i, safe_cell(str(value)), style)
            else:  # an amount's Decimal, or a count
                number(row, i, float(value), style)


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CELL_CHARACTERS = 32_767  # the most text an Excel cell holds
# What a text needs escaped as Excel escapes it (XlsxWriter's rules): XML's &, < and >; control
# characters as _xHHHH_, and text already of that form with its underscore escaped; the two
# non-characters. Most text needs none of it.
_SPECIAL = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_ESCAPED = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile("([\x00-\x08\x0b-\x1f\ufffe\uffff])")


def xml_text(text: str) -> str:
    """A cell's text as the XML of an inline string holds it."""
    if _SPECIAL.search(text):
        text = _ESCAPED.sub(r"_x005F\1", text)
        text = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", text)
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


_MEMO = 100_000


def _text_body(value: str) -> str:
    """A text cell's ``<t>``, from the end of its tag to its text: made safe, cut to what a
    cell holds as XlsxWriter cuts it (Excel repairs a longer one), escaped, its spaces kept."""
    text = xml_text(safe_cell(value)[:CELL_CHARACTERS])
    return (' xml:space="preserve">' if text != text.strip() else ">") + text


class RowsXml:
    """A sheet's rows below its two header rows, as the worksheet's XML (``<row>`` elements),
    into ``out``: each cell as XlsxWriter writes it (typed and styled by its column, text made
    safe and inline), a row in one string.

    ``spliced`` says where they go in the sheet XlsxWriter wrote around them."""

    def __init__(self, out: IO[bytes], styles: Styles, columns: Sequence[Column]) -> None:
        self._out = out
        self._columns = len(columns)
        self.count = 0
        self._cells = []
        for i, column in enumerate(columns):
            style = styles.column[column.kind]
            # A cell carries its column's format, as XlsxWriter writes it (Excel gives a
            # column's format only to cells typed in later).
            s = f' s="{style._get_xf_index()}"' if style is not None else ""
            words = column.kind in ("code", "text")
            # What follows the cell's reference, up to its value.
            rest = f'"{s} t="inlineStr"><is><t' if words else f'"{s}><v>'
            self._cells.append((_LETTERS[i], rest, words))
        # A value's XML, by value: names, codes, categories and the year repeat from row to
        # row, and made once they cost a lookup (the rows took 1.75 s of a 1 M-event year
        # in the profile, 1.34 s so).
        self._texts: dict[str, str] = {}
        self._numbers: dict[Any, str] = {}

    def write(self, values: Sequence[Any]) -> None:
        """The next row; None leaves its cell empty."""
        self.count += 1
        r = self.count + 2
        parts = [f'<row r="{r}">']
        texts, numbers = self._texts, self._numbers
        for (letter, rest, words), value in zip(self._cells, values, strict=True):
            if value is None:
                continue
            if words:
                text = str(value)
                body = texts.get(text)
                if body is None:
                    body = texts[text] = _text_body(text)
                parts.append(f'<c r="{letter}{r}{rest}{body}</t></is></c>')
            else:  # an amount's Decimal, or a count
                number = numbers.get(value)
                if number is None:
                    number = numbers[value] = f"{float(value):.16G}"
                parts.append(f'<c r="{letter}{r}{rest}{number}</v></c>')
        parts.append("</row>")
        self._out.write("".join(parts).encode())
        if len(texts) > _MEMO or len(numbers) > _MEMO:  # memory stays bounded
            texts.clear()
            numbers.clear()

    def spliced(self, *, first_total: bool) -> Splice:
        """Where these rows go in the sheet's XML: before the first totals row (XlsxWriter
        wrote it below them), or at the end of the sheet's rows, its dimension then widened."""
        if first_total:
            return self._out, f'<row r="{self.count + 3}"', None
        last = f"{_LETTERS[self._columns - 1]}{self.count + 2}"
        return self._out, "</sheetData>", f'<dimension ref="A1:{last}"/>' if self.count else None


_DIMENSION = re.compile(r'<dimension ref="[^"]*"/>')


Splice = tuple[IO[bytes], str, str | None]  # the rows' XML, what they go before, a dimension


def splice(book: IO[bytes], out: IO[bytes], rows: dict[str, Splice]) -> None:
    """The workbook zipped in ``book`` copied into ``out``, each sheet named in ``rows`` with
    its rows' XML put before its marker (and its dimension replaced when one is given)."""
    # The sheets deflated at level 1: at 1M events 0.3 s less to write than the default 6, the
    # file 4.7 MB rather than 3.8.
    with (
        zipfile.ZipFile(book) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zipped,
    ):
        for info in source.infolist():
            data = source.read(info)
            if info.filename not in rows:
                zipped.writestr(info, data)
                continue
            xml_rows, marker, dimension = rows[info.filename]
            sheet = data.decode("utf-8")
            if dimension is not None:
                sheet = _DIMENSION.sub(dimension, sheet, count=1)
            at = sheet.index(marker)
            with zipped.open(info.filename, "w") as written:
                written.write(sheet[:at].encode("utf-8"))
                xml_rows.seek(0)
                shutil.copyfileobj(xml_rows, written, _CHUNK_BYTES)
                written.write(sheet[at:].encode("utf-8"))


# -- CSV -------------------------------------------------------------------------------------

_FLUSH_ROWS = 1000


def csv_chunks(export: Export, sheet: Sheet) -> Iterator[bytes]:
    """One sheet as CSV for Excel: UTF-8 with a BOM, the two header rows, then the rows (the
    entitlements sheet ends with its totals rows), every text cell made safe."""
    columns = ENTITLEMENT_COLUMNS if sheet == "entitlements" else CONTRACT_COLUMNS
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.zh for c in columns])
    writer.writerow([c.en for c in columns])
    yield "\ufeff".encode() + drain(out)
    counted: Counter[str] = Counter()
    for n, row in enumerate(export.rows, 1):
        if sheet == "entitlements":
            writer.writerow(csv_cells(entitlement_row(export, row)))
            counted[row.key[1]] += row.counted
        else:
            writer.writerows(csv_cells(values) for values in contract_rows(export, row))
        if n % _FLUSH_ROWS == 0:
            yield drain(out)
    if sheet == "entitlements":
        writer.writerows(csv_cells(values) for values in totals_rows(export, counted))
    yield drain(out)


def csv_cells(values: Sequence[Any]) -> list[str]:
    """A row's cells as CSV text: amounts to the fen, text made safe, None empty."""
    return [
        "" if v is None else f"{v:.2f}" if isinstance(v, Decimal) else safe_cell(str(v))
        for v in values
    ]


def drain(out: io.StringIO) -> bytes:
    """What a CSV writer wrote so far, as UTF-8, and the buffer emptied."""
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text.encode("utf-8")
