"""The plan's evaluation figures (shared/domain.md § Evaluation figures), computed from the facts.

Choices the plan leaves open, made here and stated in the report:

- A contract's turnover is its contract amount (技术合同成交额) as last amended, counted in the
  year it was registered. A cancelled contract counts for nothing (cancellation withdraws the
  registration retroactively); cancelled contracts are reported beside the turnover, never in it.
- Turnover per county or district is that of its local parties: as seller (输出) and as buyer
  (吸纳). A contract between two parties of one county counts for it in both roles.
- Achievements transformed locally are contracts whose seller is a university, research
  institute or new R&D institution (of any region) and whose buyer is local.
- Subsidies of turnover year ``Y`` are those the policy engine computes for ``Y`` from the whole
  log; their share is taken of the turnover registered in ``Y``.

Amounts in the output are yuan strings with two decimals; shares are ratios with six decimals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from services.common.counties import COUNTIES
from services.common.money import format_fen
from services.common.policy.engine import OUTPUT_KINDS, entitlements, round_half_up
from services.common.policy.model import CATEGORIES, Facts, Policy

FEN_PER_YUAN = 100

# The plan's targets, §一(二): they are the plan's text, not policy settings.
TURNOVER_TARGETS_FEN: dict[int, int] = {
    2022: 700_000_000 * FEN_PER_YUAN,
    2025: 1_000_000_000 * FEN_PER_YUAN,
}
BROKER_TARGET_YEAR, BROKER_TARGET = 2022, 100
ACHIEVEMENT_FIRST_YEAR, ACHIEVEMENT_LAST_YEAR, ACHIEVEMENT_TARGET = 2020, 2022, 300

OTHER_LOCAL = ("平顶山市(其他)", "Pingdingshan, other code")

CATEGORY_LABELS: dict[str, tuple[str, str]] = {
    "absorption": ("技术吸纳", "absorption"),
    "output": ("技术输出", "output"),
    "broker": ("技术经纪人", "broker"),
}


def report_years(policy: Policy, year: int) -> list[int]:
    """The years the report covers: those in force, up to the evaluation year."""
    last = min(year, policy.last_year)
    if last < policy.first_year:
        raise ValueError(
            f"{year} is before the plan's first year in force ({policy.first_year}): "
            "there is nothing to evaluate"
        )
    return list(range(policy.first_year, last + 1))


def ratio(numerator: int | Fraction, denominator: int) -> str | None:
    """``numerator / denominator`` as a decimal string with six places; None when undefined."""
    if denominator == 0:
        return None
    exact = Fraction(numerator) / denominator
    value = Decimal(exact.numerator) / Decimal(exact.denominator)
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


@dataclass
class _Tally:
    contracts: int = 0
    fen: int = 0

    def add(self, fen: int) -> None:
        self.contracts += 1
        self.fen += fen


def compute_figures(facts: Facts, year: int, policy: Policy) -> dict[str, Any]:
    """Every evaluation figure for the years in force up to ``year``, JSON-ready."""
    years = report_years(policy, year)
    covered = set(years)
    turnover: dict[int, _Tally] = defaultdict(_Tally)
    cancelled: dict[int, _Tally] = defaultdict(_Tally)
    achievements: dict[int, _Tally] = defaultdict(_Tally)
    # region code → year → role → tally
    regions: dict[str, dict[int, dict[str, _Tally]]] = {
        code: defaultdict(lambda: defaultdict(_Tally)) for code in COUNTIES
    }

    for contract in facts.contracts.values():
        registered = contract.registered_on.year
        if registered not in covered:
            continue
        amount = contract.contract_amount_fen
        if contract.cancelled:
            cancelled[registered].add(amount)
            continue
        turnover[registered].add(amount)
        for role, party in (("seller", contract.seller), ("buyer", contract.buyer)):
            if policy.is_local(party):
                by_year = regions.setdefault(
                    party.region_code, defaultdict(lambda: defaultdict(_Tally))
                )
                by_year[registered][role].add(amount)
        if contract.seller.kind in OUTPUT_KINDS and policy.is_local(contract.buyer):
            achievements[registered].add(amount)

    return {
        "years": years,
        "turnover": _turnover(years, turnover, cancelled),
        "regions": _regions(years, regions),
        "subsidies": _subsidies(years, facts, policy, turnover),
        "brokers": _brokers(years, facts),
        "achievements": _achievements(years, achievements),
    }


def _turnover(
    years: list[int], turnover: dict[int, _Tally], cancelled: dict[int, _Tally]
) -> list[dict[str, Any]]:
    rows = []
    for y in years:
        target = TURNOVER_TARGETS_FEN.get(y)
        rows.append(
            {
                "year": y,
                "contracts": turnover[y].contracts,
                "amount": format_fen(turnover[y].fen),
                "cancelled_contracts": cancelled[y].contracts,
                "cancelled_amount": format_fen(cancelled[y].fen),
                "target": format_fen(target) if target is not None else None,
                "met": turnover[y].fen >= target if target is not None else None,
            }
        )
    return rows


def region_name(code: str) -> tuple[str, str]:
    """The county or district's Chinese and English names."""
    return COUNTIES.get(code, OTHER_LOCAL)


def _regions(
    years: list[int], regions: dict[str, dict[int, dict[str, _Tally]]]
) -> list[dict[str, Any]]:
    rows = []
    ordered = [*COUNTIES, *sorted(code for code in regions if code not in COUNTIES)]
    for code in ordered:
        by_year = regions[code]
        per_year = []
        totals = {"seller": _Tally(), "buyer": _Tally()}
        for y in years:
            row: dict[str, Any] = {"year": y}
            for role in ("seller", "buyer"):
                tally = by_year[y][role]
                row[f"{role}_contracts"] = tally.contracts
                row[f"{role}_amount"] = format_fen(tally.fen)
                totals[role].contracts += tally.contracts
                totals[role].fen += tally.fen
            per_year.append(row)
        name, name_en = region_name(code)
        rows.append(
            {
                "region_code": code,
                "name": name,
                "name_en": name_en,
                "seller_contracts": totals["seller"].contracts,
                "seller_amount": format_fen(totals["seller"].fen),
                "buyer_contracts": totals["buyer"].contracts,
                "buyer_amount": format_fen(totals["buyer"].fen),
                "years": per_year,
            }
        )
    return rows


def _subsidies(
    years: list[int], facts: Facts, policy: Policy, turnover: dict[int, _Tally]
) -> list[dict[str, Any]]:
    rows = []
    for y in years:
        paid: dict[str, _Tally] = {c: _Tally() for c in CATEGORIES}
        evidenced: dict[str, Fraction] = {c: Fraction(0) for c in CATEGORIES}
        for e in entitlements(facts, y, policy):
            evidenced[e.category] += e.turnover
            if e.entitlement_fen > 0:
                paid[e.category].add(e.entitlement_fen)
        base = turnover[y].fen
        total = sum(t.fen for t in paid.values())
        rows.append(
            {
                "year": y,
                "turnover": format_fen(base),
                "categories": {
                    c: {
                        "beneficiaries": paid[c].contracts,
                        "entitlement": format_fen(paid[c].fen),
                        "share": ratio(paid[c].fen, base),
                        "evidenced_turnover": format_fen(round_half_up(evidenced[c])),
                    }
                    for c in CATEGORIES
                },
                "total": format_fen(total),
                "share": ratio(total, base),
            }
        )
    return rows


def _brokers(years: list[int], facts: Facts) -> list[dict[str, Any]]:
    filed = sorted(b.filed_on for b in facts.brokers.values())
    rows = []
    for y in years:
        cumulative = sum(1 for day in filed if day <= date(y, 12, 31))
        due = y == BROKER_TARGET_YEAR
        rows.append(
            {
                "year": y,
                "filed_in_year": sum(1 for day in filed if day.year == y),
                "filed": cumulative,
                "target": BROKER_TARGET if due else None,
                "met": cumulative >= BROKER_TARGET if due else None,
            }
        )
    return rows


def _achievements(years: list[int], achievements: dict[int, _Tally]) -> dict[str, Any]:
    window = [y for y in years if ACHIEVEMENT_FIRST_YEAR <= y <= ACHIEVEMENT_LAST_YEAR]
    counted = sum(achievements[y].contracts for y in window)
    due = years[-1] >= ACHIEVEMENT_LAST_YEAR
    return {
        "years": [
            {
                "year": y,
                "contracts": achievements[y].contracts,
                "amount": format_fen(achievements[y].fen),
            }
            for y in years
        ],
        "target": {
            "first_year": ACHIEVEMENT_FIRST_YEAR,
            "last_year": ACHIEVEMENT_LAST_YEAR,
            "contracts": ACHIEVEMENT_TARGET,
            "counted": counted,
            "met": counted >= ACHIEVEMENT_TARGET if due else None,
        },
    }


def figure_rows(figures: dict[str, Any]) -> Iterator[tuple[str, int | str, str, str, Any]]:
    """The figures flattened to ``(figure, year, key, measure, value)`` rows, for CSV."""
    for row in figures["turnover"]:
        for measure in ("contracts", "amount", "cancelled_contracts", "cancelled_amount"):
            yield "turnover", row["year"], "", measure, row[measure]
        if row["target"] is not None:
            yield "turnover", row["year"], "", "target", row["target"]
            yield "turnover", row["year"], "", "met", row["met"]
    for region in figures["regions"]:
        for row in region["years"]:
            for measure in ("seller_contracts", "seller_amount", "buyer_contracts", "buyer_amount"):
                yield "region", row["year"], region["region_code"], measure, row[measure]
    for row in figures["subsidies"]:
        for category, values in row["categories"].items():
            for measure, value in values.items():
                yield "subsidy", row["year"], category, measure, value
        yield "subsidy", row["year"], "total", "entitlement", row["total"]
        yield "subsidy", row["year"], "total", "share", row["share"]
    for row in figures["brokers"]:
        yield "brokers", row["year"], "", "filed_in_year", row["filed_in_year"]
        yield "brokers", row["year"], "", "filed", row["filed"]
        if row["target"] is not None:
            yield "brokers", row["year"], "", "target", row["target"]
            yield "brokers", row["year"], "", "met", row["met"]
    for row in figures["achievements"]["years"]:
        yield "achievements", row["year"], "", "contracts", row["contracts"]
        yield "achievements", row["year"], "", "amount", row["amount"]
    target = figures["achievements"]["target"]
    span = f"{target['first_year']}-{target['last_year']}"
    yield "achievements", span, "", "counted", target["counted"]
    yield "achievements", span, "", "target", target["contracts"]
    yield "achievements", span, "", "met", target["met"]
