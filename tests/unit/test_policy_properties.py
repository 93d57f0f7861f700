"""Properties of the money rules over generated facts (hypothesis)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.common.policy.engine import (
    amounts as gross_and_entitlement,
)
from services.common.policy.engine import (
    entitlements,
    evidence_years,
    evidenced_in_year,
    evidenced_until,
    round_half_up,
)
from services.common.policy.facts import FactsBuilder
from services.common.policy.model import (
    Broker,
    Category,
    Contract,
    Entitlement,
    Facts,
    Grant,
    Invoice,
    Policy,
    TransferProof,
)
from tests.support.policy_facts import (
    LOCAL_FIRM,
    LOCAL_NEW_RD,
    LOCAL_REGIONS,
    LOCAL_UNIVERSITY,
    OUTSIDE_FIRM,
    OUTSIDE_FIRM_SH,
    OUTSIDE_REGIONS,
    PINGDINGSHAN_2020,
    TECHNOLOGY_CEILING,
    Event,
    broker,
    broker_filed,
    by_key,
    contract,
    contract_events,
    funding_recorded,
    grant_decided,
    numbered,
    party,
    with_invoices_voided,
)

KINDS = ("enterprise", "university", "research_institute", "new_rd_institution", "other")
CONTRACT_TYPES = ("development", "transfer", "licensing", "consulting", "service")
BROKER_POOL = ("B1", "B2", "B3", "B4", "B5")
YEARS = range(2019, 2027)  # the turnover years the generated evidence can fall in
FIRST_DAY, LAST_DAY = date(2019, 1, 1), date(2026, 12, 31)
PROPERTY = settings(max_examples=150, deadline=None)

policies = st.sampled_from([PINGDINGSHAN_2020, TECHNOLOGY_CEILING])
days = st.dates(min_value=FIRST_DAY, max_value=LAST_DAY)
plan_days = st.dates(min_value=date(2020, 1, 1), max_value=date(2025, 12, 31))
# Beneficiaries recur across contracts: the named parties, or (kind, region, serial) from a
# small pool; half the time one of the named parties, each in a role a subsidy looks for.
parties = st.one_of(
    st.sampled_from([LOCAL_FIRM, LOCAL_UNIVERSITY, LOCAL_NEW_RD, OUTSIDE_FIRM, OUTSIDE_FIRM_SH]),
    st.builds(
        lambda kind, region, n: party(kind, region, KINDS.index(kind) * 10 + n),
        st.sampled_from(KINDS),
        st.one_of(st.sampled_from(LOCAL_REGIONS), st.sampled_from(OUTSIDE_REGIONS)),
        st.integers(1, 2),
    ),
)
# Mostly the eligible types, so that most contracts feed an entitlement.
contract_types = st.sampled_from(CONTRACT_TYPES[:3] * 2 + CONTRACT_TYPES[3:])
rarely = st.sampled_from([False] * 7 + [True])  # voided, withdrawn, cancelled, related
# Small amounts exercise rounding; large ones the caps (10% of 5,000,000.00 yuan is the cap).
amounts = st.one_of(st.integers(1, 10_000), st.integers(1, 10_000_000_000))
large_amounts = st.integers(500_000_000, 10_000_000_000)


def days_after(start: date) -> st.SearchStrategy[date]:
    """Days in the 600 after ``start``: mostly within a registration window."""
    return st.integers(0, 600).map(lambda n: min(start + timedelta(days=n), LAST_DAY))


@st.composite
def contracts(draw: st.DrawFn, index: int) -> tuple[Contract, dict[str, Any]]:
    """A contract as the registry would hold it, and how it was registered before amendment."""
    seller = draw(parties)
    buyer = draw(parties.filter(lambda p: p.credit_code != seller.credit_code))
    registered_on = draw(st.one_of(plan_days, days))
    amount = draw(st.one_of(amounts, large_amounts, large_amounts))
    no = f"{registered_on.year}4104{index:08d}"
    # Evidence mostly falls within the registration window, sometimes anywhere (late, early).
    evidence_days = st.one_of(*[days_after(registered_on)] * 3, days)
    # Valid input totals at most the contract amount, but amendments may lower it later.
    item = st.tuples(evidence_days, st.one_of(st.just(amount), st.integers(1, amount)), rarely)
    paid = draw(st.lists(item, min_size=1, max_size=3))
    invoiced = draw(st.one_of(st.just(paid), st.just(paid), st.lists(item, max_size=3)))

    c = Contract(
        registration_no=no,
        registered_on=registered_on,
        contract_type=draw(contract_types),
        seller=seller,
        buyer=buyer,
        brokers=tuple(draw(st.lists(st.sampled_from(BROKER_POOL), unique=True, max_size=3))),
        contract_amount_fen=amount,
        technology_amount_fen=draw(st.one_of(st.just(amount), st.integers(1, amount))),
        related_party=draw(rarely),
        cancelled=draw(rarely),
        invoices=tuple(
            Invoice(f"INV-{no}-{i}", day, fen, voided)
            for i, (day, fen, voided) in enumerate(invoiced, 1)
        ),
        transfer_proofs=tuple(
            TransferProof(f"BANK-{no}-{i}", day, fen, withdrawn)
            for i, (day, fen, withdrawn) in enumerate(paid, 1)
        ),
    )
    registered_as: dict[str, Any] = draw(
        st.sampled_from(
            [
                {},
                {"contract_amount_fen": amount * 2, "technology_amount_fen": amount},
                {"brokers": [b for b in BROKER_POOL if b not in c.brokers][:1]},
                {"related_party": not c.related_party},
            ]
        )
    )
    return c, registered_as


@dataclass(frozen=True)
class World:
    """Generated facts, and the registrations (before amendment) that led to them."""

    contracts: tuple[Contract, ...]
    registered_as: tuple[dict[str, Any], ...]
    brokers: tuple[Broker, ...]
    funded: frozenset[tuple[str, int]]
    grants: tuple[Grant, ...] = ()

    def facts(self, *replaced: Contract) -> Facts:
        by_no = {c.registration_no: c for c in self.contracts}
        by_no.update({c.registration_no: c for c in replaced})
        brokers = {b.broker_id: b for b in self.brokers}
        return Facts(by_no, brokers, self.funded, grants=self.grants)

    def streams(self) -> list[list[Event]]:
        """Each subject's events in its own order: one stream per contract, broker, funding."""
        result = [
            contract_events(c, **r) for c, r in zip(self.contracts, self.registered_as, strict=True)
        ]
        result += [[broker_filed(b)] for b in self.brokers]
        result += [[funding_recorded(code, year)] for code, year in sorted(self.funded)]
        result += [[grant_decided(g)] for g in self.grants]
        return result


@st.composite
def worlds(draw: st.DrawFn, min_contracts: int = 0) -> World:
    n = draw(st.integers(min_contracts, 6))
    drawn = [draw(contracts(i)) for i in range(n)]
    filed = draw(st.dictionaries(st.sampled_from(BROKER_POOL), days))
    sellers = sorted({c.seller.credit_code for c, _ in drawn})
    funded = (
        draw(st.frozensets(st.tuples(st.sampled_from(sellers), st.sampled_from(YEARS))))
        if sellers
        else frozenset()
    )
    # One-time grants to the contracts' parties or others, some in the same year.
    beneficiaries = st.sampled_from([*sellers, LOCAL_FIRM.credit_code, LOCAL_NEW_RD.credit_code])
    decided = draw(st.lists(st.tuples(beneficiaries, days, st.integers(1, 10**9)), max_size=3))
    programmes = ("demonstration_institution", "transfer_base", "pilot_base")
    return World(
        contracts=tuple(c for c, _ in drawn),
        registered_as=tuple(r for _, r in drawn),
        brokers=tuple(broker(b, day) for b, day in sorted(filed.items())),
        funded=funded,
        grants=tuple(
            Grant(f"G-{i}", code, programmes[i % 3], fen, day, f"平科〔{day.year}〕{i}号")
            for i, (code, day, fen) in enumerate(decided)
        ),
    )


def all_entitlements(f: Facts, policy: Policy) -> Iterator[Entitlement]:
    for year in range(2018, 2028):
        yield from entitlements(f, year, policy)


# 30,000,000.00 yuan paid in 2024: 10% and 1% of it are far above both caps.
CAPPED = World(
    contracts=(
        contract(
            brokers=["B1"], amount_fen=3_000_000_000, settled=[(date(2024, 5, 1), 3_000_000_000)]
        ),
    ),
    registered_as=({},),
    brokers=(broker("B1", date(2024, 1, 1)),),
    funded=frozenset(),
)


@PROPERTY
@given(
    st.integers(0, 10**13),
    st.integers(1, 7),
    st.sampled_from(["absorption", "output", "broker"]),
    policies,
)
@example(5, 1, "absorption", PINGDINGSHAN_2020)  # 0.5 fen: a half, rounded up
@example(149, 3, "broker", PINGDINGSHAN_2020)  # 149/300 fen: just under a half
def test_gross_is_the_exact_product_rounded_half_up(
    numerator: int, denominator: int, category: Category, policy: Policy
) -> None:
    """Computed in integers for speed: the same as rounding the exact Fraction product."""
    turnover = Fraction(numerator, denominator)
    rule = policy.categories[category]
    # A whole turnover comes as an int (the projection keeps whole fen so), a split as a Fraction.
    whole = (turnover.numerator,) if turnover.denominator == 1 else ()
    for given_as in (turnover, *whole):
        gross, entitled = gross_and_entitlement(given_as, category, policy)
        assert gross == round_half_up(turnover * rule.rate)
        assert entitled == min(gross, rule.cap_fen)


@PROPERTY
@given(worlds(), policies)
@example(CAPPED, PINGDINGSHAN_2020)
def test_an_entitlement_never_exceeds_its_cap(world: World, policy: Policy) -> None:
    for e in all_entitlements(world.facts(), policy):
        rule = policy.categories[e.category]
        assert 0 <= e.entitlement_fen <= rule.cap_fen
        assert e.turnover == sum((s.evidenced for s in e.contracts), Fraction(0))
        assert e.gross_fen == round_half_up(e.turnover * rule.rate)
        assert e.entitlement_fen == min(e.gross_fen, rule.cap_fen)
        assert e.capped == (e.gross_fen > rule.cap_fen)


@PROPERTY
@given(worlds(min_contracts=1), policies, st.data())
def test_adding_a_transfer_proof_never_lowers_any_beneficiarys_turnover(
    world: World, policy: Policy, data: st.DataObject
) -> None:
    # For the year the money was paid and every year before it. A later year can lose turnover:
    # E(31 Dec Y−1) grows too, because money is attributed to the year it was paid (see
    # test_policy_engine.test_an_earlier_payment_moves_evidence_out_of_a_later_year).
    c = data.draw(st.sampled_from(world.contracts))
    paid_on = data.draw(st.one_of(days_after(c.registered_on), days))
    proof = TransferProof("BANK-NEW", paid_on, data.draw(amounts))
    more = dataclasses.replace(c, transfer_proofs=(*c.transfer_proofs, proof))
    before, after = world.facts(), world.facts(more)

    for year in range(2018, proof.paid_on.year + 1):
        was = by_key(entitlements(before, year, policy))
        now = by_key(entitlements(after, year, policy))
        assert set(was) <= set(now)
        for key, e in was.items():
            assert now[key].turnover >= e.turnover
    # What has been evidenced by any day never shrinks.
    for year in range(2018, 2028):
        assert evidenced_until(more, date(year, 12, 31), policy) >= evidenced_until(
            c, date(year, 12, 31), policy
        )


@PROPERTY
@given(worlds(min_contracts=1), policies, st.data())
def test_voiding_every_invoice_of_a_contract_removes_it_from_every_entitlement(
    world: World, policy: Policy, data: st.DataObject
) -> None:
    c = data.draw(st.sampled_from(world.contracts))
    before, after = world.facts(), world.facts(with_invoices_voided(c))

    for year in range(2018, 2028):
        was = by_key(entitlements(before, year, policy))
        now = by_key(entitlements(after, year, policy))
        assert set(now) <= set(was)
        for key, e in now.items():
            assert c.registration_no not in {s.registration_no for s in e.contracts}
            assert c.registration_no not in {x.registration_no for x in e.excluded}
            # Everyone else's explanation is unchanged, less that contract.
            assert e.contracts == tuple(
                s for s in was[key].contracts if s.registration_no != c.registration_no
            )
            assert e.excluded == tuple(
                x for x in was[key].excluded if x.registration_no != c.registration_no
            )


@settings(max_examples=100, deadline=None)
@given(worlds(), policies, st.data())
def test_result_does_not_depend_on_the_order_different_contracts_events_arrive(
    world: World, policy: Policy, data: st.DataObject
) -> None:
    streams = world.streams()
    # An arrival order: which stream delivers next; each stream keeps its own order (as a
    # Kafka partition keyed by subject does), positions are assigned as events arrive.
    turns = data.draw(st.permutations([i for i, s in enumerate(streams) for _ in s]))
    pending = [iter(s) for s in streams]
    interleaved = [next(pending[i]) for i in turns]
    in_sequence = [event for s in streams for event in s]

    one = FactsBuilder().apply_all(numbered(in_sequence)).facts()
    other = FactsBuilder().apply_all(numbered(interleaved)).facts()

    assert one == other == dataclasses.replace(world.facts(), position=len(in_sequence))
    for year in range(2018, 2028):
        assert entitlements(one, year, policy) == entitlements(other, year, policy)


@PROPERTY
@given(worlds(), policies)
def test_brokers_never_share_more_than_the_contracts_evidence(world: World, policy: Policy) -> None:
    f = world.facts()
    for year in YEARS:
        shares: dict[str, Fraction] = {}
        for e in entitlements(f, year, policy):
            if e.category == "broker":
                for s in e.contracts:
                    shares[s.registration_no] = (
                        shares.get(s.registration_no, Fraction(0)) + s.evidenced
                    )
        for no, total in shares.items():
            c = f.contracts[no]
            filed = sum(
                1
                for b in c.brokers
                if b in f.brokers and f.brokers[b].filed_on <= date(year, 12, 31)
            )
            # Equal shares of all brokers named; a share not filed for is forfeited, not passed on.
            assert total == Fraction(evidenced_in_year(c, year, policy) * filed, len(c.brokers))
            assert total <= evidenced_in_year(c, year, policy)


@PROPERTY
@given(worlds(min_contracts=1), policies)
def test_money_is_evidenced_only_in_the_years_it_was_paid(world: World, policy: Policy) -> None:
    # The projection recomputes a contract only for these years: none may be missed.
    for c in world.contracts:
        for year in YEARS:
            if evidenced_in_year(c, year, policy) != 0:
                assert year in evidence_years(c)
