"""What an import answers: every problem found, named by sheet, row and column."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImportProblem:
    """One bad cell or row."""

    sheet: str  # "合同" | "发票" | "转账凭证"
    row: int  # spreadsheet row number as Excel shows it (header rows count)
    column: str  # the column header as in the file, e.g. "卖方统一社会信用代码"; "" for a row
    field: str  # the API field, e.g. "seller.credit_code"
    rule: str  # short rule id, e.g. "check_character", "duplicate_in_file"
    message: str  # English
    message_zh: str  # Chinese


@dataclass(frozen=True)
class ImportReport:
    """The outcome of a dry run or a commit."""

    file_sha256: str
    rows: int  # data rows read, all sheets
    valid: int  # rows without a problem
    errors: list[ImportProblem]  # every one, not the first
    warnings: list[ImportProblem] = field(default_factory=list)
    stored: bool = False  # True only after a commit that stored everything
    events: int = 0  # events stored (0 on a dry run / refusal)
    first_position: int | None = None
    last_position: int | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
