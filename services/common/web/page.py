"""What every server-rendered page shares: its headers, and how it shows amounts and instants
(元 with thousands separators, Beijing wall time)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from services.common.instants import BEIJING

# Nothing but the page's own files: no inline script, no other origin, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


# The registry's event types, as pages name them.
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


def yuan(amount: str | None) -> str:
    """A yuan string as 元 with thousands separators: ``"1234567.5"`` → ``"1,234,567.50"``."""
    if amount is None or amount == "":
        return "—"
    return f"{Decimal(amount):,.2f}"


def beijing(instant: str | None) -> str:
    """A log instant (UTC, ISO 8601) as Beijing wall time, to the second."""
    if not instant:
        return "—"
    when = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(BEIJING)
    return when.strftime("%Y-%m-%d %H:%M:%S")
