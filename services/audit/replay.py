"""Recomputing every entitlement from the history alone, and comparing with what finance serves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from services.common.envelope import format_instant
from services.common.policy.engine import all_entitlements
from services.common.policy.facts import FactsBuilder
from services.common.policy.model import Facts
from services.common.policy.present import ENTITLEMENT_FIELDS, entitlement_json
from services.common.policy.schedule import PolicySchedule


class Cut:
    """The part of the log a replay takes in: up to a position, and/or only the envelopes
    recorded at or before an instant."""

    def __init__(self, position: int | None = None, as_of: datetime | None = None) -> None:
        self.position = position
        self.cutoff = format_instant(as_of) if as_of is not None else None

    def admits(self, envelope: Mapping[str, Any]) -> bool:
        if self.position is not None and envelope["position"] > self.position:
            return False
        return self.cutoff is None or envelope["recorded_at"] <= self.cutoff


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


def replay(
    facts: Facts, schedule: PolicySchedule, skipped: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Every year in force's entitlements, recomputed from the facts, each year under its own
    policy version; with the entries the facts skipped (types, or versions of types, this
    audit does not read), by type."""
    return {
        "policy_version": schedule.version,
        "policy_versions": schedule.versions_by_year(),
        "position": facts.position,
        "years": {
            str(year): [
                entitlement_json(e) for e in all_entitlements(facts, year, schedule.for_year(year))
            ]
            for year in schedule.years
        },
        "skipped_events": dict(sorted((skipped or {}).items())),
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


class StaleHistory(Exception):
    """The history read is older than what the subsidy service answers from."""


def subsidy_differences(
    envelopes: Callable[[], Iterable[dict[str, Any]]],
    served: Callable[[int, int | None], dict[str, Any]],
    schedule: PolicySchedule,
) -> dict[str, Any]:
    """Every year in force: the recomputation against what the subsidy service serves now, and
    against its materialised versions at three past positions (a quarter, half and three
    quarters of the way to the position it answers at).

    ``served(year, position)`` is the subsidy service's whole answer to
    ``GET /v1/entitlements?year=&position=&include=claims`` (every page; ``position`` None:
    now), each entitlement with its contracts counted and left out; the history
    is replayed to the positions it answers at, so both speak of the same log.
    """
    first = schedule.first_year
    head = int(served(first, None)["position"])
    past = sorted({head * q // 4 for q in (1, 2, 3)} - {0})
    answers = {(year, at): served(year, at) for year in schedule.years for at in (None, *past)}
    positions = {int(answer["position"]) for answer in answers.values()}
    replayed = facts_at(envelopes(), positions)
    years: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    for (year, at), answer in answers.items():
        position = int(answer["position"])
        facts = replayed[position]
        if at is None and facts.position < position:
            raise StaleHistory(
                f"the history ends at position {facts.position} but the subsidy service "
                f"answers at {position}"
            )
        policy = schedule.for_year(year)
        ours = [entitlement_json(e) for e in all_entitlements(facts, year, policy)]
        diffs = [
            {**d, "position": position} for d in differences(ours, answer["entitlements"], year)
        ]
        found += diffs
        years.append(
            {
                "year": year,
                "policy_version": policy.version,
                "position": position,
                "as_of_position": at is not None,
                "entitlements": len(ours),
                "differences": len(diffs),
            }
        )
    return {"policy_version": schedule.version, "years": years, "differences": found}
