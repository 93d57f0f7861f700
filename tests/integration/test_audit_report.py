"""The evaluation report over a generated history whose figures are worked out here.

The history is posted to a real registry (SQLite file, in-process) through ``Registry.submit``
with batch commands, each recorded on the day it happened: the registry's clock is set to that
day, as if the stations had posted it then. The log is read back with ``read_log`` into a bundle
by the same writer as ``tcr audit export``, and ``tcr audit report`` runs over the bundle.

Ordinary contracts are fully evidenced on the day they are registered and recorded that day, so
they raise no finding; each finding kind has one contract built to raise it and nothing else.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import eventsourcing.domain
import orjson
import pytest

from services.audit.findings import KIND_LABELS
from services.audit.report import audit_report
from services.audit.sources import BundleSource, export_bundle
from services.cli import main
from services.common.envelope import canonical_bytes
from services.common.policy.loader import load_schedule
from services.common.policy.model import Party
from services.common.spreadsheet import safe_cell
from services.registry.api.batch import batch_args
from services.registry.application import Registry
from services.registry.commands import Command, Principal
from tests.support.demo_bundle import InProcessRegistry
from tests.support.parties import credit_code
from tests.support.policy_facts import (
    LOCAL_FIRM,
    LOCAL_INSTITUTE,
    LOCAL_NEW_RD,
    LOCAL_OTHER,
    LOCAL_UNIVERSITY,
    OTHER_LOCAL_FIRM,
    OUTSIDE_FIRM,
    OUTSIDE_FIRM_SH,
    OUTSIDE_UNIVERSITY,
)

STATION = Principal("station-s1", "station", "S1")
BUREAU = Principal("bureau", "bureau")
FINANCE = Principal("finance", "finance")
YEAR = 2022
YEARS = (2020, 2021, 2022)
OUTPUT_KINDS = {"university", "research_institute", "new_rd_institution"}
ELIGIBLE = {"development", "transfer", "licensing"}


def local(p: Party) -> bool:
    return p.region_code.startswith("4104")


@dataclass(frozen=True)
class Deal:
    """A contract of the generated history and its evidence (amounts in whole yuan)."""

    no: str
    registered_on: date
    seller: Party
    buyer: Party
    amount: int
    contract_type: str = "development"
    brokers: tuple[str, ...] = ()
    related: bool = False
    invoices: tuple[tuple[date, int], ...] | None = None  # None: in full, on registered_on
    proofs: tuple[tuple[date, int], ...] | None = None
    recorded_on: date | None = None  # when the registration was recorded; registered_on if None
    cancelled_on: date | None = None

    @property
    def invoiced(self) -> tuple[tuple[date, int], ...]:
        return ((self.registered_on, self.amount),) if self.invoices is None else self.invoices

    @property
    def paid(self) -> tuple[tuple[date, int], ...]:
        return ((self.registered_on, self.amount),) if self.proofs is None else self.proofs


# -- the generated history ---------------------------------------------------------------------

# (seller, buyer) of the ordinary contracts, each year; every other one names broker B1.
PAIRS = [
    (OUTSIDE_FIRM, LOCAL_FIRM),  # absorption (F1)
    (OUTSIDE_UNIVERSITY, OTHER_LOCAL_FIRM),  # absorption (F2), an achievement
    (LOCAL_UNIVERSITY, LOCAL_FIRM),  # output (university), an achievement
    (LOCAL_INSTITUTE, OTHER_LOCAL_FIRM),  # output (institute), an achievement
    (LOCAL_NEW_RD, LOCAL_FIRM),  # output (new R&D institution), an achievement
    (LOCAL_FIRM, OTHER_LOCAL_FIRM),  # local to local: no absorption, no output
    (OTHER_LOCAL_FIRM, OUTSIDE_FIRM),  # a local seller selling out of the city
    (LOCAL_UNIVERSITY, OUTSIDE_FIRM),  # output to a buyer not local: no output subsidy
    (LOCAL_OTHER, LOCAL_FIRM),
]
TYPES = ("development", "transfer", "licensing")

ORDINARY = [
    Deal(
        no=f"{year}41040000{i:04d}",
        registered_on=date(year, i + 1, 10),
        seller=seller,
        buyer=buyer,
        amount=100_000 * (i + 1) + 10_000 * (year - 2019),
        contract_type=TYPES[i % 3],
        brokers=("B1",) if i % 2 == 0 else (),
    )
    for year in YEARS
    for i, (seller, buyer) in enumerate(PAIRS)
]
# Consulting counts in turnover, never for a subsidy; it makes 2022 reach the plan's target.
BIG = Deal(
    "2022410499000001", date(2022, 11, 15), OUTSIDE_FIRM_SH, OTHER_LOCAL_FIRM, 700_000_000,
    contract_type="consulting",
)  # fmt: skip
# Broker B5 is filed only in 2023: its share of 2022 is forfeited.
UNFILED_BROKER = Deal(
    "2022410499000002", date(2022, 8, 10), LOCAL_FIRM, OTHER_LOCAL_FIRM, 300_000, brokers=("B5",)
)

# One contract per finding kind. Their seller is a local "other" party and buyer a local firm,
# so they feed no subsidy category and their partial evidence changes no entitlement.
PAID_NOT_INVOICED = Deal(
    "2021410488000001", date(2021, 3, 10), LOCAL_OTHER, OTHER_LOCAL_FIRM, 1_000_000,
    invoices=((date(2021, 3, 20), 600_000),), proofs=((date(2021, 3, 20), 1_000_000),),
)  # fmt: skip
INVOICED_NOT_PAID = Deal(
    "2021410488000002", date(2021, 4, 12), LOCAL_OTHER, OTHER_LOCAL_FIRM, 1_000_000,
    invoices=((date(2021, 4, 20), 1_000_000),), proofs=((date(2021, 4, 20), 600_000),),
)  # fmt: skip
EVIDENCE_SHORT = Deal(
    "2021410488000003", date(2021, 2, 10), LOCAL_OTHER, OTHER_LOCAL_FIRM, 1_000_000,
    invoices=((date(2021, 2, 20), 200_000),), proofs=((date(2021, 2, 20), 200_000),),
)  # fmt: skip
RELATED = Deal(
    "2021410488000004", date(2021, 5, 10), OUTSIDE_FIRM, LOCAL_FIRM, 800_000, related=True
)
RECORDED_LATE = Deal(
    "2021410488000005", date(2021, 1, 10), LOCAL_OTHER, OTHER_LOCAL_FIRM, 500_000,
    invoices=((date(2021, 6, 1), 500_000),), proofs=((date(2021, 6, 1), 500_000),),
    recorded_on=date(2021, 6, 1),
)  # fmt: skip
# Fed F1's absorption entitlement of 2021, then cancelled in March 2022, after its payout began.
CANCELLED_AFTER_PAYOUT = Deal(
    "2021410488000006", date(2021, 4, 10), OUTSIDE_FIRM, LOCAL_FIRM, 1_000_000,
    invoices=((date(2021, 5, 10), 1_000_000),), proofs=((date(2021, 5, 10), 1_000_000),),
    cancelled_on=date(2022, 3, 10),
)  # fmt: skip

# Look-alikes that must raise nothing.
CANCELLED_IN_ITS_YEAR = Deal(
    "2021410477000001", date(2021, 6, 10), OUTSIDE_FIRM, LOCAL_FIRM, 400_000,
    invoices=((date(2021, 6, 20), 400_000),), proofs=((date(2021, 6, 20), 400_000),),
    cancelled_on=date(2021, 9, 1),
)  # fmt: skip
RECENT_UNEVIDENCED = Deal(
    "2022410477000002", date(2022, 10, 1), LOCAL_OTHER, OTHER_LOCAL_FIRM, 900_000,
    invoices=(), proofs=(),
)  # fmt: skip
AFTER_THE_REPORT = Deal(
    "2023410477000003", date(2023, 3, 1), LOCAL_OTHER, OTHER_LOCAL_FIRM, 500_000,
    invoices=(), proofs=((date(2023, 3, 1), 500_000),),
)  # fmt: skip

DEALS = [
    *ORDINARY,
    BIG,
    UNFILED_BROKER,
    PAID_NOT_INVOICED,
    INVOICED_NOT_PAID,
    EVIDENCE_SHORT,
    RELATED,
    RECORDED_LATE,
    CANCELLED_AFTER_PAYOUT,
    CANCELLED_IN_ITS_YEAR,
    RECENT_UNEVIDENCED,
    AFTER_THE_REPORT,
]
# Finance pays F1's absorption of 2021 as known in January 2022, the cancelled contract's
# 100,000.00 included: after the cancellation that much is to recover.
PAID_2021 = date(2022, 1, 15)
# Demonstration institutions (code, level, recognised on) and one-time grants (number, code,
# programme, yuan, decided on): provincial ones short of the target of 3 by 2022.
INSTITUTE_A, INSTITUTE_B, BASE_C = (credit_code(f"12410400MB000009{n}") for n in (1, 2, 3))
INSTITUTIONS = [
    (INSTITUTE_A, "provincial", date(2020, 5, 1)),
    (INSTITUTE_B, "municipal", date(2021, 2, 1)),
    (INSTITUTE_B, "provincial", date(2021, 9, 1)),
    (INSTITUTE_A, "national", date(2022, 4, 1)),
    (BASE_C, "provincial", date(2023, 1, 5)),  # after the report's year
]
GRANTS = [
    ("YC-1", INSTITUTE_A, "demonstration_institution", 100_000, date(2020, 6, 1)),
    ("YC-2", BASE_C, "transfer_base", 50_000, date(2021, 3, 1)),
    ("YC-3", BASE_C, "pilot_base", 30_000, date(2021, 8, 1)),
    ("YC-4", INSTITUTE_B, "demonstration_institution", 80_000, date(2021, 10, 1)),
    ("YC-5", BASE_C, "pilot_base", 20_000, date(2022, 2, 1)),
]
PAYOUT_2021 = {
    "payout_no": "ZF-2022-001", "year": 2021, "paid_on": PAID_2021.isoformat(),
    "basis_position": 1,
    "lines": [{"beneficiary": LOCAL_FIRM.credit_code, "category": "absorption",
               "amount": "112000.00", "kind": "payment"},
              # a grant paid as decided: no overpayment
              {"beneficiary": BASE_C, "category": "one_time", "amount": "80000.00",
               "kind": "payment"}],
}  # fmt: skip
EXPECTED_FINDINGS = {
    ("", "overpaid"),
    (PAID_NOT_INVOICED.no, "paid_not_invoiced"),
    (INVOICED_NOT_PAID.no, "invoiced_not_paid"),
    (EVIDENCE_SHORT.no, "evidence_short"),
    (RELATED.no, "related_party"),
    (RECORDED_LATE.no, "recorded_late"),
    (CANCELLED_AFTER_PAYOUT.no, "cancelled_after_payout"),
}
BROKERS_FILED = {
    "B1": date(2019, 12, 1),
    "B2": date(2020, 5, 1),
    "B3": date(2020, 8, 1),
    "B4": date(2021, 3, 1),
    "B6": date(2022, 7, 1),
    "B5": date(2023, 2, 1),
}
FUNDED = (LOCAL_UNIVERSITY, 2022)  # provincial funding: no output subsidy for 2022


def _party(p: Party) -> dict[str, str]:
    return asdict(p)


def _yuan(amount: int) -> str:
    return f"{amount}.00"


def _postings(deal: Deal) -> Iterator[tuple[date, dict[str, Any]]]:
    """(day recorded, batch command) for a deal's registration, evidence and cancellation."""
    no, seller, buyer = deal.no, deal.seller.credit_code, deal.buyer.credit_code
    yield (
        deal.recorded_on or deal.registered_on,
        {
            "op": "register_contract",
            "body": {
                "registration_no": no,
                "station_id": "S1",
                "registered_on": deal.registered_on.isoformat(),
                "signed_on": deal.registered_on.replace(day=1).isoformat(),
                "title": f"技术合同 {no}",
                "contract_type": deal.contract_type,
                "domain": "advanced manufacturing",
                "seller": _party(deal.seller),
                "buyer": _party(deal.buyer),
                "brokers": list(deal.brokers),
                "contract_amount": _yuan(deal.amount),
                "technology_amount": _yuan(deal.amount),
                "related_party": deal.related,
            },
        },
    )
    for k, (day, amount) in enumerate(deal.invoiced, 1):
        yield (
            day,
            {
                "op": "record_invoice",
                "body": {
                    "registration_no": no,
                    "invoice_no": f"INV-{no}-{k}",
                    "issued_on": day.isoformat(),
                    "amount": _yuan(amount),
                    "issuer_credit_code": seller,
                    "recipient_credit_code": buyer,
                },
            },
        )
    for k, (day, amount) in enumerate(deal.paid, 1):
        yield (
            day,
            {
                "op": "record_transfer_proof",
                "body": {
                    "registration_no": no,
                    "serial_no": f"BANK-{no}-{k}",
                    "paid_on": day.isoformat(),
                    "amount": _yuan(amount),
                    "payer_credit_code": buyer,
                    "payee_credit_code": seller,
                    "bank": "中国银行平顶山分行",
                },
            },
        )
    if deal.cancelled_on is not None:
        yield (
            deal.cancelled_on,
            {
                "op": "cancel_contract",
                "body": {
                    "registration_no": no,
                    "cancelled_on": deal.cancelled_on.isoformat(),
                    "reason": "合同解除",
                },
            },
        )


def history() -> list[tuple[date, Principal, list[dict[str, Any]]]]:
    """Every posting of the history, grouped by the day and principal that recorded it."""
    postings: list[tuple[date, Principal, dict[str, Any]]] = []
    for broker_id, filed_on in BROKERS_FILED.items():
        body = {
            "broker_id": broker_id,
            "name": f"经纪人 {broker_id}",
            "organisation_credit_code": LOCAL_FIRM.credit_code,
            "filed_on": filed_on.isoformat(),
        }
        postings.append((filed_on, BUREAU, {"op": "file_broker", "body": body}))
    funding = {
        "credit_code": FUNDED[0].credit_code,
        "year": FUNDED[1],
        "programme": "河南省科技成果转化专项",
        "amount": "300000.00",
    }
    postings.append(
        (date(2022, 2, 1), BUREAU, {"op": "record_provincial_funding", "body": funding})
    )
    for code, level, day in INSTITUTIONS:
        body = {"credit_code": code, "name": f"示范机构 {code[-4:]}", "level": level,
                "recognised_on": day.isoformat(),
                "document_no": f"豫科〔{day.year}〕1号"}  # fmt: skip
        postings.append((day, BUREAU, {"op": "recognise_institution", "body": body}))
    for no, code, programme, yuan, day in GRANTS:
        body = {"grant_no": no, "credit_code": code, "programme": programme,
                "amount": f"{yuan}.00", "decided_on": day.isoformat(),
                "document_no": f"平科〔{day.year}〕{no}号"}  # fmt: skip
        postings.append((day, BUREAU, {"op": "decide_grant", "body": body}))
    for deal in DEALS:
        postings += [(day, STATION, command) for day, command in _postings(deal)]
    postings.append((PAID_2021, FINANCE, {"op": "record_payout", "body": PAYOUT_2021}))
    postings.sort(key=lambda p: p[0])  # stable: a deal's registration stays before its evidence
    batches: list[tuple[date, Principal, list[dict[str, Any]]]] = []
    for day, principal, command in postings:
        if batches and batches[-1][0] == day and batches[-1][1] == principal:
            batches[-1][2].append(command)
        else:
            batches.append((day, principal, [command]))
    return batches


# -- the figures, worked out -------------------------------------------------------------------


def in_report(deal: Deal) -> bool:
    return deal.registered_on.year in YEARS and deal.cancelled_on is None


def expected_turnover() -> dict[int, dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {y: defaultdict(int) for y in YEARS}
    for deal in DEALS:
        y = deal.registered_on.year
        if y not in YEARS:
            continue
        if deal.cancelled_on is None:
            rows[y]["contracts"] += 1
            rows[y]["amount"] += deal.amount
        else:
            rows[y]["cancelled_contracts"] += 1
            rows[y]["cancelled_amount"] += deal.amount
    return rows


def expected_regions() -> dict[tuple[str, int, str], int]:
    amounts: dict[tuple[str, int, str], int] = defaultdict(int)
    for deal in filter(in_report, DEALS):
        for role, p in (("seller", deal.seller), ("buyer", deal.buyer)):
            if local(p):
                amounts[(p.region_code, deal.registered_on.year, role)] += deal.amount
    return amounts


def fully_evidenced_in_its_year(deal: Deal) -> bool:
    year = deal.registered_on.year
    return all(
        sum(a for d, a in evidence if d.year == year) == deal.amount
        for evidence in (deal.invoiced, deal.paid)
    )


def expected_subsidies(year: int) -> dict[str, dict[str, int]]:
    """Entitlements (fen) per category and beneficiary. Every deal that holds a category's role
    is fully evidenced in its registration year, and no beneficiary comes near a cap."""
    turnover: dict[str, dict[str, int]] = {c: defaultdict(int) for c in CATEGORY_RATE}
    for deal in DEALS:
        if not in_report(deal) or deal.registered_on.year != year:
            continue
        if deal.contract_type not in ELIGIBLE:
            continue
        s, b = deal.seller, deal.buyer
        absorption = b.kind == "enterprise" and local(b) and not local(s) and not deal.related
        output = s.kind in OUTPUT_KINDS and local(s) and local(b) and (s, year) != FUNDED
        if absorption or output or deal.brokers:
            assert fully_evidenced_in_its_year(deal), deal.no
        fen = deal.amount * 100
        if absorption:
            turnover["absorption"][b.credit_code] += fen
        if output:
            turnover["output"][s.credit_code] += fen
        for broker_id in deal.brokers:
            if BROKERS_FILED[broker_id] <= date(year, 12, 31) and (local(s) or local(b)):
                turnover["broker"][broker_id] += fen // len(deal.brokers)
    result = {}
    for category, per in turnover.items():
        rate = CATEGORY_RATE[category]
        assert all(fen * rate // 100 < CAPS_FEN[category] for fen in per.values())
        result[category] = {who: fen * rate // 100 for who, fen in per.items()}
    return result


CATEGORY_RATE = {"absorption": 10, "output": 10, "broker": 1}  # percent
CAPS_FEN = {"absorption": 500_000_00, "output": 500_000_00, "broker": 200_000_00}


def ratio(numerator: int, denominator: int) -> str:
    return str(
        (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    )


def yuan_of_fen(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated history posted day by day to a real registry, exported as a bundle."""
    folder = tmp_path_factory.mktemp("audit")
    app = Registry(f"sqlite:///{folder / 'registry.db'}", checkpoint_every=25)
    clock = [datetime.now(UTC)]
    try:
        with pytest.MonkeyPatch.context() as patch:
            # The registry stamps recorded_at from the event library's clock.
            patch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", lambda: clock[0])
            app.start()
            for day, principal, commands in history():
                clock[0] = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)  # 10:00 +08
                parsed = [Command(c["op"], batch_args(c["op"], c["body"])) for c in commands]
                app.submit(principal, parsed, batch=True).result(timeout=30)
            head = app.head()
            deadline = time.monotonic() + 10
            while len(app.checkpoints.all()) < head // 25 and time.monotonic() < deadline:
                time.sleep(0.05)
            export_bundle(InProcessRegistry(app), folder / "bundle")  # type: ignore[arg-type]
    finally:
        app.close()
    return folder / "bundle"


@pytest.fixture(scope="module")
def written(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``tcr audit report`` over the bundle: its exit code, output and files."""
    out = tmp_path_factory.mktemp("report")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["audit", "report", str(bundle), "--year", str(YEAR), "--out", str(out)])
    return {
        "code": code,
        "stdout": printed.getvalue(),
        "out": out,
        "figures": json.loads((out / "figures.json").read_text("utf-8")),
    }


def _by_year(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {row["year"]: row for row in rows}


# -- the figures -------------------------------------------------------------------------------


def test_the_report_is_written_and_names_its_files(written: dict[str, Any]) -> None:
    assert written["code"] == 0
    for name in ("report.html", "figures.json", "figures.csv", "findings.csv"):
        assert str(written["out"] / name) in written["stdout"]
    figures = written["figures"]
    assert figures["report_year"] == YEAR
    assert figures["years"] == list(YEARS)
    assert figures["verdict"]["ok"] is True
    assert figures["verdict"]["checkpoints_verified"] >= 1


def test_turnover_per_year_counts_registered_contracts_and_leaves_out_cancelled_ones(
    written: dict[str, Any],
) -> None:
    rows = _by_year(written["figures"]["turnover"])
    expected = expected_turnover()
    for y in YEARS:
        assert rows[y]["contracts"] == expected[y]["contracts"]
        assert rows[y]["amount"] == _yuan(expected[y]["amount"])
        assert rows[y]["cancelled_contracts"] == expected[y]["cancelled_contracts"]
        assert rows[y]["cancelled_amount"] == _yuan(expected[y]["cancelled_amount"])
    # Worked by hand: nine ordinary contracts a year, 2021's five finding contracts, 2022's
    # consulting contract of 7亿, the unfiled broker's and the recent unevidenced contract.
    assert rows[2020]["amount"] == "4590000.00"
    assert rows[2021]["amount"] == "8980000.00"
    assert (rows[2021]["cancelled_contracts"], rows[2021]["cancelled_amount"]) == (2, "1400000.00")
    assert rows[2022]["amount"] == "705970000.00"


def test_turnover_is_held_against_the_plans_targets(written: dict[str, Any]) -> None:
    rows = _by_year(written["figures"]["turnover"])
    assert (rows[2020]["target"], rows[2020]["met"]) == (None, None)
    assert (rows[2022]["target"], rows[2022]["met"]) == ("700000000.00", True)


def test_turnover_per_county_is_reported_as_seller_and_as_buyer(written: dict[str, Any]) -> None:
    regions = {r["region_code"]: r for r in written["figures"]["regions"]}
    assert list(regions)[:10] == [
        "410402", "410403", "410404", "410411", "410421",
        "410422", "410423", "410425", "410481", "410482",
    ]  # fmt: skip
    assert regions["410402"]["name"] == "新华区"
    assert regions["410402"]["name_en"] == "Xinhua District"
    expected = expected_regions()
    for code, region in regions.items():
        seller_total = buyer_total = 0
        for row in region["years"]:
            seller = expected.get((code, row["year"], "seller"), 0)
            buyer = expected.get((code, row["year"], "buyer"), 0)
            assert row["seller_amount"] == _yuan(seller), (code, row["year"])
            assert row["buyer_amount"] == _yuan(buyer), (code, row["year"])
            seller_total, buyer_total = seller_total + seller, buyer_total + buyer
        assert region["seller_amount"] == _yuan(seller_total)
        assert region["buyer_amount"] == _yuan(buyer_total)
    # 汝州市 buys the 7亿 consulting contract of 2022; 叶县 has no party at all.
    ruzhou_2022 = _by_year(regions["410482"]["years"])[2022]
    assert Decimal(ruzhou_2022["buyer_amount"]) > 700_000_000
    assert regions["410422"]["seller_amount"] == regions["410422"]["buyer_amount"] == "0.00"


def test_brokers_filed_are_counted_cumulatively_against_the_target(
    written: dict[str, Any],
) -> None:
    rows = _by_year(written["figures"]["brokers"])
    assert [rows[y]["filed"] for y in YEARS] == [3, 4, 5]
    assert [rows[y]["filed_in_year"] for y in YEARS] == [2, 1, 1]
    assert (rows[2022]["target"], rows[2022]["met"]) == (100, False)
    assert rows[2021]["target"] is None


def test_provincial_demonstration_institutions_are_counted_against_the_target(
    written: dict[str, Any],
) -> None:
    rows = _by_year(written["figures"]["institutions"])
    assert [rows[y]["recognised"] for y in YEARS] == [
        {"national": 0, "provincial": 1, "municipal": 0},
        {"national": 0, "provincial": 1, "municipal": 1},
        {"national": 1, "provincial": 0, "municipal": 0},
    ]
    assert [rows[y]["provincial"] for y in YEARS] == [1, 2, 2]
    assert (rows[2022]["target"], rows[2022]["met"]) == (3, False)
    assert rows[2021]["target"] is None


def test_one_time_grants_are_reported_by_programme_and_year_and_paid_without_finding(
    written: dict[str, Any],
) -> None:
    rows = _by_year(written["figures"]["grants"])
    expected: dict[int, dict[str, dict[str, Any]]] = {
        y: {p: {"grants": 0, "amount": "0.00"} for p in ("demonstration_institution",
            "transfer_base", "pilot_base")} for y in YEARS
    }  # fmt: skip
    for _, _, programme, yuan, day in GRANTS:
        shown = expected[day.year][programme]
        shown["grants"] += 1
        shown["amount"] = f"{Decimal(shown['amount']) + yuan:.2f}"
    assert {y: rows[y]["programmes"] for y in YEARS} == expected
    assert [rows[y]["total"] for y in YEARS] == ["100000.00", "160000.00", "20000.00"]
    page = (written["out"] / "report.html").read_text("utf-8")
    for label in ("技术转移示范机构", "一次性补助", "中试熟化基地", "One-time grants"):
        assert label in page, label
    overpaid = [f for f in _findings_csv(written["out"]) if f["kind"] == "overpaid"]
    assert overpaid and not any("one_time" in f["detail"] for f in overpaid)


def test_achievements_count_institutional_sellers_with_local_buyers(
    written: dict[str, Any],
) -> None:
    achievements = written["figures"]["achievements"]
    expected = {
        y: [
            d
            for d in DEALS
            if in_report(d)
            and d.registered_on.year == y
            and d.seller.kind in OUTPUT_KINDS
            and local(d.buyer)
        ]
        for y in YEARS
    }
    rows = _by_year(achievements["years"])
    for y in YEARS:
        assert rows[y]["contracts"] == len(expected[y]) == 4
        assert rows[y]["amount"] == _yuan(sum(d.amount for d in expected[y]))
    assert achievements["target"] == {
        "first_year": 2020,
        "last_year": 2022,
        "contracts": 300,
        "counted": 12,
        "met": False,
    }


def test_subsidies_by_category_and_year_and_their_share_of_turnover(
    written: dict[str, Any],
) -> None:
    rows = _by_year(written["figures"]["subsidies"])
    turnover = expected_turnover()
    for y in YEARS:
        expected = expected_subsidies(y)
        row = rows[y]
        base = turnover[y]["amount"] * 100
        total = 0
        for category, per in expected.items():
            paid = sum(per.values())
            total += paid
            got = row["categories"][category]
            assert got["entitlement"] == yuan_of_fen(paid), (y, category)
            assert got["beneficiaries"] == sum(1 for fen in per.values() if fen > 0), (y, category)
            assert got["share"] == ratio(paid, base), (y, category)
        assert row["total"] == yuan_of_fen(total)
        assert row["share"] == ratio(total, base)
    # Worked by hand for 2020: absorption 10% of 110,000 + 210,000; output 10% of 310,000 +
    # 410,000 + 510,000; broker B1 1% of 110,000 + 310,000 + 510,000 + 710,000 + 910,000.
    cats = rows[2020]["categories"]
    assert (cats["absorption"]["entitlement"], cats["absorption"]["beneficiaries"]) == (
        "32000.00",
        2,
    )
    assert (cats["output"]["entitlement"], cats["output"]["beneficiaries"]) == ("123000.00", 3)
    assert (cats["broker"]["entitlement"], cats["broker"]["beneficiaries"]) == ("25500.00", 1)
    # 2022: the funded university earns no output subsidy; broker B5 was not yet filed.
    cats = rows[2022]["categories"]
    assert (cats["output"]["entitlement"], cats["output"]["beneficiaries"]) == ("96000.00", 2)
    assert (cats["broker"]["entitlement"], cats["broker"]["beneficiaries"]) == ("26500.00", 1)


# -- the findings ------------------------------------------------------------------------------


def _findings_csv(out: Path) -> list[dict[str, str]]:
    with (out / "findings.csv").open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def test_each_finding_kind_is_raised_by_the_contract_built_for_it_and_no_other(
    written: dict[str, Any],
) -> None:
    rows = _findings_csv(written["out"])
    assert {(r["registration_no"], r["kind"]) for r in rows} == EXPECTED_FINDINGS
    assert len(rows) == len(EXPECTED_FINDINGS)
    counts = written["figures"]["findings_by_kind"]
    assert set(counts) == set(KIND_LABELS)
    assert {k for k, n in counts.items() if n} == {kind for _, kind in EXPECTED_FINDINGS}
    assert counts["chain_break"] == 0


def test_findings_name_what_an_evaluator_checks(written: dict[str, Any]) -> None:
    details = {r["kind"]: r for r in _findings_csv(written["out"])}
    assert "1000000.00 exceed invoices 600000.00" in details["paid_not_invoiced"]["detail"]
    assert (
        "invoices 1000000.00 exceed transfer proofs 600000.00"
        in (details["invoiced_not_paid"]["detail"])
    )
    assert "200000.00 of 1000000.00 (20%)" in details["evidence_short"]["detail"]
    assert "2022-03-10" in details["cancelled_after_payout"]["detail"]
    assert "2021" in details["cancelled_after_payout"]["detail"]
    assert "entitled now 12000.00: 100000.00 to recover" in details["overpaid"]["detail"]
    late = details["recorded_late"]
    assert "registered_on 2021-01-10 recorded 2021-06-01, 142 days" in late["detail"]
    assert late["position"] != ""
    assert details["related_party"]["label"] == "关联企业合同"


# -- the files ---------------------------------------------------------------------------------


def test_report_html_is_one_self_contained_page(written: dict[str, Any]) -> None:
    page = (written["out"] / "report.html").read_text("utf-8")
    lowered = page.lower()
    assert lowered.startswith("<!doctype html>")
    assert lowered.count("<html") == 1 and lowered.count("</html>") == 1
    assert not re.search(r"""\b(src|href)\s*=\s*["']?\s*(https?:)?//""", lowered)
    for outside in ("<script", "<link", "<iframe", "<img", "@import", "url("):
        assert outside not in lowered, outside
    assert lowered.count("<svg") >= 5
    for label in ("技术合同成交额", "turnover", "技术经纪人", "brokers", "审计发现", "Findings"):
        assert label in page, label
    assert "Tamper-evident chain verified" in page
    for no, _ in EXPECTED_FINDINGS:
        assert no in page


def _json_value(figures: dict[str, Any], row: dict[str, str]) -> Any:
    figure, key, measure = row["figure"], row["key"], row["measure"]
    if figure == "achievements" and "-" in row["year"]:
        target = figures["achievements"]["target"]
        return target["contracts"] if measure == "target" else target[measure]
    year = int(row["year"])
    if figure == "turnover":
        return _by_year(figures["turnover"])[year][measure]
    if figure == "region":
        region = next(r for r in figures["regions"] if r["region_code"] == key)
        return _by_year(region["years"])[year][measure]
    if figure == "subsidy":
        subsidy = _by_year(figures["subsidies"])[year]
        if key == "total":
            return subsidy["total"] if measure == "entitlement" else subsidy["share"]
        return subsidy["categories"][key][measure]
    if figure == "brokers":
        return _by_year(figures["brokers"])[year][measure]
    if figure == "institutions":
        row = _by_year(figures["institutions"])[year]
        if measure == "recognised":
            return row["recognised"][key]
        return row["provincial"] if measure == "cumulative" else row[measure]
    if figure == "grants":
        row = _by_year(figures["grants"])[year]
        return row["total"] if key == "total" else row["programmes"][key][measure]
    assert figure == "achievements", figure
    return _by_year(figures["achievements"]["years"])[year][measure]


def _as_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_figures_csv_holds_the_same_figures_as_figures_json(written: dict[str, Any]) -> None:
    figures = written["figures"]
    with (written["out"] / "figures.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        assert row["value"] == _as_csv(_json_value(figures, row)), row
    kinds = defaultdict(int)
    for row in rows:
        kinds[row["figure"]] += 1
    regions = len(figures["regions"])
    assert kinds["region"] == regions * len(YEARS) * 4
    assert kinds["subsidy"] == len(YEARS) * (3 * 4 + 2)
    assert kinds["turnover"] == len(YEARS) * 4 + 2  # one year with a target: target and met
    assert kinds["brokers"] == len(YEARS) * 2 + 2
    assert kinds["achievements"] == len(YEARS) * 2 + 3
    assert kinds["institutions"] == len(YEARS) * 4 + 2  # the target's year: target and met
    assert kinds["grants"] == len(YEARS) * (3 * 2 + 1)


def test_no_cell_of_the_report_csvs_starts_a_formula(written: dict[str, Any]) -> None:
    for name in ("figures.csv", "findings.csv"):
        with (written["out"] / name).open(encoding="utf-8-sig", newline="") as f:
            cells = [cell for row in csv.reader(f) for cell in row]
        for cell in cells:
            assert safe_cell(cell) == cell, (name, cell)  # numbers such as "-0.5" included


def test_the_report_reads_the_log_in_one_pass(bundle: Path) -> None:
    class Counting(BundleSource):
        passes = 0

        def envelopes(self) -> Iterator[dict[str, Any]]:
            Counting.passes += 1
            return super().envelopes()

    report = audit_report(Counting(bundle), YEAR, load_schedule())
    assert Counting.passes == 1
    assert report.verdict.ok and report.position == report.verdict.last_position


def test_a_year_before_the_plan_is_refused(bundle: Path) -> None:
    with pytest.raises(ValueError, match="before the plan's first year"):
        audit_report(BundleSource(bundle), 2019, load_schedule())


# -- a tampered bundle -------------------------------------------------------------------------


def test_a_break_in_the_chain_refuses_the_report_unless_told_and_then_heads_it(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    lines = (tampered / "events.jsonl").read_bytes().splitlines()
    index = next(
        i for i, line in enumerate(lines) if RELATED.no.encode() in line and b"Registered" in line
    )
    envelope = orjson.loads(lines[index])
    envelope["payload"]["contract_amount_fen"] += 1_000_000_00  # one million yuan more
    lines[index] = canonical_bytes(envelope)
    (tampered / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    out = tmp_path / "report"
    refused = main(["audit", "report", str(tampered), "--year", str(YEAR), "--out", str(out)])
    printed = capsys.readouterr().out
    assert refused == 1
    assert f"TAMPERING DETECTED at position {envelope['position']}" in printed
    assert "refused" in printed and not out.exists()

    argv = ["audit", "report", str(tampered), "--year", str(YEAR), "--out", str(out)]
    code = main([*argv, "--no-verify"])
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 1
    assert "TAMPERING DETECTED" in printed and str(out / "report.html") in printed
    assert "--no-verify: the history does NOT verify" in captured.err

    figures = json.loads((out / "figures.json").read_text("utf-8"))
    assert figures["verdict"]["ok"] is False
    assert figures["verdict"]["position"] == envelope["position"]
    rows = _findings_csv(out)
    assert rows[0]["kind"] == "chain_break"
    assert rows[0]["position"] == str(envelope["position"])
    # Entries after the break are still read: the altered amount and everything later count.
    assert _by_year(figures["turnover"])[2021]["amount"] == "9980000.00"
    assert _by_year(figures["turnover"])[2022]["amount"] == "705970000.00"
    page = (out / "report.html").read_text("utf-8")
    assert "TAMPERING DETECTED" in page
    assert page.index("TAMPERING DETECTED") < page.index("技术合同成交额 <small>")
