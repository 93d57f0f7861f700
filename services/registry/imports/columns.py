"""The three sheets a station imports and their columns, as the national registration system
exports them (Chinese headers); each column names the API field it fills."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "code", "date", "amount", "choice", "flag", "list"]

CONTRACT_TYPES = {
    "技术开发": "development",
    "技术转让": "transfer",
    "技术许可": "licensing",
    "技术咨询": "consulting",
    "技术服务": "service",
}
PARTY_KINDS = {
    "企业": "enterprise",
    "高等院校": "university",
    "科研院所": "research_institute",
    "新型研发机构": "new_rd_institution",
    "其他": "other",
}
CHOICES = {"contract_type": CONTRACT_TYPES, "seller.kind": PARTY_KINDS, "buyer.kind": PARTY_KINDS}


@dataclass(frozen=True)
class Column:
    """One column: its Chinese header, the API field it fills and how its cells are read."""

    header: str
    field: str
    kind: Kind = "text"
    required: bool = True


def _party(side: str, zh: str) -> list[Column]:
    return [
        Column(f"{zh}名称", f"{side}.name"),
        Column(f"{zh}统一社会信用代码", f"{side}.credit_code", "code"),
        Column(f"{zh}类型", f"{side}.kind", "choice"),
        Column(f"{zh}地区代码", f"{side}.region_code", "code"),
    ]


CONTRACTS, INVOICES, TRANSFERS = "合同", "发票", "转账凭证"
SHEETS: dict[str, tuple[Column, ...]] = {
    CONTRACTS: (
        Column("登记号", "registration_no", "code"),
        Column("登记机构", "station_id", "code"),
        Column("登记日期", "registered_on", "date"),
        Column("签订日期", "signed_on", "date"),
        Column("合同名称", "title"),
        Column("合同类型", "contract_type", "choice"),
        Column("技术领域", "domain"),
        *_party("seller", "卖方"),
        *_party("buyer", "买方"),
        Column("合同成交额（元）", "contract_amount", "amount"),
        Column("技术交易额（元）", "technology_amount", "amount"),
        Column("关联交易", "related_party", "flag"),
        Column("技术经纪人", "brokers", "list", required=False),
    ),
    INVOICES: (
        Column("登记号", "registration_no", "code"),
        Column("发票号码", "invoice_no", "code"),
        Column("开票日期", "issued_on", "date"),
        Column("金额（元）", "amount", "amount"),
        Column("开票方统一社会信用代码", "issuer_credit_code", "code"),
        Column("受票方统一社会信用代码", "recipient_credit_code", "code"),
    ),
    TRANSFERS: (
        Column("登记号", "registration_no", "code"),
        Column("银行流水号", "serial_no", "code"),
        Column("付款日期", "paid_on", "date"),
        Column("金额（元）", "amount", "amount"),
        Column("付款方统一社会信用代码", "payer_credit_code", "code"),
        Column("收款方统一社会信用代码", "payee_credit_code", "code"),
        Column("银行", "bank", required=False),
    ),
}
OPS = {
    CONTRACTS: "register_contract",
    INVOICES: "record_invoice",
    TRANSFERS: "record_transfer_proof",
}
# Sheet names accepted besides the Chinese ones (a CSV's ?sheet=, an English workbook).
SHEET_ALIASES = {
    "contracts": CONTRACTS,
    "invoices": INVOICES,
    "transfer_proofs": TRANSFERS,
    "transfers": TRANSFERS,
}
# How an English message names each sheet, beside its Chinese name.
SHEET_ENGLISH = {CONTRACTS: "contracts", INVOICES: "invoices", TRANSFERS: "transfer proofs"}
# The number each sheet's rows claim registry-wide, unique across the file and the registry.
NUMBER_FIELD = {CONTRACTS: "registration_no", INVOICES: "invoice_no", TRANSFERS: "serial_no"}

_YUAN, _WAN = "(元)", "(万元)"


def normal(text: str) -> str:
    """A header or sheet name as compared: width folded (（元） = (元)), case and spaces ignored."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def sheet_named(name: str) -> str | None:
    """The sheet a name stands for (合同, 发票, 转账凭证 or an English alias), or None."""
    key = normal(name)
    for sheet in SHEETS:
        if normal(sheet) == key:
            return sheet
    return SHEET_ALIASES.get(key)


@dataclass(frozen=True)
class Placed:
    """A column found in a file: where, under which header, and the scale of its amounts."""

    column: Column
    index: int  # 0-based position in the row
    header: str  # as written in the file
    scale: int = 1  # 10,000 for a column headed …（万元）


def column_named(sheet: str, header: str) -> tuple[Column, int] | None:
    """The column a header names in ``sheet`` — its Chinese header, the API field name, or an
    amount's header in 万元 — with the factor to yuan; None for a header the sheet lacks."""
    key = normal(header)
    scale = 1
    if key.endswith(_WAN):
        key, scale = key[: -len(_WAN)] + _YUAN, 10_000
    for column in SHEETS[sheet]:
        if key == normal(column.header):
            return column, scale
        if scale == 1 and key == normal(column.field):
            return column, 1
        if column.kind == "amount" and scale == 10_000 and key == normal(column.field) + _YUAN:
            return column, scale
    if scale == 1 and key.endswith("_wan"):  # contract_amount_wan: the English 万元 column
        found = column_named(sheet, key[: -len("_wan")])
        if found is not None and found[0].kind == "amount":
            return found[0], 10_000
    return None
