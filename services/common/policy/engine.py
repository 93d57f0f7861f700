"""The money rules (shared/domain.md § Money rules): pure functions from facts to entitlements.

All money is integer fen, or an exact Fraction of fen where a broker's equal share needs it;
rounding happens once, half up, when the gross subsidy is taken from a beneficiary's turnover.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from services.common.policy.model import (
    Broker,
    Category,
    Contract,
    ContractShare,
    Entitlement,
    Exclusion,
    ExclusionReason,
    Facts,
    Grant,
    Policy,
)

OUTPUT_KINDS = frozenset({"university", "research_institute", "new_rd_institution"})


def evidenced_until(
    contract: Contract, day: date, policy: Policy, *, invoiced_by: date | None = None
) -> int:
    """E(d) = min(P(d), I, C): money both paid by ``day`` and invoiced, within the ceiling.

    With ``invoiced_by``, I counts only the invoices issued by then: the evidence a reader
    held on that day (the audit's findings), not as the whole log completes it.
    """
    return min(
        paid_until(contract, day),
        invoiced(contract, invoiced_by),
        evidence_ceiling(contract, policy),
    )


def paid_until(contract: Contract, day: date) -> int:
    """P(d): the transfer proofs not withdrawn, paid on or before ``day``."""
    return sum(
        p.amount_fen for p in contract.transfer_proofs if not p.withdrawn and p.paid_on <= day
    )


def invoiced(contract: Contract, by: date | None = None) -> int:
    """I: the invoices not voided, whenever issued (or issued on or before ``by``)."""
    if by is None:  # the subsidy's hot path: no date to compare
        return sum(i.amount_fen for i in contract.invoices if not i.voided)
    return sum(i.amount_fen for i in contract.invoices if not i.voided and i.issued_on <= by)


def evidence_ceiling(contract: Contract, policy: Policy) -> int:
    """C: the contract amount, or the technology amount where the policy says so."""
    if policy.evidence_ceiling == "contract_amount":
        return contract.contract_amount_fen
    return contract.technology_amount_fen


def evidenced_in_year(contract: Contract, year: int, policy: Policy) -> int:
    """The evidenced turnover attributed to ``year``: E(31 Dec Y) − E(31 Dec Y−1)."""
    return evidenced_until(contract, date(year, 12, 31), policy) - evidenced_until(
        contract, date(year - 1, 12, 31), policy
    )


@dataclass(frozen=True, slots=True)
class Evidence:
    """How a contract's evidenced turnover of a year comes about, term by term."""

    paid_fen: int  # P(31 Dec Y)
    invoiced_fen: int  # I
    ceiling_fen: int  # C
    earlier_fen: int  # E(31 Dec Y−1): counted in the years before
    evidenced_fen: int  # E(31 Dec Y) − E(31 Dec Y−1)
    brokers: int  # named on the contract, who split it equally


def evidence(contract: Contract, year: int, policy: Policy) -> Evidence:
    """The terms of :func:`evidenced_in_year`, for explaining it to a reader."""
    paid, billed, cap = (
        paid_until(contract, date(year, 12, 31)),
        invoiced(contract),
        evidence_ceiling(contract, policy),
    )
    earlier = evidenced_until(contract, date(year - 1, 12, 31), policy)
    return Evidence(
        paid, billed, cap, earlier, min(paid, billed, cap) - earlier, len(contract.brokers)
    )


def evidence_years(contract: Contract) -> set[int]:
    """The only years in which :func:`evidenced_in_year` can be non-zero: E(d) moves only on
    the days money is paid (the invoiced total and the ceiling do not depend on the day)."""
    return {p.paid_on.year for p in contract.transfer_proofs if not p.withdrawn}


def contract_exclusion(contract: Contract, year: int, policy: Policy) -> ExclusionReason | None:
    """Why a contract counts for no category in ``year``, or None when it may count."""
    if contract.cancelled:
        return "cancelled"
    if contract.contract_type not in policy.eligible_contract_types:
        return "contract_type"
    first = year - policy.registration_window_years + 1
    if not first <= contract.registered_on.year <= year:
        return "outside_window"
    return None


def round_half_up(amount: Fraction | int) -> int:
    """Round a non-negative amount of fen to whole fen, halves up."""
    if isinstance(amount, int):
        return amount
    return math.floor(amount + Fraction(1, 2))


@dataclass(frozen=True, slots=True)
class Claim:
    """A contract's part in one beneficiary's category in a year: counted with its share of the
    evidenced turnover (``reason`` None), or excluded for ``reason``."""

    beneficiary: str
    name: str
    category: Category
    registration_no: str
    share: Fraction | int  # whole fen as an int: only a split among brokers needs a Fraction
    reason: ExclusionReason | None


def contract_claims(
    contract: Contract,
    year: int,
    brokers: Mapping[str, Broker],
    funded: Container[tuple[str, int]],
    policy: Policy,
) -> Iterator[Claim]:
    """Every claim one contract makes in ``year``: the only facts it reads besides the contract
    are the brokers it names and the provincial funding of its seller."""
    evidenced = evidenced_in_year(contract, year, policy)
    if evidenced <= 0:
        return
    common = contract_exclusion(contract, year, policy)
    seller, buyer, no = contract.seller, contract.buyer, contract.registration_no

    if buyer.kind == "enterprise" and policy.is_local(buyer):
        reason = common
        if reason is None and policy.is_local(seller):
            reason = "seller_local"
        if reason is None and contract.related_party:
            reason = "related_party"
        yield Claim(buyer.credit_code, buyer.name, "absorption", no, evidenced, reason)

    if seller.kind in OUTPUT_KINDS and policy.is_local(seller):
        reason = common
        if reason is None and not policy.is_local(buyer):
            reason = "not_local"
        if reason is None and (seller.credit_code, year) in funded:
            reason = "provincial_funding"
        yield Claim(seller.credit_code, seller.name, "output", no, evidenced, reason)

    if contract.brokers:
        count = len(contract.brokers)
        share = evidenced // count if evidenced % count == 0 else Fraction(evidenced, count)
        year_end = date(year, 12, 31)
        for broker_id in contract.brokers:
            broker = brokers.get(broker_id)
            reason = common
            if reason is None and not (policy.is_local(seller) or policy.is_local(buyer)):
                reason = "not_local"
            if reason is None and (broker is None or broker.filed_on > year_end):
                reason = "broker_not_filed"
            name = broker.name if broker is not None else broker_id
            yield Claim(broker_id, name, "broker", no, share, reason)


def amounts(turnover: Fraction | int, category: Category, policy: Policy) -> tuple[int, int]:
    """(gross, entitlement) in fen of a beneficiary's turnover: rounded once, then capped."""
    rule = policy.categories[category]
    # round_half_up(turnover × rate) in integers: floor(a·n / (b·d) + ½) for turnover a/b and
    # rate n/d. Fraction arithmetic here was a twentieth of a catch-up's time.
    a, b = turnover.numerator, turnover.denominator
    n, d = rule.rate.numerator, rule.rate.denominator
    gross = (2 * a * n + b * d) // (2 * b * d)
    return gross, min(gross, rule.cap_fen)


def entitlement_of(
    category: Category, beneficiary: str, year: int, claims: Iterable[Claim], policy: Policy
) -> Entitlement:
    """One beneficiary's entitlement in a category from its claims, in registration order;
    its name is the one on the first of them."""
    counted: list[ContractShare] = []
    excluded: list[Exclusion] = []
    name = ""
    for claim in claims:
        name = name or claim.name
        if claim.reason is None:
            counted.append(ContractShare(claim.registration_no, claim.share))
        else:
            excluded.append(Exclusion(claim.registration_no, claim.reason))
    # Whole shares add as ints, far faster than Fractions; a broker's split share makes it one.
    turnover: Fraction | int = sum((c.evidenced for c in counted), 0)
    gross, entitled = amounts(turnover, category, policy)
    return Entitlement(
        beneficiary=beneficiary,
        name=name,
        category=category,
        year=year,
        turnover=turnover,
        gross_fen=gross,
        entitlement_fen=entitled,
        contracts=tuple(counted),
        excluded=tuple(excluded),
    )


def entitlements(facts: Facts, year: int, policy: Policy) -> list[Entitlement]:
    """Every beneficiary's entitlement for turnover year ``year``, with its explanation.

    A beneficiary appears in a category when at least one contract evidenced money in the
    year in which it holds that category's role, whether the contract counted or was excluded.
    Ordered by category, then beneficiary.
    """
    if not policy.in_force(year):
        return []
    claims: dict[tuple[Category, str], list[Claim]] = defaultdict(list)
    for registration_no in sorted(facts.contracts):
        contract = facts.contracts[registration_no]
        for claim in contract_claims(contract, year, facts.brokers, facts.funded, policy):
            claims[(claim.category, claim.beneficiary)].append(claim)
    return [
        entitlement_of(category, beneficiary, year, listed, policy)
        for (category, beneficiary), listed in sorted(claims.items())
    ]


def one_time_amounts(decided_fen: int) -> tuple[int, int]:
    """(gross, entitlement) in fen of a beneficiary's one-time grants (一次性补助): the amount
    decided, with no rate, no cap and no evidence (plan §四(四)(五), §五(二十): the bureau
    decides it)."""
    return decided_fen, decided_fen


def one_time_entitlement(beneficiary: str, year: int, grants: Iterable[Grant]) -> Entitlement:
    """One beneficiary's one-time grants of ``year`` as an entitlement of category
    ``one_time``: each grant counts as decided, listed by grant number."""
    listed = sorted(grants, key=lambda g: g.grant_no)
    total = sum(g.amount_fen for g in listed)
    gross, entitled = one_time_amounts(total)
    return Entitlement(
        beneficiary=beneficiary,
        name="",
        category="one_time",
        year=year,
        turnover=total,
        gross_fen=gross,
        entitlement_fen=entitled,
        contracts=tuple(ContractShare(g.grant_no, Fraction(g.amount_fen)) for g in listed),
        excluded=(),
    )


def one_time_entitlements(facts: Facts, year: int, policy: Policy) -> list[Entitlement]:
    """The one-time grants decided in ``year``, one entitlement per beneficiary, ordered by
    beneficiary; nothing for a year the policy is not in force for (as :func:`entitlements`)."""
    if not policy.in_force(year):
        return []
    by_beneficiary: dict[str, list[Grant]] = defaultdict(list)
    for grant in facts.grants:
        if grant.decided_on.year == year:
            by_beneficiary[grant.credit_code].append(grant)
    return [
        one_time_entitlement(code, year, grants) for code, grants in sorted(by_beneficiary.items())
    ]


def all_entitlements(facts: Facts, year: int, policy: Policy) -> list[Entitlement]:
    """Every entitlement of ``year``: the computed ones and the one-time grants, ordered by
    category, then beneficiary."""
    found = entitlements(facts, year, policy) + one_time_entitlements(facts, year, policy)
    return sorted(found, key=lambda e: (e.category, e.beneficiary))
