"""One-time grants (一次性补助) through the whole read side: the registry records them, the
subsidy store applies its log, and finance sees each as category one_time of the year decided —
its decided amount, explained by programme and document — in entitlements, balances, the payout
draft, payouts and exports; the audit's recomputation agrees."""

from __future__ import annotations

import csv
import io
import re

import pytest

from services.audit.replay import subsidy_differences
from services.audit.served import served_entitlements
from services.common.policy.loader import load_schedule
from tests.integration.test_subsidy_balances import System
from tests.integration.test_subsidy_balances import system as system  # the fixture
from tests.support.parties import LOCAL_ENTERPRISE, UNIVERSITY

YEAR = 2024
INSTITUTION = UNIVERSITY["credit_code"]
BASE = LOCAL_ENTERPRISE["credit_code"]


def _record_grants(system: System) -> None:
    bureau = "bureau"
    system.post(
        "/v1/demonstration-institutions",
        {"credit_code": INSTITUTION, "name": "平顶山学院技术转移中心", "level": "provincial",
         "recognised_on": "2023-12-01", "document_no": "豫科〔2023〕9号"},
        who=bureau,
    )  # fmt: skip
    for no, code, programme, amount, day in (
        ("YC-2024-001", INSTITUTION, "demonstration_institution", "200000.00", "2024-03-01"),
        ("YC-2024-002", BASE, "pilot_base", "30000.00", "2024-05-01"),
        ("YC-2024-003", BASE, "transfer_base", "20000.50", "2024-06-01"),
        ("YC-2023-009", BASE, "transfer_base", "99999.00", "2023-12-31"),  # another year
    ):
        system.post(
            "/v1/one-time-grants",
            {"grant_no": no, "credit_code": code, "programme": programme, "amount": amount,
             "decided_on": day, "document_no": f"平科〔{day[:4]}〕{no[-1]}号"},
            who=bureau,
        )  # fmt: skip


def test_a_grant_is_entitled_as_decided_in_the_year_decided_and_explained(
    system: System,
) -> None:
    _record_grants(system)
    system.catch_up()

    page = system.finance.get(
        "/v1/entitlements", params={"year": YEAR, "category": "one_time", "include": "claims"}
    )
    assert page.status_code == 200, page.text
    rows = {e["beneficiary"]: e for e in page.json()["entitlements"]}
    figures = {b: (e["turnover"], e["gross"], e["entitlement"], e["capped"])
               for b, e in rows.items()}  # fmt: skip
    assert figures == {
        INSTITUTION: ("200000.00", "200000.00", "200000.00", False),
        BASE: ("50000.50", "50000.50", "50000.50", False),
    }  # fmt: skip
    assert rows[BASE]["contracts"] == [
        {"registration_no": "YC-2024-002", "evidenced": "30000.00"},
        {"registration_no": "YC-2024-003", "evidenced": "20000.50"},
    ]
    assert page.json()["totals"]["one_time"] == {
        "beneficiaries": 2, "turnover": "250000.50", "gross": "250000.50",
        "entitlement": "250000.50",
    }  # fmt: skip
    earlier = system.finance.get("/v1/entitlements", params={"year": 2023}).json()
    assert [e["entitlement"] for e in earlier["entitlements"]] == ["99999.00"]

    explained = system.finance.get(f"/v1/entitlements/{BASE}", params={"year": YEAR})
    assert explained.status_code == 200, explained.text
    (one_time,) = explained.json()["entitlements"]
    assert (one_time["category"], one_time["rate"], one_time["cap"]) == ("one_time", None, None)
    assert [(g["grant_no"], g["programme"], g["programme_zh"], g["document_no"], g["amount"])
            for g in one_time["grants"]] == [
        ("YC-2024-002", "pilot_base", "中试熟化基地", "平科〔2024〕2号", "30000.00"),
        ("YC-2024-003", "transfer_base", "科技成果转移转化基地", "平科〔2024〕3号", "20000.50"),
    ]  # fmt: skip

    exported = system.finance.get("/v1/entitlements.csv", params={"year": YEAR})
    assert exported.status_code == 200, exported.text
    lines = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert any("一次性补助" in line and BASE in line for line in lines)


def test_a_grant_is_owed_drafted_paid_and_then_settled(system: System) -> None:
    _record_grants(system)

    owed = system.balances(category="one_time")
    assert {(b["beneficiary"], b["outstanding"]) for b in owed["balances"]} == {
        (INSTITUTION, "200000.00"),
        (BASE, "50000.50"),
    }
    draft = system.draft()
    one_time = sorted(
        (line["beneficiary"], line["amount"], line["kind"])
        for line in draft["lines"]
        if line["category"] == "one_time"
    )
    assert one_time == sorted(
        [(INSTITUTION, "200000.00", "payment"), (BASE, "50000.50", "payment")]
    )

    system.approve(draft, "ZF-2025-001")  # the registry accepts category one_time

    settled = system.balances(category="one_time")
    assert {(b["beneficiary"], b["paid"], b["outstanding"]) for b in settled["balances"]} == {
        (INSTITUTION, "200000.00", "0.00"),
        (BASE, "50000.50", "0.00"),
    }
    assert settled["totals"]["one_time"]["paid"] == "250000.50"
    payouts = system.finance.get("/v1/payouts", params={"year": YEAR}).json()["payouts"]
    assert {line["category"] for p in payouts for line in p["lines"]} >= {"one_time"}


@pytest.mark.parametrize("with_grants", [True, False])
def test_the_audit_recomputes_the_grants_as_finance_serves_them(
    system: System, with_grants: bool
) -> None:
    if with_grants:
        _record_grants(system)
    system.catch_up()

    def envelopes() -> list[dict[str, object]]:
        auditor = system.tokens.header("auditor")
        events: list[dict[str, object]] = system.registry.get("/v1/events", headers=auditor).json()[
            "events"
        ]
        return events

    compared = subsidy_differences(
        envelopes,
        lambda year, at: served_entitlements(system.finance, year, at),
        load_schedule(),
    )

    assert compared["differences"] == []
    counted = {y["year"]: y["entitlements"] for y in compared["years"] if not y["as_of_position"]}
    assert (counted[2023], counted[YEAR]) == ((1, 2) if with_grants else (0, 0))


def test_the_finance_page_names_the_category_and_explains_a_beneficiarys_grants(
    system: System,
) -> None:
    _record_grants(system)
    system.catch_up()
    form = system.finance.get("/").text  # the sign-in form's CSRF token, with its cookie
    (csrf,) = re.findall(r'<input type="hidden" name="csrf" value="([^"]+)">', form)
    signed_in = system.finance.post("/sign-in", data={"token": system.tokens.finance, "csrf": csrf})
    assert signed_in.status_code == 200, signed_in.text

    year = system.finance.get(f"/years/{YEAR}")
    beneficiary = system.finance.get(f"/years/{YEAR}/beneficiaries/{BASE}")

    assert year.status_code == 200, year.text
    assert "一次性补助" in year.text and "one_time" in year.text
    assert beneficiary.status_code == 200, beneficiary.text
    for shown in ("一次性补助", "YC-2024-002", "中试熟化基地", "平科〔2024〕3号", "20,000.50"):
        assert shown in beneficiary.text, shown
    assert f"<h1>{BASE}</h1>" in beneficiary.text  # no name in the log: its code stands
