"""Cells as the API's fields: exact amounts, ISO dates, codes typed as numbers only when exact.

Spreadsheets hold numbers as binary floating point: Excel keeps 15 significant digits, and
openpyxl hands us ``float`` or ``int``. Amounts go through ``Decimal(str(value))`` (the shortest
decimal that reads back as the same float, i.e. what Excel shows) and are refused when finer
than a fen; a number standing for a code is accepted only when it is a whole number Excel
holds exactly.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.registry.imports.columns import CHOICES, Column

_FEN = Decimal("0.01")
_EXACT_DIGITS = 15  # Excel's precision: a longer number was rounded when it was typed
_BROKER_SEPARATORS = re.compile(r"[、;；,，\s]+")
_FLAGS = {"是": True, "否": False, "true": True, "false": False, "yes": True, "no": False}
_FLAGS |= {"y": True, "n": False, "1": True, "0": False}


class CellProblem(ValueError):
    """A cell that cannot stand for its field: the rule and the words, English and Chinese."""

    def __init__(self, rule: str, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.message_zh = message_zh


def empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_value(column: Column, value: Any, scale: int = 1) -> Any:
    """The API's JSON value for a non-empty cell of ``column``; :class:`CellProblem` if none."""
    if column.kind == "amount":
        return yuan(value, scale)
    if column.kind == "date":
        return iso_date(value)
    if column.kind == "code":
        return code(value)
    if column.kind == "choice":
        return choice(column, value)
    if column.kind == "flag":
        return flag(value)
    if column.kind == "list":
        return [b for b in _BROKER_SEPARATORS.split(text(value)) if b]
    return text(value)


def text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, float)):
        return code(value)
    return str(value)


def code(value: Any) -> str:
    """A number, code or id: text as written; a number only if Excel holds it exactly."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CellProblem("text", "must be text", "应为文本")
    if isinstance(value, float) and not value.is_integer():
        raise CellProblem(
            "exact_number",
            f"typed as the number {value!r}, which is not a whole number: type it as text",
            f"单元格为数字 {value!r}，不是整数：请以文本格式填写",
        )
    whole = int(value)
    if whole < 0 or len(str(whole)) > _EXACT_DIGITS:
        raise CellProblem(
            "exact_number",
            f"typed as the number {whole}, longer than the 15 digits Excel keeps exactly "
            "(it may have been rounded): type it as text",
            f"单元格为数字 {whole}，超过 Excel 精确保存的 15 位（可能已被舍入）：请填为文本",
        )
    return str(whole)


def yuan(value: Any, scale: int = 1) -> str:
    """An amount as the API's yuan string, exact: ``scale`` 10,000 for a 万元 column."""
    if isinstance(value, bool):
        raise CellProblem("amount_format", "must be an amount", "应为金额")
    if isinstance(value, (int, float)):
        amount = Decimal(str(value))
    else:
        written = str(value).strip().replace(",", "").replace("，", "")
        try:
            amount = Decimal(written)
        except InvalidOperation:
            raise CellProblem(
                "amount_format",
                f"{written!r} is not a decimal amount",
                f"“{written}”不是十进制金额",
            ) from None
    if not amount.is_finite():
        raise CellProblem("amount_format", "must be a decimal amount", "应为十进制金额")
    amount *= scale
    if amount != amount.quantize(_FEN):
        unit, unit_zh = ("10,000 yuan", "万元") if scale != 1 else ("yuan", "元")
        raise CellProblem(
            "amount_precision",
            f"{value} {unit} is finer than a fen (0.01 yuan)",
            f"{value}{unit_zh}精确到分以下（最小单位为 0.01 元）",
        )
    return f"{amount.quantize(_FEN):f}"


def iso_date(value: Any) -> str:
    """A date cell, or text ``YYYY-MM-DD`` (the API checks the text's form)."""
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise CellProblem(
                "date_format", "must be a date without a time of day", "应为日期，不含时间"
            )
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip()
    raise CellProblem(
        "date_format",
        "must be a date cell or text written YYYY-MM-DD",
        "应为日期单元格或 YYYY-MM-DD 格式的文本",
    )


def choice(column: Column, value: Any) -> str:
    labels = CHOICES[column.field]
    written = text(value)
    if written in labels:
        return labels[written]
    if written in labels.values():
        return written
    listed = " / ".join(labels)
    raise CellProblem(
        "one_of",
        f"{written!r} is not one of {listed} (or {', '.join(labels.values())})",
        f"“{written}”不是以下之一：{listed}",
    )


def flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    written = text(value).casefold()
    if written in _FLAGS:
        return _FLAGS[written]
    raise CellProblem("yes_no", f"{written!r} must be 是 or 否", f"“{written}”应为“是”或“否”")
