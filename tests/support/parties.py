"""Valid parties and contracts for tests, built from the real credit-code rule."""

from __future__ import annotations

from typing import Any

from services.common.codes import credit_code_check_character


def credit_code(first17: str) -> str:
    """A credit code completed with its correct GB 32100-2015 check character."""
    return first17 + credit_code_check_character(first17)


UNIVERSITY = {
    "credit_code": credit_code("12410400MB0000001"),
    "name": "平顶山学院",
    "kind": "university",
    "region_code": "410402",
}
LOCAL_ENTERPRISE = {
    "credit_code": credit_code("91410400MA0000002"),
    "name": "平顶山煤矿机械有限公司",
    "kind": "enterprise",
    "region_code": "410403",
}
OUTSIDE_ENTERPRISE = {
    "credit_code": credit_code("91110000MA0000003"),
    "name": "北京智造科技有限公司",
    "kind": "enterprise",
    "region_code": "110108",
}


def contract_body(registration_no: str = "2024410400000001", **overrides: Any) -> dict[str, Any]:
    """A valid registration posted by station S1: a local university sells to a local firm."""
    body: dict[str, Any] = {
        "registration_no": registration_no,
        "station_id": "S1",
        "registered_on": "2024-03-01",
        "signed_on": "2024-02-01",
        "title": "煤矿智能巡检机器人技术开发",
        "contract_type": "development",
        "domain": "advanced manufacturing",
        "seller": UNIVERSITY,
        "buyer": LOCAL_ENTERPRISE,
        "brokers": [],
        "contract_amount": "1200000.00",
        "technology_amount": "1000000.00",
        "related_party": False,
    }
    body.update(overrides)
    return body


def invoice_body(
    invoice_no: str = "INV-0001", amount: str = "600000.00", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "invoice_no": invoice_no,
        "issued_on": "2024-04-01",
        "amount": amount,
        "issuer_credit_code": UNIVERSITY["credit_code"],
        "recipient_credit_code": LOCAL_ENTERPRISE["credit_code"],
    }
    body.update(overrides)
    return body


def transfer_body(
    serial_no: str = "BANK-0001", amount: str = "600000.00", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serial_no": serial_no,
        "paid_on": "2024-04-15",
        "amount": amount,
        "payer_credit_code": LOCAL_ENTERPRISE["credit_code"],
        "payee_credit_code": UNIVERSITY["credit_code"],
        "bank": "中国银行平顶山分行",
    }
    body.update(overrides)
    return body


# -- more bodies: corrections, bureau filings, and parties for refusals -------------------------

OUTSIDE_UNIVERSITY = {
    "credit_code": credit_code("12110000MB0000004"),
    "name": "北京理工大学",
    "kind": "university",
    "region_code": "110108",
}


def with_wrong_check_character(code: str) -> str:
    """The same credit code with a check character that fails GB 32100-2015."""
    wrong = "0" if code[17] != "0" else "1"
    return code[:17] + wrong


def amendment_body(**changes: Any) -> dict[str, Any]:
    """A valid amendment (变更登记) making ``changes``; the title by default."""
    body: dict[str, Any] = {"amended_on": "2024-05-01", "reason": "补充协议"}
    body.update(changes or {"title": "煤矿智能巡检机器人技术开发(补充)"})
    return body


def cancellation_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"cancelled_on": "2024-06-01", "reason": "合同解除"}
    body.update(overrides)
    return body


def void_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"voided_on": "2024-04-20", "reason": "开票有误"}
    body.update(overrides)
    return body


def withdrawal_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"withdrawn_on": "2024-04-20", "reason": "凭证录入有误"}
    body.update(overrides)
    return body


def broker_body(broker_id: str = "B-0001", **overrides: Any) -> dict[str, Any]:
    """A valid broker filing (技术经纪人备案), the bureau's act."""
    body: dict[str, Any] = {
        "broker_id": broker_id,
        "name": "张三",
        "organisation_credit_code": LOCAL_ENTERPRISE["credit_code"],
        "filed_on": "2024-01-15",
    }
    body.update(overrides)
    return body


def funding_body(programme: str = "河南省科技成果转化专项", **overrides: Any) -> dict[str, Any]:
    """A valid record of provincial funding granted to the university for 2024."""
    body: dict[str, Any] = {
        "credit_code": UNIVERSITY["credit_code"],
        "year": 2024,
        "programme": programme,
        "amount": "300000.00",
    }
    body.update(overrides)
    return body
