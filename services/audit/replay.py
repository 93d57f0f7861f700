"""Recomputing every entitlement from the history alone, and comparing with what finance sees."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from services.common.envelope import format_instant
from services.common.policy.engine import entitlements
from services.common.policy.facts import FactsBuilder
from services.common.policy.model import Facts, Policy
from services.common.policy.present import ENTITLEMENT_FIELDS, entitlement_json


def until(
    envelopes: Iterable[dict[str, Any]],
    position: int | None = None,
    as_of: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """The envelopes up to a position, and/or recorded at or before an instant."""
    cutoff = format_instant(as_of) if as_of is not None else None
    for envelope in envelopes:
        if position is not None and envelope["position"] > position:
            return
        if cutoff is not None and envelope["recorded_at"] > cutoff:
            continue
        yield envelope


def replay_facts(envelopes: Iterable[dict[str, Any]]) -> Facts:
    return FactsBuilder().apply_all(envelopes).facts()


def facts_at(envelopes: Iterable[dict[str, Any]], positions: Iterable[int]) -> dict[int, Facts]:
    """The facts as of each position (the log up to it), in one pass over the history."""
    wanted = sorted(set(positions))
    found: dict[int, Facts] = {}
    builder = FactsBuilder()
    for envelope in envelopes:
        while wanted and envelope["position"] > wanted[0]:
            found[wanted.pop(0)] = builder.facts()
        if not wanted:
            break
        builder.apply(envelope)
    found.update({position: builder.facts() for position in wanted})
    return found


def replay(facts: Facts, policy: Policy) -> dict[str, Any]:
    """Every year in force's entitlements, recomputed from the facts."""
    return {
        "policy_version": policy.version,
        "position": facts.position,
        "years": {
            str(year): [entitlement_json(e) for e in entitlements(facts, year, policy)]
            for year in range(policy.first_year, policy.last_year + 1)
        },
    }


def differences(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], year: int
) -> list[dict[str, Any]]:
    """Beneficiary by beneficiary, where the recomputation and the served answer differ."""
    mine = {(e["category"], e["beneficiary"]): e for e in ours}
    # What finance adds beside the explanation (the county it files the row under) is not
    # recomputed here, and not compared.
    served = {
        (e["category"], e["beneficiary"]): {k: v for k, v in e.items() if k in ENTITLEMENT_FIELDS}
        for e in theirs
    }
    found = []
    for key in sorted(mine.keys() | served.keys()):
        a, b = mine.get(key), served.get(key)
        if a != b:
            fields = sorted(k for k in (a or b or {}) if (a or {}).get(k) != (b or {}).get(k))
            found.append(
                {
                    "year": year,
                    "category": key[0],
                    "beneficiary": key[1],
                    "fields": fields,
                    "recomputed": a,
                    "served": b,
                }
            )
    return found
