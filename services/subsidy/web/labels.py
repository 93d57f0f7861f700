"""What the page shows for codes (event types, payout kinds, counties) and amounts: 元 or 万元
with thousands separators, rates as percentages, instants in Beijing time. Categories and
exclusion reasons are named in Chinese by services.common.policy.present."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from services.common.counties import county_name
from services.common.instants import BEIJING

# The registry's event types, as the revisions since a payout name them.
EVENT_ZH = {
    "ContractRegistered": "合同登记",
    "ContractAmended": "合同变更",
    "ContractCancelled": "合同注销",
    "InvoiceRecorded": "发票登记",
    "InvoiceVoided": "发票作废",
    "TransferProofRecorded": "付款凭证登记",
    "TransferProofWithdrawn": "付款凭证撤回",
    "BrokerFiled": "技术经纪人备案",
    "ProvincialFundingRecorded": "省级资金支持登记",
    "PayoutRecorded": "付款记录",
    "OneTimeGrantDecided": "一次性补助决定",
    "DemonstrationInstitutionRecognised": "技术转移示范机构认定",
}

KIND_ZH = {"payment": "补拨 payment", "recovery": "追回 recovery"}


def yuan(amount: str | None) -> str:
    """A yuan string as 元 with thousands separators: ``"1234567.5"`` → ``"1,234,567.50"``."""
    if amount is None or amount == "":
        return "—"
    return f"{Decimal(amount):,.2f}"


def wan(amount: str | None) -> str:
    """A yuan string in 万元 (ten thousand yuan), two decimals, half up, with separators."""
    if amount is None or amount == "":
        return "—"
    value = (Decimal(amount) / 10_000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{value:,.2f}"


def sum_amounts(rows: Iterable[Mapping[str, str]], field: str) -> str:
    """The sum of one yuan field over rows, as a yuan string (exact, never a float)."""
    return str(sum((Decimal(row[field]) for row in rows), Decimal("0.00")))


def percent(rate: Fraction) -> str:
    """A rate as a percentage: ``Fraction(1, 10)`` → ``"10%"``, one third → ``"33.33%"``."""
    value = (Decimal(rate.numerator * 100) / Decimal(rate.denominator)).quantize(Decimal("0.01"))
    return f"{value.normalize():f}%"


def beijing(instant: str | None) -> str:
    """A log instant (UTC, ISO 8601) as Beijing wall time, to the second."""
    if not instant:
        return "—"
    when = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(BEIJING)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def county(code: str | None) -> str:
    """A county code with its Chinese name when it is one of the city's."""
    if not code:
        return "—"
    name = county_name(code)
    return f"{name} {code}" if name else code
