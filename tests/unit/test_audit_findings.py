"""The audit's findings about one contract, judged with the policy's own money rules."""

from __future__ import annotations

from datetime import date

from services.audit.findings import (
    Finding,
    FindingsLog,
    LogWatch,
    contract_findings,
    overpaid_findings,
)
from services.common.policy.model import Contract, Policy
from services.common.policy.schedule import PolicySchedule
from tests.support.policy_facts import (
    PINGDINGSHAN_2020,
    TECHNOLOGY_CEILING,
    YUAN,
    contract,
    facts,
)

REPORT_END = date(2022, 12, 31)


def kinds(c: Contract, policy: Policy) -> list[str]:
    return [
        f.kind
        for f in contract_findings(
            c, facts(c), LogWatch(), PolicySchedule.single(policy), REPORT_END, {}
        )
    ]


def test_evidence_short_is_judged_against_the_ceiling_the_policy_names() -> None:
    # 300,000.00 paid and invoiced: under half the contract amount (1,000,000.00), but three
    # quarters of the technology amount (400,000.00), which is all a technology ceiling counts.
    c = contract(
        registered_on=date(2020, 3, 1),
        amount_fen=1_000_000 * YUAN,
        technology_fen=400_000 * YUAN,
        settled=[(date(2020, 6, 1), 300_000 * YUAN)],
    )

    assert kinds(c, PINGDINGSHAN_2020) == ["evidence_short"]
    assert kinds(c, TECHNOLOGY_CEILING) == []


def test_evidence_short_names_the_evidence_within_the_ceiling() -> None:
    c = contract(
        registered_on=date(2020, 3, 1),
        amount_fen=1_000_000 * YUAN,
        technology_fen=400_000 * YUAN,
        settled=[(date(2020, 6, 1), 100_000 * YUAN)],
    )

    [finding] = contract_findings(
        c, facts(c), LogWatch(), PolicySchedule.single(TECHNOLOGY_CEILING), REPORT_END, {}
    )

    assert finding.kind == "evidence_short"
    assert "100000.00 of 400000.00 (25%)" in finding.detail


def test_evidence_issued_after_the_reports_end_does_not_count_against_evidence_short() -> None:
    c = contract(
        registered_on=date(2020, 3, 1),
        amount_fen=1_000_000 * YUAN,
        invoices=[(date(2023, 2, 1), 1_000_000 * YUAN)],
        proofs=[(date(2020, 6, 1), 1_000_000 * YUAN)],
    )

    # Paid in full in 2020, invoiced in full only in 2023: on 31 Dec 2022 nothing was both.
    assert kinds(c, PINGDINGSHAN_2020) == ["evidence_short"]


def test_findings_written_to_their_file_read_back_in_order_a_page_at_a_time() -> None:
    log = FindingsLog()
    written = [
        Finding("recorded_late" if n % 3 else "related_party", f"{n:016d}", f"detail {n}", n)
        for n in range(3000)
    ]
    for finding in written[:2000]:
        log.append(finding)
    assert log.page(1990, 20) == written[1990:2000]  # read while still being written
    log.extend(written[2000:])

    assert len(log) == 3000
    assert log.page(0, 5) == written[:5]
    assert log.page(1020, 10) == written[1020:1030]  # across a mark
    assert log.page(2047, 3000) == written[2047:]
    assert log.page(3000, 10) == []
    assert list(log) == written
    assert log.by_kind["related_party"] == 1000 and log.by_kind["recorded_late"] == 2000


def _payout(position: int, year: int, *lines: tuple[str, str, int, str]) -> dict[str, object]:
    return {
        "position": position,
        "type": "PayoutRecorded",
        "schema_version": 1,
        "recorded_at": "2025-06-30T02:00:00.000000Z",
        "subject": f"ZF-{position}",
        "payload": {
            "payout_no": f"ZF-{position}",
            "year": year,
            "paid_on": "2025-06-30",
            "basis_position": position - 1,
            "lines": [
                {"beneficiary": b, "category": c, "amount_fen": fen, "kind": kind}
                for b, c, fen, kind in lines
            ],
        },
    }


def test_a_beneficiary_paid_more_than_it_is_entitled_to_now_is_to_recover() -> None:
    watch = LogWatch()
    watch.observe(_payout(10, 2024, ("C1", "absorption", 500 * YUAN, "payment")))
    watch.observe(_payout(20, 2024, ("C1", "absorption", 100 * YUAN, "recovery"),
                          ("C2", "output", 300 * YUAN, "payment")))  # fmt: skip
    entitled = {(2024, "absorption", "C1"): 300 * YUAN, (2024, "output", "C2"): 300 * YUAN}

    [found] = overpaid_findings(watch, entitled, [2024])

    assert (found.kind, found.position) == ("overpaid", 20)
    assert "C1 absorption 2024: paid 500.00, recovered 100.00, entitled now 300.00" in found.detail
    assert found.detail.endswith("100.00 to recover")
    assert list(overpaid_findings(watch, entitled, [2023])) == []
    assert watch.first_payouts == {2024: 10}


def _invoice_entry(position: int, no: str, issued_on: str, recorded_at: str, **marks: str) -> dict:
    return {
        "position": position,
        "type": "InvoiceRecorded",
        "schema_version": 1,
        "subject": no,
        "recorded_at": recorded_at,
        "payload": {"registration_no": no, "invoice_no": f"I{position}", "issued_on": issued_on},
        **marks,
    }


def test_entries_loaded_as_a_backlog_are_counted_apart_from_late_recording() -> None:
    late, loaded = (
        contract(registration_no=no, registered_on=date(2020, 3, 1), settled=[])
        for no in ("LATE", "LOADED")
    )
    watch = LogWatch()
    watch.observe(_invoice_entry(1, "LATE", "2020-04-01", "2022-06-01T00:00:00.000000Z"))
    watch.observe(
        _invoice_entry(2, "LOADED", "2020-04-01", "2022-06-01T00:00:00.000000Z", intake="backlog")
    )
    watch.observe(
        _invoice_entry(3, "LOADED", "2020-05-01", "2022-06-01T00:00:00.000000Z", intake="backlog")
    )

    def found(c: Contract) -> list[Finding]:
        return contract_findings(
            c, facts(c), watch, PolicySchedule.single(PINGDINGSHAN_2020), REPORT_END, {}
        )

    assert [f.kind for f in found(late) if f.kind.startswith("recorded")] == ["recorded_late"]
    [backlog] = [f for f in found(loaded) if f.kind.startswith("recorded")]
    assert (backlog.kind, backlog.position) == ("recorded_backlog", 2)
    assert "2 events loaded as backlog" in backlog.detail
