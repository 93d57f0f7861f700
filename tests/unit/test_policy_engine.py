"""The money rules of shared/domain.md § Money rules, as known answers worked out by hand."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from services.common.policy.engine import (
    Evidence,
    all_entitlements,
    contract_exclusion,
    entitlements,
    evidence,
    evidence_ceiling,
    evidenced_in_year,
    evidenced_until,
    one_time_entitlements,
    round_half_up,
)
from services.common.policy.model import ContractShare, Exclusion, Facts, Grant, Party
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
    PINGDINGSHAN_2020,
    TECHNOLOGY_CEILING,
    YUAN,
    broker,
    by_key,
    contract,
    facts,
    with_invoices_voided,
    with_proofs_withdrawn,
)

POLICY = PINGDINGSHAN_2020
IN_2024 = date(2024, 4, 15)


# --- absorption 技术吸纳 ----------------------------------------------------------------------


def test_local_enterprise_buying_from_outside_earns_ten_percent_absorption() -> None:
    c = contract(seller=OUTSIDE_FIRM, buyer=LOCAL_FIRM, settled=[(IN_2024, 800_000 * YUAN)])

    [e] = entitlements(facts(c), 2024, POLICY)

    # 800,000.00 yuan paid and invoiced in 2024; 10% of it is 80,000.00 yuan.
    assert (e.category, e.beneficiary, e.name) == (
        "absorption",
        LOCAL_FIRM.credit_code,
        LOCAL_FIRM.name,
    )
    assert e.year == 2024
    assert e.turnover == 80_000_000
    assert e.gross_fen == e.entitlement_fen == 8_000_000
    assert not e.capped
    assert e.contracts == (ContractShare(c.registration_no, Fraction(80_000_000)),)
    assert e.excluded == ()


def test_purchases_from_several_outside_sellers_add_up_for_the_buyer() -> None:
    a = contract("A", seller=OUTSIDE_FIRM, settled=[(IN_2024, 123_456_78)])
    b = contract("B", seller=OUTSIDE_FIRM_SH, settled=[(date(2024, 12, 31), 654_321_05)])

    [e] = entitlements(facts(a, b), 2024, POLICY)

    # 123,456.78 + 654,321.05 = 777,777.83 yuan = 77,777,783 fen; 10% = 7,777,778.3 → 7,777,778.
    assert e.turnover == 77_777_783
    assert e.entitlement_fen == 7_777_778
    assert [s.registration_no for s in e.contracts] == ["A", "B"]


def test_related_party_contract_earns_no_absorption_subsidy() -> None:
    c = contract(related_party=True, settled=[(IN_2024, 800_000 * YUAN)])

    [e] = entitlements(facts(c), 2024, POLICY)

    assert (e.category, e.beneficiary) == ("absorption", LOCAL_FIRM.credit_code)
    assert e.turnover == 0
    assert e.entitlement_fen == 0
    assert e.contracts == ()
    assert e.excluded == (Exclusion(c.registration_no, "related_party"),)


def test_local_seller_earns_the_buyer_no_absorption_subsidy() -> None:
    c = contract(seller=OTHER_LOCAL_FIRM, buyer=LOCAL_FIRM, settled=[(IN_2024, 800_000 * YUAN)])

    [e] = entitlements(facts(c), 2024, POLICY)

    assert e.category == "absorption"
    assert e.entitlement_fen == 0
    assert e.excluded == (Exclusion(c.registration_no, "seller_local"),)


@pytest.mark.parametrize("buyer", [LOCAL_OTHER, LOCAL_UNIVERSITY, OUTSIDE_FIRM_SH])
def test_only_a_local_enterprise_is_an_absorption_beneficiary(buyer: Party) -> None:
    c = contract(seller=OUTSIDE_FIRM, buyer=buyer, settled=[(IN_2024, 800_000 * YUAN)])

    assert entitlements(facts(c), 2024, POLICY) == []


# --- output 技术输出 --------------------------------------------------------------------------


def test_local_university_selling_to_local_buyer_earns_ten_percent_output() -> None:
    c = contract(seller=LOCAL_UNIVERSITY, buyer=LOCAL_FIRM, settled=[(IN_2024, 600_000 * YUAN)])

    result = by_key(entitlements(facts(c), 2024, POLICY))

    # 600,000.00 yuan evidenced in 2024; 10% is 60,000.00 yuan.
    output = result[("output", LOCAL_UNIVERSITY.credit_code)]
    assert output.name == LOCAL_UNIVERSITY.name
    assert output.turnover == 60_000_000
    assert output.entitlement_fen == 6_000_000
    assert output.contracts == (ContractShare(c.registration_no, Fraction(60_000_000)),)
    # The local buyer bought locally: it appears under absorption, excluded and explained.
    absorption = result[("absorption", LOCAL_FIRM.credit_code)]
    assert absorption.entitlement_fen == 0
    assert absorption.excluded == (Exclusion(c.registration_no, "seller_local"),)
    assert set(result) == {
        ("output", LOCAL_UNIVERSITY.credit_code),
        ("absorption", LOCAL_FIRM.credit_code),
    }


@pytest.mark.parametrize("seller", [LOCAL_INSTITUTE, LOCAL_NEW_RD])
def test_local_institutes_earn_output_like_universities(seller: Party) -> None:
    c = contract(seller=seller, buyer=LOCAL_OTHER, settled=[(IN_2024, 10_000 * YUAN)])

    [e] = entitlements(facts(c), 2024, POLICY)

    # 10,000.00 yuan × 10% = 1,000.00 yuan.
    assert e.category == "output"
    assert e.entitlement_fen == 1_000 * YUAN


@pytest.mark.parametrize("seller", [LOCAL_FIRM, LOCAL_OTHER, OUTSIDE_UNIVERSITY])
def test_only_a_local_university_or_institute_is_an_output_beneficiary(seller: Party) -> None:
    c = contract(seller=seller, buyer=OTHER_LOCAL_FIRM, settled=[(IN_2024, 10_000 * YUAN)])

    assert "output" not in {e.category for e in entitlements(facts(c), 2024, POLICY)}


def test_selling_to_a_buyer_outside_the_city_earns_no_output_subsidy() -> None:
    c = contract(seller=LOCAL_UNIVERSITY, buyer=OUTSIDE_FIRM, settled=[(IN_2024, 600_000 * YUAN)])

    [e] = entitlements(facts(c), 2024, POLICY)

    assert (e.category, e.entitlement_fen) == ("output", 0)
    assert e.excluded == (Exclusion(c.registration_no, "not_local"),)


def test_provincial_funding_in_the_year_earns_the_seller_no_output_subsidy() -> None:
    c = contract(seller=LOCAL_UNIVERSITY, buyer=LOCAL_OTHER, settled=[(IN_2024, 600_000 * YUAN)])
    funded = facts(c, funded=[(LOCAL_UNIVERSITY.credit_code, 2024)])

    [e] = entitlements(funded, 2024, POLICY)

    assert (e.category, e.entitlement_fen) == ("output", 0)
    assert e.excluded == (Exclusion(c.registration_no, "provincial_funding"),)


def test_provincial_funding_in_another_year_does_not_bar_output() -> None:
    c = contract(seller=LOCAL_UNIVERSITY, buyer=LOCAL_OTHER, settled=[(IN_2024, 600_000 * YUAN)])
    other_years = [(LOCAL_UNIVERSITY.credit_code, 2023), (LOCAL_UNIVERSITY.credit_code, 2025)]

    [e] = entitlements(facts(c, funded=other_years), 2024, POLICY)

    assert e.entitlement_fen == 60_000 * YUAN


# --- broker 技术经纪人 ------------------------------------------------------------------------


def test_broker_earns_one_percent_split_equally_among_named_brokers() -> None:
    c = contract(
        brokers=["B1", "B2"], amount_fen=3_000_000 * YUAN, settled=[(IN_2024, 3_000_000 * YUAN)]
    )
    filed = [broker("B1", date(2023, 1, 1)), broker("B2", date(2024, 12, 31))]

    result = by_key(entitlements(facts(c, brokers=filed), 2024, POLICY))

    # 3,000,000.00 yuan split two ways: 1,500,000.00 each; 1% is 15,000.00 yuan each.
    for broker_id in ("B1", "B2"):
        e = result[("broker", broker_id)]
        assert e.name == f"经纪人 {broker_id}"
        assert e.turnover == 150_000_000
        assert e.entitlement_fen == 15_000 * YUAN
        assert e.contracts == (ContractShare(c.registration_no, Fraction(150_000_000)),)


def test_broker_shares_are_summed_exactly_across_contracts_before_rounding_half_up() -> None:
    brokers = ["B1", "B2", "B3"]
    # Each contract's evidenced fen is 1 more than a multiple of 3, so each share ends in ⅓ fen.
    a = contract("A", brokers=brokers, settled=[(IN_2024, 12_000_001)])
    b = contract("B", brokers=brokers, settled=[(IN_2024, 12_000_001)])
    c = contract("C", brokers=brokers, settled=[(IN_2024, 13_036_948)])
    filed = [broker(b_id, date(2023, 6, 1)) for b_id in brokers]

    result = by_key(entitlements(facts(a, b, c, brokers=filed), 2024, POLICY))

    # Shares 4,000,000⅓ + 4,000,000⅓ + 4,345,649⅓ = 12,345,650 fen exactly; 1% = 123,456.5
    # → 123,457 fen. Shares rounded to the fen first (12,345,649 → 123,456.49 → 123,456), or
    # gross rounded per contract (40,000 + 40,000 + 43,456 = 123,456), would lose the fen.
    for broker_id in brokers:
        e = result[("broker", broker_id)]
        assert [s.evidenced for s in e.contracts] == [
            Fraction(12_000_001, 3),
            Fraction(12_000_001, 3),
            Fraction(13_036_948, 3),
        ]
        assert e.turnover == 12_345_650
        assert e.gross_fen == e.entitlement_fen == 123_457


def test_broker_not_filed_by_year_end_forfeits_its_share_to_nobody() -> None:
    c = contract(brokers=["B1", "B2", "B3"], settled=[(IN_2024, 900_000 * YUAN)])
    filed = [broker("B1", date(2024, 5, 1)), broker("B2", date(2025, 1, 1))]  # B3 never filed

    result = by_key(entitlements(facts(c, brokers=filed), 2024, POLICY))

    # 900,000.00 yuan ÷ 3 = 300,000.00 each; B1 earns 1% of its third: 3,000.00 yuan, not more.
    assert result[("broker", "B1")].turnover == 30_000_000
    assert result[("broker", "B1")].entitlement_fen == 3_000 * YUAN
    for late in ("B2", "B3"):
        assert result[("broker", late)].entitlement_fen == 0
        assert result[("broker", late)].excluded == (
            Exclusion(c.registration_no, "broker_not_filed"),
        )
    assert result[("broker", "B3")].name == "B3"  # unknown broker: named by its id


def test_broker_filed_later_earns_for_later_years_only() -> None:
    c = contract(
        brokers=["B1"],
        settled=[(IN_2024, 100_000 * YUAN), (date(2025, 2, 1), 50_000 * YUAN)],
    )
    late = facts(c, brokers=[broker("B1", date(2025, 1, 1))])

    assert by_key(entitlements(late, 2024, POLICY))[("broker", "B1")].entitlement_fen == 0
    # 50,000.00 yuan paid in 2025, filed by then: 1% = 500.00 yuan.
    assert by_key(entitlements(late, 2025, POLICY))[("broker", "B1")].entitlement_fen == 500 * YUAN


def test_broker_earns_when_only_the_buyer_is_local() -> None:
    c = contract(
        seller=OUTSIDE_FIRM, buyer=LOCAL_OTHER, brokers=["B1"], settled=[(IN_2024, 10_000 * YUAN)]
    )

    [e] = entitlements(facts(c, brokers=[broker("B1", date(2024, 1, 1))]), 2024, POLICY)

    # 10,000.00 yuan × 1% = 100.00 yuan.
    assert (e.category, e.entitlement_fen) == ("broker", 100 * YUAN)


def test_broker_earns_nothing_when_neither_party_is_local() -> None:
    c = contract(
        seller=OUTSIDE_FIRM,
        buyer=OUTSIDE_FIRM_SH,
        brokers=["B1"],
        settled=[(IN_2024, 10_000 * YUAN)],
    )

    [e] = entitlements(facts(c, brokers=[broker("B1", date(2024, 1, 1))]), 2024, POLICY)

    assert (e.category, e.entitlement_fen) == ("broker", 0)
    assert e.excluded == (Exclusion(c.registration_no, "not_local"),)


# --- caps -------------------------------------------------------------------------------------


def test_absorption_is_capped_at_five_hundred_thousand_yuan_per_buyer_and_year() -> None:
    # Two purchases of 3,000,000.00 yuan each: 10% of 6,000,000.00 = 600,000.00 > 500,000.00.
    a = contract("A", amount_fen=3_000_000 * YUAN, settled=[(IN_2024, 3_000_000 * YUAN)])
    b = contract("B", amount_fen=3_000_000 * YUAN, settled=[(IN_2024, 3_000_000 * YUAN)])

    [e] = entitlements(facts(a, b), 2024, POLICY)

    assert e.gross_fen == 60_000_000
    assert e.entitlement_fen == 50_000_000
    assert e.capped


def test_entitlement_exactly_at_the_cap_is_not_capped() -> None:
    c = contract(amount_fen=5_000_000 * YUAN, settled=[(IN_2024, 5_000_000 * YUAN)])

    [e] = entitlements(facts(c), 2024, POLICY)

    # 10% of 5,000,000.00 = 500,000.00 yuan: the cap itself.
    assert e.gross_fen == e.entitlement_fen == 50_000_000
    assert not e.capped


def test_output_is_capped_at_five_hundred_thousand_yuan() -> None:
    c = contract(
        seller=LOCAL_UNIVERSITY,
        buyer=LOCAL_OTHER,
        amount_fen=8_000_000 * YUAN,
        settled=[(IN_2024, 8_000_000 * YUAN)],
    )

    [e] = entitlements(facts(c), 2024, POLICY)

    # 10% of 8,000,000.00 = 800,000.00 yuan, capped at 500,000.00.
    assert (e.category, e.gross_fen, e.entitlement_fen, e.capped) == (
        "output",
        80_000_000,
        50_000_000,
        True,
    )


def test_broker_is_capped_at_two_hundred_thousand_yuan() -> None:
    c = contract(
        brokers=["B1"],
        amount_fen=25_000_000 * YUAN,
        settled=[(IN_2024, 25_000_000 * YUAN)],
    )

    e = by_key(entitlements(facts(c, brokers=[broker("B1", date(2020, 1, 1))]), 2024, POLICY))[
        ("broker", "B1")
    ]

    # 1% of 25,000,000.00 = 250,000.00 yuan, capped at 200,000.00.
    assert e.gross_fen == 25_000_000
    assert e.entitlement_fen == 20_000_000
    assert e.capped


# --- which contracts count --------------------------------------------------------------------


@pytest.mark.parametrize("registered_on", [date(2023, 1, 1), date(2024, 12, 31)])
def test_contract_registered_in_the_year_or_the_year_before_counts(registered_on: date) -> None:
    c = contract(registered_on=registered_on, settled=[(IN_2024, 100 * YUAN)])

    assert contract_exclusion(c, 2024, POLICY) is None
    assert entitlements(facts(c), 2024, POLICY)[0].entitlement_fen == 10 * YUAN


@pytest.mark.parametrize("registered_on", [date(2022, 12, 31), date(2025, 1, 1)])
def test_contract_registered_outside_the_two_year_window_counts_for_nothing(
    registered_on: date,
) -> None:
    c = contract(registered_on=registered_on, settled=[(IN_2024, 100 * YUAN)])

    [e] = entitlements(facts(c), 2024, POLICY)

    assert contract_exclusion(c, 2024, POLICY) == "outside_window"
    assert e.entitlement_fen == 0
    assert e.excluded == (Exclusion(c.registration_no, "outside_window"),)


def test_cancelled_contract_counts_for_nothing_in_any_category() -> None:
    c = contract(
        seller=LOCAL_UNIVERSITY,
        buyer=LOCAL_FIRM,
        brokers=["B1"],
        cancelled=True,
        settled=[(IN_2024, 100_000 * YUAN)],
    )

    result = entitlements(facts(c, brokers=[broker("B1", date(2024, 1, 1))]), 2024, POLICY)

    assert {e.category for e in result} == {"absorption", "output", "broker"}
    for e in result:
        assert e.entitlement_fen == 0
        assert e.excluded == (Exclusion(c.registration_no, "cancelled"),)


@pytest.mark.parametrize("contract_type", ["consulting", "service"])
def test_consulting_and_service_contracts_earn_no_subsidy(contract_type: str) -> None:
    c = contract(contract_type=contract_type, brokers=["B1"], settled=[(IN_2024, 100_000 * YUAN)])

    result = entitlements(facts(c, brokers=[broker("B1", date(2024, 1, 1))]), 2024, POLICY)

    assert [(e.category, e.entitlement_fen) for e in result] == [("absorption", 0), ("broker", 0)]
    assert all(e.excluded == (Exclusion(c.registration_no, "contract_type"),) for e in result)


@pytest.mark.parametrize("contract_type", ["development", "transfer", "licensing"])
def test_development_transfer_and_licensing_contracts_count(contract_type: str) -> None:
    c = contract(contract_type=contract_type, settled=[(IN_2024, 100_000 * YUAN)])

    [e] = entitlements(facts(c), 2024, POLICY)

    assert e.entitlement_fen == 10_000 * YUAN


@pytest.mark.parametrize("year", [2019, 2026])
def test_turnover_years_outside_2020_to_2025_give_nothing(year: int) -> None:
    c = contract(registered_on=date(year, 1, 10), settled=[(date(year, 3, 1), 100_000 * YUAN)])

    assert entitlements(facts(c), year, POLICY) == []


@pytest.mark.parametrize("year", [2020, 2025])
def test_first_and_last_turnover_years_of_the_plan_count(year: int) -> None:
    c = contract(registered_on=date(year, 1, 10), settled=[(date(year, 3, 1), 100_000 * YUAN)])

    [e] = entitlements(facts(c), year, POLICY)

    assert e.entitlement_fen == 10_000 * YUAN


def test_contract_with_nothing_evidenced_in_the_year_names_no_beneficiary() -> None:
    paid_2023 = contract(registered_on=date(2023, 2, 1), settled=[(date(2023, 5, 1), 100 * YUAN)])

    assert entitlements(facts(paid_2023), 2024, POLICY) == []


# --- evidence ---------------------------------------------------------------------------------


def test_money_paid_across_a_year_end_is_attributed_to_the_year_paid() -> None:
    c = contract(
        invoices=[(date(2024, 12, 20), 500_000 * YUAN)],
        proofs=[(date(2024, 12, 31), 300_000 * YUAN), (date(2025, 1, 1), 200_000 * YUAN)],
    )

    # E(31 Dec 2024) = min(300,000, 500,000, 1,200,000) = 300,000.00
    # E(31 Dec 2025) = min(500,000, 500,000, 1,200,000) = 500,000.00 → 2025 gets 200,000.00.
    assert evidenced_until(c, date(2024, 12, 31), POLICY) == 300_000 * YUAN
    assert evidenced_in_year(c, 2024, POLICY) == 300_000 * YUAN
    assert evidenced_in_year(c, 2025, POLICY) == 200_000 * YUAN
    assert entitlements(facts(c), 2024, POLICY)[0].entitlement_fen == 30_000 * YUAN
    assert entitlements(facts(c), 2025, POLICY)[0].entitlement_fen == 20_000 * YUAN


def test_an_earlier_payment_moves_evidence_out_of_a_later_year() -> None:
    paid_2025 = contract(
        amount_fen=1_000_000 * YUAN,
        invoices=[(date(2024, 6, 1), 1_000_000 * YUAN)],
        proofs=[(date(2025, 3, 1), 1_000_000 * YUAN)],
    )
    also_paid_2024 = contract(
        amount_fen=1_000_000 * YUAN,
        invoices=[(date(2024, 6, 1), 1_000_000 * YUAN)],
        proofs=[(date(2025, 3, 1), 1_000_000 * YUAN), (date(2024, 7, 1), 400_000 * YUAN)],
    )

    # Without the 2024 proof: 2025 gets min(1,000,000, 1,000,000, 1,000,000) − 0 = 1,000,000.00.
    # With it: E(31 Dec 2024) = 400,000.00 and E(31 Dec 2025) = 1,000,000.00 (the ceiling), so
    # 2024 gets 400,000.00 and 2025 only 600,000.00: a proof can lower a later year's turnover.
    assert evidenced_in_year(paid_2025, 2025, POLICY) == 1_000_000 * YUAN
    assert evidenced_in_year(also_paid_2024, 2024, POLICY) == 400_000 * YUAN
    assert evidenced_in_year(also_paid_2024, 2025, POLICY) == 600_000 * YUAN


def test_money_paid_but_not_invoiced_does_not_count_until_invoiced() -> None:
    c = contract(
        invoices=[(date(2024, 6, 1), 400_000 * YUAN)],
        proofs=[(IN_2024, 1_000_000 * YUAN)],
    )

    # E(31 Dec 2024) = min(1,000,000, 400,000, 1,200,000) = 400,000.00 yuan.
    assert evidenced_in_year(c, 2024, POLICY) == 400_000 * YUAN


def test_an_invoice_issued_later_completes_the_evidence_of_earlier_payments() -> None:
    early = [(date(2024, 6, 1), 400_000 * YUAN)]
    late = [(date(2025, 3, 1), 600_000 * YUAN)]
    before = contract(invoices=early, proofs=[(IN_2024, 1_000_000 * YUAN)])
    after = contract(invoices=early + late, proofs=[(IN_2024, 1_000_000 * YUAN)])

    # Before: min(1,000,000, 400,000) = 400,000.00. After the 2025 invoice: I = 1,000,000.00,
    # so all 1,000,000.00 paid in 2024 is evidenced for 2024, and 2025 gets nothing.
    assert evidenced_in_year(before, 2024, POLICY) == 400_000 * YUAN
    assert evidenced_in_year(after, 2024, POLICY) == 1_000_000 * YUAN
    assert evidenced_in_year(after, 2025, POLICY) == 0
    assert entitlements(facts(after), 2024, POLICY)[0].entitlement_fen == 100_000 * YUAN


def test_evidence_is_capped_at_the_contract_amount() -> None:
    # An amendment lowered the amount to 1,000,000.00 after 1,200,000.00 was paid and invoiced.
    c = contract(
        amount_fen=1_000_000 * YUAN,
        technology_fen=800_000 * YUAN,
        settled=[(IN_2024, 700_000 * YUAN), (date(2025, 2, 1), 500_000 * YUAN)],
    )

    # 2024: min(700,000, 1,200,000, 1,000,000) = 700,000.00
    # 2025: min(1,200,000, 1,200,000, 1,000,000) − 700,000 = 300,000.00
    assert evidenced_in_year(c, 2024, POLICY) == 700_000 * YUAN
    assert evidenced_in_year(c, 2025, POLICY) == 300_000 * YUAN
    assert evidenced_until(c, date(2099, 12, 31), POLICY) == 1_000_000 * YUAN


def test_evidence_ceiling_is_the_amount_the_policy_names() -> None:
    c = contract(amount_fen=1_000_000 * YUAN, technology_fen=800_000 * YUAN)

    assert evidence_ceiling(c, POLICY) == 1_000_000 * YUAN
    assert evidence_ceiling(c, TECHNOLOGY_CEILING) == 800_000 * YUAN


def test_evidence_held_on_a_day_leaves_out_invoices_issued_after_it() -> None:
    c = contract(
        invoices=[(date(2024, 6, 1), 400_000 * YUAN), (date(2025, 3, 1), 600_000 * YUAN)],
        proofs=[(IN_2024, 1_000_000 * YUAN)],
    )
    end_2024 = date(2024, 12, 31)

    # The whole log completes 2024's evidence with the 2025 invoice; held on 31 Dec 2024, only
    # the June invoice was: min(1,000,000, 400,000, 1,200,000) = 400,000.00.
    assert evidenced_until(c, end_2024, POLICY) == 1_000_000 * YUAN
    assert evidenced_until(c, end_2024, POLICY, invoiced_by=end_2024) == 400_000 * YUAN


def test_evidence_is_capped_at_the_technology_amount_when_the_policy_says_so() -> None:
    c = contract(
        amount_fen=1_000_000 * YUAN,
        technology_fen=800_000 * YUAN,
        settled=[(IN_2024, 700_000 * YUAN), (date(2025, 2, 1), 300_000 * YUAN)],
    )

    # 2024: min(700,000, 1,000,000, 800,000) = 700,000.00
    # 2025: min(1,000,000, 1,000,000, 800,000) − 700,000 = 100,000.00 → 10,000.00 absorption.
    assert evidenced_in_year(c, 2024, TECHNOLOGY_CEILING) == 700_000 * YUAN
    assert evidenced_in_year(c, 2025, TECHNOLOGY_CEILING) == 100_000 * YUAN
    assert evidenced_in_year(c, 2025, POLICY) == 300_000 * YUAN
    assert entitlements(facts(c), 2025, TECHNOLOGY_CEILING)[0].entitlement_fen == 10_000 * YUAN


def test_the_terms_of_evidence_explain_each_years_figure() -> None:
    c = with_invoices_voided(
        contract(
            amount_fen=1_000_000 * YUAN,
            technology_fen=800_000 * YUAN,
            brokers=("B-1", "B-2", "B-3"),
            settled=[(IN_2024, 700_000 * YUAN), (date(2025, 2, 1), 500_000 * YUAN)],
            invoices=[(date(2025, 3, 1), 1 * YUAN)],
        ),
        "INV-2024410400000001-1",
    )

    # Invoices not voided: 700,000.00 + 500,000.00 (the 1.00 is voided); paid by 31 Dec 2025:
    # 1,200,000.00. 2025: min(1,200,000.00, 1,200,000.00, 1,000,000.00) − 700,000.00 of 2024.
    assert evidence(c, 2025, POLICY) == Evidence(
        paid_fen=1_200_000 * YUAN,
        invoiced_fen=1_200_000 * YUAN,
        ceiling_fen=1_000_000 * YUAN,
        earlier_fen=700_000 * YUAN,
        evidenced_fen=300_000 * YUAN,
        brokers=3,
    )
    # Under the technology ceiling: min(…, 800,000.00) − 700,000.00.
    assert evidence(c, 2025, TECHNOLOGY_CEILING).ceiling_fen == 800_000 * YUAN
    assert evidence(c, 2025, TECHNOLOGY_CEILING).evidenced_fen == 100_000 * YUAN
    for year in (2023, 2024, 2025, 2026):
        for policy in (POLICY, TECHNOLOGY_CEILING):
            assert evidence(c, year, policy).evidenced_fen == evidenced_in_year(c, year, policy)


def test_voided_invoices_do_not_count() -> None:
    c = contract(
        invoices=[(IN_2024, 500_000 * YUAN), (IN_2024, 300_000 * YUAN)],
        proofs=[(IN_2024, 800_000 * YUAN)],
    )
    voided = with_invoices_voided(c, c.invoices[0].invoice_no)

    # Once the 500,000.00 invoice is voided (红冲): min(800,000, 300,000) = 300,000.00 yuan.
    assert evidenced_in_year(c, 2024, POLICY) == 800_000 * YUAN
    assert evidenced_in_year(voided, 2024, POLICY) == 300_000 * YUAN
    assert entitlements(facts(voided), 2024, POLICY)[0].entitlement_fen == 30_000 * YUAN


def test_withdrawn_transfer_proofs_do_not_count() -> None:
    c = contract(
        invoices=[(IN_2024, 800_000 * YUAN)],
        proofs=[(IN_2024, 500_000 * YUAN), (date(2024, 9, 1), 300_000 * YUAN)],
    )
    withdrawn = with_proofs_withdrawn(c, c.transfer_proofs[1].serial_no)

    # Without the 300,000.00 proof: min(500,000, 800,000) = 500,000.00 yuan.
    assert evidenced_in_year(withdrawn, 2024, POLICY) == 500_000 * YUAN
    assert entitlements(facts(withdrawn), 2024, POLICY)[0].entitlement_fen == 50_000 * YUAN


def test_contract_whose_evidence_is_all_voided_or_withdrawn_names_no_beneficiary() -> None:
    c = contract(settled=[(IN_2024, 800_000 * YUAN)])

    assert entitlements(facts(with_invoices_voided(c)), 2024, POLICY) == []
    assert entitlements(facts(with_proofs_withdrawn(c)), 2024, POLICY) == []


# --- rounding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        (Fraction(0), 0),
        (Fraction(1, 2), 1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),  # banker's rounding would give 2
        (Fraction(499, 1000), 0),
        (Fraction(1001, 2000), 1),
        (Fraction(7, 3), 2),
        (Fraction(8, 3), 3),
        (Fraction(123_456_5, 10), 123_457),
    ],
)
def test_round_half_up_rounds_halves_away_from_zero(amount: Fraction, rounded: int) -> None:
    assert round_half_up(amount) == rounded


@pytest.mark.parametrize(("evidenced_fen", "subsidy_fen"), [(5, 1), (25, 3), (24, 2), (15, 2)])
def test_gross_subsidy_rounds_half_a_fen_up(evidenced_fen: int, subsidy_fen: int) -> None:
    # 10% of 5 fen = 0.5 → 1; of 25 = 2.5 → 3 (not 2); of 24 = 2.4 → 2; of 15 = 1.5 → 2.
    c = contract(settled=[(IN_2024, evidenced_fen)])

    [e] = entitlements(facts(c), 2024, POLICY)

    assert e.gross_fen == subsidy_fen


def test_entitlements_are_ordered_by_category_then_beneficiary() -> None:
    a = contract(
        "A",
        seller=OUTSIDE_FIRM,
        buyer=OTHER_LOCAL_FIRM,
        brokers=["B2", "B1"],
        settled=[(IN_2024, 100 * YUAN)],
    )
    b = contract("B", seller=LOCAL_UNIVERSITY, buyer=LOCAL_FIRM, settled=[(IN_2024, 100 * YUAN)])

    result = entitlements(facts(a, b), 2024, POLICY)

    keys = [(e.category, e.beneficiary) for e in result]
    assert keys == sorted(keys)
    assert {e.category for e in result} == {"absorption", "output", "broker"}


def _grant(no: str, code: str, fen: int, day: date, programme: str = "transfer_base") -> Grant:
    return Grant(no, code, programme, fen, day, f"平科〔{day.year}〕1号")


def test_a_one_time_grant_is_its_decided_amount_in_the_year_decided() -> None:
    # 30,000,000.00 yuan: far above every category's cap, and a one-time grant has none.
    grants = (
        _grant("G2", LOCAL_FIRM.credit_code, 3_000_000_000, date(2024, 12, 31)),
        _grant("G1", LOCAL_FIRM.credit_code, 12_345, date(2024, 1, 1), "pilot_base"),
        _grant("G3", LOCAL_FIRM.credit_code, 99, date(2025, 1, 1)),
        _grant(
            "G4", LOCAL_UNIVERSITY.credit_code, 7, date(2024, 6, 1), "demonstration_institution"
        ),
    )

    university, firm = one_time_entitlements(Facts(grants=grants), 2024, POLICY)  # by code

    assert (firm.beneficiary, firm.category, firm.year) == (
        LOCAL_FIRM.credit_code,
        "one_time",
        2024,
    )
    assert firm.turnover == firm.gross_fen == firm.entitlement_fen == 3_000_012_345
    assert not firm.capped and firm.excluded == ()
    assert firm.contracts == (
        ContractShare("G1", Fraction(12_345)),
        ContractShare("G2", Fraction(3_000_000_000)),
    )
    assert university.entitlement_fen == 7
    assert one_time_entitlements(Facts(grants=grants), 2019, POLICY) == []  # not in force


def test_all_entitlements_are_the_computed_ones_and_the_grants_in_category_order() -> None:
    c = contract("A", seller=LOCAL_UNIVERSITY, buyer=LOCAL_FIRM, settled=[(IN_2024, 100 * YUAN)])
    grant = _grant("G1", LOCAL_FIRM.credit_code, 500, date(2024, 3, 1))
    with_grant = Facts(facts(c).contracts, grants=(grant,))

    keys = [(e.category, e.beneficiary) for e in all_entitlements(with_grant, 2024, POLICY)]

    assert keys == [
        ("absorption", LOCAL_FIRM.credit_code),  # excluded: the seller is local
        ("one_time", LOCAL_FIRM.credit_code),
        ("output", LOCAL_UNIVERSITY.credit_code),
    ]
