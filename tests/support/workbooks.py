"""Import spreadsheets for tests, built with openpyxl as a station's clerk would fill them."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from typing import Any

from openpyxl import Workbook, load_workbook

from services.registry.imports.columns import SHEETS
from tests.support.parties import LOCAL_ENTERPRISE, UNIVERSITY

CONTRACT_HEADERS = [c.header for c in SHEETS["合同"]]
INVOICE_HEADERS = [c.header for c in SHEETS["发票"]]
TRANSFER_HEADERS = [c.header for c in SHEETS["转账凭证"]]


def contract_row(no: str, **overrides: Any) -> list[Any]:
    """A valid 合同 row of station S1 (a local university sells to a local enterprise)."""
    values: dict[str, Any] = {
        "登记号": no,
        "登记机构": "S1",
        "登记日期": date(2024, 3, 1),
        "签订日期": "2024-02-01",
        "合同名称": "煤矿智能巡检机器人技术开发",
        "合同类型": "技术开发",
        "技术领域": "先进制造",
        "卖方名称": UNIVERSITY["name"],
        "卖方统一社会信用代码": UNIVERSITY["credit_code"],
        "卖方类型": "高等院校",
        "卖方地区代码": 410402,
        "买方名称": LOCAL_ENTERPRISE["name"],
        "买方统一社会信用代码": LOCAL_ENTERPRISE["credit_code"],
        "买方类型": "企业",
        "买方地区代码": "410403",
        "合同成交额（元）": 1200000,
        "技术交易额（元）": "1000000.00",
        "关联交易": "否",
        "技术经纪人": None,
    }
    values.update(overrides)
    return [values[h] for h in CONTRACT_HEADERS]


def invoice_row(no: str, invoice_no: str, amount: Any = 600000, **overrides: Any) -> list[Any]:
    values: dict[str, Any] = {
        "登记号": no,
        "发票号码": invoice_no,
        "开票日期": date(2024, 4, 1),
        "金额（元）": amount,
        "开票方统一社会信用代码": UNIVERSITY["credit_code"],
        "受票方统一社会信用代码": LOCAL_ENTERPRISE["credit_code"],
    }
    values.update(overrides)
    return [values[h] for h in INVOICE_HEADERS]


def transfer_row(no: str, serial_no: str, amount: Any = 600000.5, **overrides: Any) -> list[Any]:
    values: dict[str, Any] = {
        "登记号": no,
        "银行流水号": serial_no,
        "付款日期": "2024-04-15",
        "金额（元）": amount,
        "付款方统一社会信用代码": LOCAL_ENTERPRISE["credit_code"],
        "收款方统一社会信用代码": UNIVERSITY["credit_code"],
        "银行": "中国银行平顶山分行",
    }
    values.update(overrides)
    return [values[h] for h in TRANSFER_HEADERS]


def workbook(sheets: dict[str, tuple[Sequence[str], Sequence[Sequence[Any]]]]) -> bytes:
    """An XLSX of the given sheets, each a header row then its rows."""
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for title, (headers, rows) in sheets.items():
        sheet = book.create_sheet(title)
        sheet.append(list(headers))
        for row in rows:
            sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def filled_template(template: bytes, rows: dict[str, Sequence[Sequence[Any]]]) -> bytes:
    """The downloaded template with rows appended under its headers."""
    book = load_workbook(io.BytesIO(template))
    for title, sheet_rows in rows.items():
        for row in sheet_rows:
            book[title].append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """A CSV as Excel saves one: UTF-8 with a BOM."""
    lines = [",".join(headers)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
