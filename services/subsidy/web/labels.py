"""What the page shows for codes (event types, payout kinds, counties) and amounts in 万元,
rates as percentages (元 and instants: services.common.web.page). Categories and
exclusion reasons are named in Chinese by services.common.policy.present."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from services.common.counties import county_name

KIND_ZH = {"payment": "补拨 payment", "recovery": "追回 recovery"}


def wan(amount: str | None) -> str:
    """A yuan string in 万元 (ten thousand yuan), two decimals, half up, with separators."""
    if amount is None or amount == "":
        return "—"
    value = (Decimal(amount) / 10_000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{value:,.2f}"


def sum_amounts(rows: Iterable[Mapping[str, str]], field: str) -> str:
    """The sum of one yuan field over rows, as a yuan string (exact, never a float)."""
    return str(sum((Decimal(row[field]) for row in rows), Decimal("0.00")))


def percent(rate: Fraction) -> str:
    """A rate as a percentage: ``Fraction(1, 10)`` → ``"10%"``, one third → ``"33.33%"``."""
    value = (Decimal(rate.numerator * 100) / Decimal(rate.denominator)).quantize(Decimal("0.01"))
    return f"{value.normalize():f}%"


def county(code: str | None) -> str:
    """A county code with its Chinese name when it is one of the city's."""
    if not code:
        return "—"
    name = county_name(code)
    return f"{name} {code}" if name else code
