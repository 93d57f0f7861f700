"""The workbooks an import hands out: the empty template with its notes, and an upload with
its bad cells highlighted and a comment on each."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from services.registry.imports.columns import CHOICES, SHEETS
from services.registry.imports.reading import is_xlsx, read_sheets

if TYPE_CHECKING:
    from services.registry.imports.report import ImportReport

_NOTES = (
    ("项目 Item", "说明", "Notes"),
    ("工作表 Sheets",
     "合同 一行一份合同；发票、转账凭证 各一行一张，以登记号关联合同。",
     "contracts, invoices, transfer proofs: one per row, evidence linked by 登记号."),
    ("表头 Headers",
     "第一行为表头：中文列名或接口字段名（如 seller.credit_code）均可。",
     "Row 1: the Chinese header or the API field name."),
    ("金额 Amounts",
     "以元填写，最多两位小数；表头写作“…（万元）”则以万元填写，精确换算到分。",
     "Yuan, at most 2 decimals; a column headed …（万元） is in 10,000 yuan, converted exactly."),
    ("日期 Dates",
     "Excel 日期或文本 YYYY-MM-DD，不得晚于今天。",
     "An Excel date or text YYYY-MM-DD, not in the future."),
    ("编号 Codes",
     "统一社会信用代码、登记号等请以文本填写；超过 15 位的数字已被 Excel 舍入，将被拒绝。",
     "Type codes and numbers as text: Excel rounds numbers longer than 15 digits."),
    ("合同类型 Contract type", " / ".join(CHOICES["contract_type"]), "contract_type"),
    ("主体类型 Party kind", " / ".join(CHOICES["seller.kind"]), "seller.kind, buyer.kind"),
    ("关联交易 Related", "是 / 否", "yes / no"),
    ("技术经纪人 Brokers", "经纪人编号，以 、 ; 或 , 分隔。", "Broker ids separated by 、 ; or ,"),
    ("登记机构 Station",
     "登记机构编号；登记机构本身导入时可留空。",
     "The station's id; a station importing its own rows may leave it empty."),
    ("上限 Limits",
     "文件不超过 20 MiB；每个工作表（合同、发票、转账凭证）不超过 50,000 行数据。",
     "A file of at most 20 MiB; at most 50,000 data rows in each sheet."),
    ("校验 Checks",
     "先“试导入”：列出所有错误（工作表、行、列、规则）；无误后再正式导入，全部成功或全部不导入。",
     "A dry run lists every error; a commit stores every row or none."),
)  # fmt: skip
_RED = "FFC7CE"


def template_xlsx() -> bytes:
    """The empty template: one sheet per kind of row with its Chinese headers, and notes."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    for name, columns in SHEETS.items():
        sheet = workbook.create_sheet(name)
        sheet.append([c.header for c in columns])
        for index, column in enumerate(columns, start=1):
            cell = sheet.cell(row=1, column=index)
            cell.font = Font(bold=True)
            needed = "必填 required" if column.required else "选填 optional"
            cell.comment = Comment(f"{column.field} ({needed})", "tcr")
            letter = cell.column_letter
            sheet.column_dimensions[letter].width = max(12, len(column.header) * 2 + 2)
            if column.kind in ("code", "text", "choice", "list"):
                sheet.column_dimensions[letter].number_format = "@"  # text: no rounding
        sheet.freeze_panes = "A2"
    notes = workbook.create_sheet("说明")
    for line in _NOTES:
        notes.append(list(line))
    for cell in notes[1]:
        cell.font = Font(bold=True)
    notes.column_dimensions["A"].width = 24
    notes.column_dimensions["B"].width = 90
    notes.column_dimensions["C"].width = 80
    return _saved(workbook)


def errors_workbook(data: bytes, filename: str, report: ImportReport) -> bytes:
    """The uploaded sheets' values, at their rows and columns, with every bad cell filled red
    and commented (a problem of a whole row marks its first cell). Written row by row (a
    write-only workbook), so a large upload costs no more memory than reading it; formats and
    other sheets are not copied."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.comments import Comment
    from openpyxl.styles import PatternFill

    csv_sheet = None if is_xlsx(data, filename) else next((p.sheet for p in report.errors), None)
    notes: dict[tuple[str, int, str], list[str]] = {}
    for problem in report.errors:
        notes.setdefault((problem.sheet, problem.row, problem.column), []).append(
            f"{problem.message_zh}（{problem.rule}）\n{problem.message}"
        )
    fill = PatternFill("solid", start_color=_RED, end_color=_RED)
    book = Workbook(write_only=True)
    for raw in read_sheets(data, filename, csv_sheet):
        sheet = book.create_sheet(raw.title or raw.name)
        written = 0
        for number, values in [(raw.header_row, tuple(raw.headers)), *raw.rows]:
            while written < number - 1:  # every row where Excel showed it
                sheet.append([])
                written += 1
            cells: list[Any] = [_storable(v) for v in values]
            cells += [None] * (len(raw.headers) - len(cells))
            for index, header in enumerate(raw.headers):
                lines = notes.get((raw.name, number, header), []) if header else []
                if index == 0:  # a whole row's problems, and columns the sheet lacks
                    lines = lines + [
                        line
                        for (name, row, column), found in notes.items()
                        if (name, row) == (raw.name, number) and column not in raw.headers
                        for line in found
                    ]
                if lines:
                    cell = WriteOnlyCell(sheet, value=cells[index])
                    cell.fill = fill
                    note = _storable("\n".join(lines))
                    cell.comment = Comment(note, "tcr", width=320, height=120)
                    cells[index] = cell
            sheet.append(cells)
            written = number
    return _saved(book)


def _storable(value: Any) -> Any:
    """A value as a worksheet may hold it: the control characters XML forbids (a CSV may carry
    them) each shown as U+FFFD, so the marked workbook is written whatever the upload held."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value


def _saved(workbook: Any) -> bytes:
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
