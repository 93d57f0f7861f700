"""A draft policy against the one in force, over the same facts (OpenFisca's reform, for one
turnover year): the engine run twice, and what changes between the two answers. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from services.common.policy.engine import all_entitlements, amounts
from services.common.policy.model import ALL_CATEGORIES, Category, Entitlement, Facts, Policy

LARGEST = 20  # the changes a simulation lists, largest first


@dataclass(frozen=True, slots=True)
class Total:
    """A category's sums in a year: beneficiaries, turnover, gross and entitlement."""

    beneficiaries: int = 0
    turnover: Fraction | int = 0
    gross_fen: int = 0
    entitlement_fen: int = 0


@dataclass(frozen=True, slots=True)
class Change:
    """One beneficiary's entitlement in a category, in force and under the draft (fen)."""

    category: Category
    beneficiary: str
    name: str
    current_fen: int
    draft_fen: int

    @property
    def change_fen(self) -> int:
        return self.draft_fen - self.current_fen


@dataclass(frozen=True)
class Simulation:
    year: int
    position: int
    current_version: str | None  # None: no version is in force for the year
    draft_version: str
    current: dict[Category, Total]
    draft: dict[Category, Total]
    gained: int  # beneficiaries (per category) entitled under the draft but not now
    lost: int  # entitled now but not under the draft
    changed: int  # whose entitlement differs at all
    largest: tuple[Change, ...]  # the LARGEST largest changes, by size, then key


def simulate(facts: Facts, year: int, current: Policy | None, draft: Policy) -> Simulation:
    """The year's entitlements under ``current`` (None: none in force) and under ``draft``,
    compared beneficiary by beneficiary."""
    relevant = Facts(
        contracts={
            no: c
            for no, c in facts.contracts.items()
            if any(not p.withdrawn and p.paid_on.year == year for p in c.transfer_proofs)
        },
        brokers=facts.brokers,
        funded=facts.funded,
        position=facts.position,
        grants=facts.grants,  # decided amounts: the same under any policy in force
    )  # only money paid in the year changes its evidenced turnover (engine.evidence_years)
    now = all_entitlements(relevant, year, current) if current is not None else []
    then = (
        [rerated(e, draft) for e in now]
        if current is not None and same_claims(current, draft) and draft.in_force(year)
        else all_entitlements(relevant, year, draft)
    )
    before = {(e.category, e.beneficiary): e for e in now}
    after = {(e.category, e.beneficiary): e for e in then}
    changes = []
    gained = lost = 0
    for key in before.keys() | after.keys():
        a, b = before.get(key), after.get(key)
        old = a.entitlement_fen if a else 0
        new = b.entitlement_fen if b else 0
        if old == new:
            continue
        gained += old == 0
        lost += new == 0
        name = b.name if b is not None else a.name if a is not None else ""
        changes.append(Change(key[0], key[1], name, old, new))
    changes.sort(key=lambda c: (-abs(c.change_fen), c.category, c.beneficiary))
    return Simulation(
        year=year,
        position=facts.position,
        current_version=current.version if current is not None else None,
        draft_version=draft.version,
        current=totals(now),
        draft=totals(then),
        gained=gained,
        lost=lost,
        changed=len(changes),
        largest=tuple(changes[:LARGEST]),
    )


def same_claims(a: Policy, b: Policy) -> bool:
    """Whether two policies make the same claims (which contracts count for whom, with what
    turnover): all they differ in then is rates and caps."""
    return (
        a.city_prefix == b.city_prefix
        and a.registration_window_years == b.registration_window_years
        and a.eligible_contract_types == b.eligible_contract_types
        and a.evidence_ceiling == b.evidence_ceiling
    )


def rerated(e: Entitlement, policy: Policy) -> Entitlement:
    """An entitlement with the same claims under another rate and cap (half a simulation's
    engine time, for a draft of rates and caps alone); a one-time grant is its decided amount
    under any policy."""
    if e.category == "one_time":
        return e
    gross, entitled = amounts(e.turnover, e.category, policy)
    return replace(e, gross_fen=gross, entitlement_fen=entitled)


def totals(found: list[Entitlement]) -> dict[Category, Total]:
    """Each category's sums, as the subsidy store keeps them (every category present)."""
    sums = {c: Total() for c in ALL_CATEGORIES}
    for e in found:
        t = sums[e.category]
        sums[e.category] = Total(
            t.beneficiaries + 1,
            t.turnover + e.turnover,
            t.gross_fen + e.gross_fen,
            t.entitlement_fen + e.entitlement_fen,
        )
    return sums
