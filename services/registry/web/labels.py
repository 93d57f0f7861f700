"""What the station page shows for the registry's codes: contract types, party kinds, status."""

from __future__ import annotations

CONTRACT_TYPE_ZH = {
    "development": "技术开发",
    "transfer": "技术转让",
    "licensing": "技术许可",
    "consulting": "技术咨询",
    "service": "技术服务",
}

PARTY_KIND_ZH = {
    "enterprise": "企业",
    "university": "高等院校",
    "research_institute": "科研院所",
    "new_rd_institution": "新型研发机构",
    "other": "其他",
}

STATUS_ZH = {"active": "有效", "registered": "有效", "cancelled": "已注销"}

SHEET_EN = {"合同": "contracts", "发票": "invoices", "转账凭证": "transfer proofs"}

# The date an event states for itself, by payload field (one per event type).
EVENT_DATES = (
    "registered_on",
    "amended_on",
    "cancelled_on",
    "issued_on",
    "voided_on",
    "paid_on",
    "withdrawn_on",
)
