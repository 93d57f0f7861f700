"""Entitlements as JSON for people and for comparison: yuan strings with two decimals."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from services.common.money import format_fen
from services.common.policy.engine import round_half_up
from services.common.policy.model import Entitlement


def yuan(fen: Fraction | int) -> str:
    """Yuan with two decimals; a fraction of a fen (a broker's share) rounds half up."""
    return format_fen(round_half_up(fen))


ENTITLEMENT_FIELDS = frozenset(
    {"beneficiary", "name", "category", "turnover", "gross", "entitlement", "capped", "contracts",
     "excluded"}
)  # fmt: skip


def entitlement_json(e: Entitlement) -> dict[str, Any]:
    """One entitlement with its explanation, as finance and auditors read it."""
    return {
        "beneficiary": e.beneficiary,
        "name": e.name,
        "category": e.category,
        "turnover": yuan(e.turnover),
        "gross": format_fen(e.gross_fen),
        "entitlement": format_fen(e.entitlement_fen),
        "capped": e.capped,
        "contracts": [
            {"registration_no": c.registration_no, "evidenced": yuan(c.evidenced)}
            for c in e.contracts
        ],
        "excluded": [
            {"registration_no": x.registration_no, "reason": x.reason} for x in e.excluded
        ],
    }
