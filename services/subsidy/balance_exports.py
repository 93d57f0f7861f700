"""A year's balances for spreadsheets: an XLSX workbook (one row per beneficiary and category:
entitled, paid, recovered, outstanding; then every payout line behind them) and the same
sheets as CSV, written as ``exports`` writes the entitlements: Chinese headers over English,
codes as text, amounts as numbers to the fen, cells that would start a formula neutralised.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal

from services.common.counties import county_name
from services.common.policy.model import CATEGORIES
from services.common.policy.present import CATEGORY_ZH, yuan_decimal
from services.subsidy.balances import BalancesExport
from services.subsidy.exports import (
    GRAND_TOTAL,
    TOTAL,
    Column,
    SheetWriter,
    Styles,
    csv_cells,
    drain,
    finished,
    new_workbook,
)

Sheet = Literal["balances", "payouts"]

TO_PAY, TO_RECOVER, SETTLED = "待补拨", "待追回", "已结清"
KIND_ZH = {"payment": "补拨", "recovery": "追回"}
_AMOUNTS = ("entitled", "paid", "recovered", "outstanding")

_WHOSE = (
    Column("年度", "year", "count", 8),
    Column("受益人统一社会信用代码", "beneficiary", "code", 24),
    Column("名称", "name", "text", 36),
    Column("类别", "category", "text", 12),
)
BALANCE_COLUMNS = (
    *_WHOSE,
    Column("区县代码", "county", "code", 10),
    Column("区县", "county name", "text", 10),
    Column("应得", "entitled", "amount", 16),
    Column("已付", "paid", "amount", 16),
    Column("已追回", "recovered", "amount", 16),
    Column("待补拨(+)/待追回(−)", "outstanding", "amount", 18),
    Column("状态", "status", "text", 8),
    Column("兑付笔数", "payout lines", "count", 8),
    Column("计算位置", "position", "count", 10),
)
PAYOUT_COLUMNS = (
    *_WHOSE,
    Column("兑付单号", "payout no", "code", 18),
    Column("兑付日期", "paid on", "code", 12),
    Column("方向", "kind", "text", 8),
    Column("金额", "amount", "amount", 16),
    Column("日志位置", "position", "count", 10),
    Column("依据位置", "basis position", "count", 10),
)
SHEET_TITLES: dict[Sheet, str] = {"balances": "余额 Balances", "payouts": "兑付 Payouts"}


def balance_row(export: BalancesExport, row: dict[str, Any]) -> list[Any]:
    """One beneficiary's balance in one category, in ``BALANCE_COLUMNS``' order."""
    outstanding = row["outstanding"]
    status = TO_PAY if outstanding > 0 else TO_RECOVER if outstanding < 0 else SETTLED
    return [
        export.year,
        row["beneficiary"],
        row["name"],
        CATEGORY_ZH[row["category"]],
        row["county"],
        county_name(row["county"]),
        *(yuan_decimal(row[name]) for name in _AMOUNTS),
        status,
        len(row["payouts"]),
        export.position,
    ]


def payout_rows(export: BalancesExport, row: dict[str, Any]) -> Iterator[list[Any]]:
    """The payout lines that touched one balance, in log order, in ``PAYOUT_COLUMNS``."""
    for line in row["payouts"]:
        yield [
            export.year,
            row["beneficiary"],
            row["name"],
            CATEGORY_ZH[row["category"]],
            line["payout_no"],
            line["paid_on"],
            KIND_ZH[line["kind"]],
            Decimal(line["amount"]),
            line["position"],
            line["basis_position"],
        ]


def totals_rows(export: BalancesExport) -> list[list[Any]]:
    """A totals row per category, as ``GET /v1/balances``' totals have them, and the sum."""
    rows = []
    whole = dict.fromkeys(_AMOUNTS, 0)
    for category in CATEGORIES:
        total = export.totals.get(category, dict.fromkeys(_AMOUNTS, 0))
        for name in _AMOUNTS:
            whole[name] += total[name]
        rows.append(_total_row(export, f"{TOTAL} {CATEGORY_ZH[category]}", total))
    rows.append(_total_row(export, GRAND_TOTAL, whole))
    return rows


def _total_row(export: BalancesExport, label: str, total: dict[str, int]) -> list[Any]:
    return [
        export.year,
        label,
        None,
        None,
        None,
        None,
        *(yuan_decimal(total[name]) for name in _AMOUNTS),
        None,
        None,
        export.position,
    ]


def xlsx_chunks(export: BalancesExport) -> Iterator[bytes]:
    """The workbook's bytes: sheet 1 the balances with totals rows, sheet 2 every payout line
    behind them."""
    with tempfile.TemporaryFile() as out:
        book = new_workbook(out)
        styles = Styles(book)
        balances = SheetWriter(book, styles, SHEET_TITLES["balances"], BALANCE_COLUMNS)
        payouts = SheetWriter(book, styles, SHEET_TITLES["payouts"], PAYOUT_COLUMNS)
        for row in export.rows:
            balances.write(balance_row(export, row))
            for values in payout_rows(export, row):
                payouts.write(values)
        for values in totals_rows(export):
            balances.write(values, bold=True)
        yield from finished(book, out)


def csv_chunks(export: BalancesExport, sheet: Sheet) -> Iterator[bytes]:
    """One sheet as CSV for Excel: UTF-8 with a BOM, the two header rows, the rows (the
    balances sheet ends with its totals rows)."""
    columns = BALANCE_COLUMNS if sheet == "balances" else PAYOUT_COLUMNS
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.zh for c in columns])
    writer.writerow([c.en for c in columns])
    yield "\ufeff".encode() + drain(out)
    for n, row in enumerate(export.rows, 1):
        if sheet == "balances":
            writer.writerow(csv_cells(balance_row(export, row)))
        else:
            writer.writerows(csv_cells(values) for values in payout_rows(export, row))
        if n % 1000 == 0:
            yield drain(out)
    if sheet == "balances":
        writer.writerows(csv_cells(values) for values in totals_rows(export))
    yield drain(out)
