"""A draft policy against the one in force over the same facts, worked by hand."""

from __future__ import annotations

import dataclasses
from datetime import date
from fractions import Fraction

from services.common.policy.engine import entitlements
from services.common.policy.model import CategoryRule
from services.common.policy.simulation import LARGEST, simulate, totals
from tests.support.policy_facts import (
    LOCAL_FIRM,
    LOCAL_UNIVERSITY,
    OUTSIDE_FIRM,
    PINGDINGSHAN_2020,
    YUAN,
    contract,
    facts,
    party,
)

DRAFT = dataclasses.replace(
    PINGDINGSHAN_2020,
    version="draft",
    categories={
        **PINGDINGSHAN_2020.categories,
        "absorption": CategoryRule(rate=Fraction(15, 100), cap_fen=100_000 * YUAN),
        "output": CategoryRule(rate=Fraction(0), cap_fen=500_000 * YUAN),
    },
)
BOUGHT = contract(  # absorption: 800,000 × 10 % = 80,000 now; × 15 % = 120,000, capped 100,000
    "2024410400000001",
    seller=OUTSIDE_FIRM,
    buyer=LOCAL_FIRM,
    settled=[(date(2024, 5, 1), 800_000 * YUAN)],
)
SOLD = contract(  # output: 300,000 × 10 % = 30,000 now; nothing under the draft (rate 0)
    "2024410400000002",
    seller=LOCAL_UNIVERSITY,
    buyer=LOCAL_FIRM,
    settled=[(date(2024, 6, 1), 300_000 * YUAN)],
)
PAID_IN_2023 = contract(  # money of another year: no part in 2024
    "2023410400000003",
    seller=OUTSIDE_FIRM,
    buyer=LOCAL_FIRM,
    registered_on=date(2023, 3, 1),
    settled=[(date(2023, 5, 1), 500_000 * YUAN)],
)


def test_totals_gains_losses_and_changes_are_those_worked_by_hand() -> None:
    s = simulate(facts(BOUGHT, SOLD, PAID_IN_2023, position=9), 2024, PINGDINGSHAN_2020, DRAFT)

    assert (s.position, s.current_version, s.draft_version) == (9, "pingdingshan-2020.1", "draft")
    assert (s.current["absorption"].entitlement_fen, s.draft["absorption"].entitlement_fen) == (
        80_000 * YUAN,
        100_000 * YUAN,
    )
    assert (s.current["output"].entitlement_fen, s.draft["output"].entitlement_fen) == (
        30_000 * YUAN,
        0,
    )
    assert s.draft["output"].beneficiaries == 1  # still a beneficiary, entitled to nothing
    assert (s.gained, s.lost, s.changed) == (0, 1, 2)
    assert [(c.category, c.current_fen, c.draft_fen, c.change_fen) for c in s.largest] == [
        ("output", 30_000 * YUAN, 0, -30_000 * YUAN),
        ("absorption", 80_000 * YUAN, 100_000 * YUAN, 20_000 * YUAN),
    ]


def test_a_year_with_no_version_in_force_gains_every_beneficiary() -> None:
    s = simulate(facts(BOUGHT), 2024, None, DRAFT)

    assert s.current_version is None
    assert (s.gained, s.lost) == (1, 0)
    assert s.largest[0].current_fen == 0


def test_only_the_largest_changes_are_listed_largest_first() -> None:
    buyers = [party("enterprise", "410403", 100 + i) for i in range(LARGEST + 5)]
    bought = [
        contract(
            f"20244104{i:08d}",
            seller=OUTSIDE_FIRM,
            buyer=b,
            settled=[(date(2024, 5, 1), (i + 1) * 10_000 * YUAN)],
        )
        for i, b in enumerate(buyers)
    ]

    s = simulate(facts(*bought), 2024, PINGDINGSHAN_2020, DRAFT)

    assert s.changed == LARGEST + 5
    assert len(s.largest) == LARGEST
    changes = [c.change_fen for c in s.largest]
    assert changes == sorted(changes, reverse=True)
    assert s.largest[0].beneficiary == buyers[-1].credit_code


def test_a_draft_of_rates_alone_gives_what_the_engine_gives_under_it_as_does_one_of_rules() -> None:
    other_city = dataclasses.replace(DRAFT, city_prefix="4101")
    world = facts(BOUGHT, SOLD, PAID_IN_2023)

    for draft in (DRAFT, other_city):
        s = simulate(world, 2024, PINGDINGSHAN_2020, draft)
        engine = entitlements(world, 2024, draft)
        assert s.draft == totals(engine)
        entitled = {(e.category, e.beneficiary): e.entitlement_fen for e in engine}
        for c in s.largest:
            assert c.draft_fen == entitled.get((c.category, c.beneficiary), 0)
    assert (
        simulate(world, 2024, PINGDINGSHAN_2020, other_city).draft["absorption"].beneficiaries == 0
    )
