"""Entitlements as JSON for people and for comparison: yuan strings with two decimals."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from services.common.money import format_fen
from services.common.policy.engine import round_half_up
from services.common.policy.model import Category, Entitlement, ExclusionReason

CATEGORY_ZH: dict[Category, str] = {
    "absorption": "技术吸纳",
    "output": "技术输出",
    "broker": "技术经纪人",
    "one_time": "一次性补助",
}

# The programmes of one-time grants (plan §四(四)(五)).
PROGRAMME_ZH: dict[str, str] = {
    "demonstration_institution": "省级技术转移示范机构",
    "transfer_base": "科技成果转移转化基地",
    "pilot_base": "中试熟化基地",
}

# Why a contract does not count, as a finance officer reads it (shared/domain.md § Money rules).
REASON_ZH: dict[ExclusionReason, str] = {
    "cancelled": "合同已注销",
    "contract_type": "合同类型不在补助范围",
    "outside_window": "登记日期不在补助年度窗口内",
    "related_party": "关联企业间交易",
    "seller_local": "卖方为本市单位，不属技术吸纳",
    "not_local": "交易方不在本市",
    "provincial_funding": "当年已获省级资金支持（不重复支持）",
    "broker_not_filed": "技术经纪人年底前未备案",
}


def yuan(fen: Fraction | int) -> str:
    """Yuan with two decimals; a fraction of a fen (a broker's share) rounds half up."""
    return format_fen(round_half_up(fen))


def yuan_decimal(fen: Fraction | int) -> Decimal:
    """The same amount as :func:`yuan`, as an exact Decimal with two places (for number cells)."""
    return Decimal(round_half_up(fen)).scaleb(-2)


def rate_text(rate: Fraction) -> str:
    """A rate as a decimal string (``"0.1"``), exact; a rate no decimal holds as ``"n/d"``."""
    value = Decimal(rate.numerator) / Decimal(rate.denominator)
    return str(value.normalize()) if Fraction(value) == rate else str(rate)


def exclusion_json(registration_no: str, reason: ExclusionReason) -> dict[str, str]:
    """A contract left out, with its reason's code and its Chinese text."""
    return {"registration_no": registration_no, "reason": reason, "reason_zh": REASON_ZH[reason]}


ENTITLEMENT_FIELDS = frozenset(
    {"beneficiary", "name", "category", "turnover", "gross", "entitlement", "capped", "contracts",
     "excluded"}
)  # fmt: skip


def entitlement_json(e: Entitlement) -> dict[str, Any]:
    """One entitlement with its explanation, as finance and auditors read it."""
    return {
        "beneficiary": e.beneficiary,
        "name": e.name,
        "category": e.category,
        "turnover": yuan(e.turnover),
        "gross": format_fen(e.gross_fen),
        "entitlement": format_fen(e.entitlement_fen),
        "capped": e.capped,
        "contracts": [
            {"registration_no": c.registration_no, "evidenced": yuan(c.evidenced)}
            for c in e.contracts
        ],
        "excluded": [exclusion_json(x.registration_no, x.reason) for x in e.excluded],
    }
