"""What a draft policy would cost (政策模拟): a turnover year recomputed under the draft from
the facts the subsidy store holds at its applied position, beside the version in force.

One pass over the facts tables in one snapshot, then the pure engine twice; nothing is written,
and neither the policy in force nor the materialised entitlements are touched.
"""

from __future__ import annotations

import tomllib
from datetime import date
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from services.common.errors import Invalid
from services.common.money import format_fen
from services.common.policy.loader import PolicyError, policy_from_mapping
from services.common.policy.model import Broker, Contract, Facts, Grant, Policy
from services.common.policy.present import yuan
from services.common.policy.schedule import PolicySchedule
from services.common.policy.simulation import Simulation, Total, simulate
from services.subsidy import reads
from services.subsidy import tables as t
from services.subsidy.projection import contract_of

MAX_DRAFT_CHARS = 100_000  # a policy file is about 1,500 characters


class Simulations:
    """Draft policies against the schedule in force, over the real history."""

    def __init__(self, engine: Engine, schedule: PolicySchedule) -> None:
        """``engine``: the subsidy store's, only read (a simulation never opens it for
        writing, so it never rebuilds a store computed under another schedule)."""
        self._engine = engine
        self._schedule = schedule

    def simulate(self, year: int, policy: str) -> dict[str, Any]:
        """The year's entitlements under the draft (a policy file's TOML text) against those
        in force: totals by category, beneficiaries gained and lost, the largest changes."""
        draft = parse_draft(policy, year)
        with reads.snapshot(self._engine) as conn:
            facts = facts_of_year(conn, year)
        current = self._schedule.for_year(year) if self._schedule.in_force(year) else None
        return simulation_json(simulate(facts, year, current, draft))


def parse_draft(text: str, year: int) -> Policy:
    """The draft as a policy; a bad one is refused naming the setting (``policy.<setting>``)."""
    if len(text) > MAX_DRAFT_CHARS:
        raise Invalid(
            "policy",
            f"must be at most {MAX_DRAFT_CHARS:,} characters",
            f"草案不得超过 {MAX_DRAFT_CHARS:,} 个字符",
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Invalid(
            "policy", f"the draft policy file is not TOML: {exc}", "政策草案不是有效的 TOML 文本"
        ) from None
    try:
        draft = policy_from_mapping(data, source="draft")
    except PolicyError as exc:
        raise Invalid(
            f"policy.{exc.setting}",
            f"the draft policy file breaks a rule: {exc.setting} {exc.rule}",
            f"政策草案的设置 {exc.setting} 不符合规则：{exc.rule}",
        ) from None
    if not draft.in_force(year):
        raise Invalid(
            "year",
            f"{year} is outside the draft's applies_to ({draft.first_year}–{draft.last_year})",
            f"{year} 年度不在草案的适用年度（{draft.first_year}–{draft.last_year}）内",
        )
    return draft


def facts_of_year(conn: Connection, year: int) -> Facts:
    """The facts at the applied head that can move ``year``'s entitlements: the contracts with
    money paid in the year (only those have evidenced turnover in it), every filed broker,
    every provincial funding and the year's one-time grants; one read of each table, in the
    caller's snapshot."""
    position = reads.head(conn).position
    prefix = f"{year}-"
    dated = f'"{prefix}'.encode()  # a record with no day of the year holds no payment in it
    contracts: dict[str, Contract] = {}
    for no, blob in conn.execute(select(t.contracts.c.registration_no, t.contracts.c.facts)):
        if dated not in blob:
            continue
        record = orjson.loads(blob)
        if any(
            day.startswith(prefix) and not withdrawn
            for day, _, withdrawn in record["proofs"].values()
        ):
            contracts[no] = contract_of(no, record)
    brokers = {
        r.broker_id: Broker(r.broker_id, r.name, date.fromisoformat(r.filed_on))
        for r in conn.execute(select(t.brokers.c.broker_id, t.brokers.c.name, t.brokers.c.filed_on))
    }
    funded = frozenset((r.credit_code, int(r.year)) for r in conn.execute(select(t.funding)))
    g = t.grants.c
    grants = tuple(
        Grant(
            r.grant_no,
            r.credit_code,
            r.programme,
            int(r.amount_fen),
            date.fromisoformat(r.decided_on),
            r.document_no,
        )
        for r in conn.execute(select(t.grants).where(g.year == year).order_by(g.grant_no))
    )
    return Facts(
        contracts=contracts, brokers=brokers, funded=funded, position=position, grants=grants
    )


def simulation_json(s: Simulation) -> dict[str, Any]:
    """A simulation as finance reads it: yuan strings, changes signed (draft − in force)."""
    return {
        "year": s.year,
        "position": s.position,
        "policy_version": s.current_version,
        "draft_version": s.draft_version,
        "totals": {
            c: {
                "current": _total(s.current[c]),
                "draft": _total(s.draft[c]),
                "change": format_fen(s.draft[c].entitlement_fen - s.current[c].entitlement_fen),
            }
            for c in s.current
        },
        "beneficiaries_gained": s.gained,
        "beneficiaries_lost": s.lost,
        "beneficiaries_changed": s.changed,
        "largest_changes": [
            {
                "beneficiary": c.beneficiary,
                "name": c.name,
                "category": c.category,
                "current": format_fen(c.current_fen),
                "draft": format_fen(c.draft_fen),
                "change": format_fen(c.change_fen),
            }
            for c in s.largest
        ],
    }


def _total(total: Total) -> dict[str, Any]:
    return {
        "beneficiaries": total.beneficiaries,
        "turnover": yuan(total.turnover),
        "gross": format_fen(total.gross_fen),
        "entitlement": format_fen(total.entitlement_fen),
    }
