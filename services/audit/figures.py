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

The figures are running sums, per year, county and category, fed one contract and one
entitlement at a time while the report streams the log: their memory does not grow with it.
They hold integer fen and exact ratios; as JSON, amounts are yuan strings with two decimals
(the ``_fen`` of a field's name dropped) and shares ratios with six decimals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from services.common.counties import COUNTIES
from services.common.money import format_fen
from services.common.policy.engine import OUTPUT_KINDS, round_half_up
from services.common.policy.model import (
    CATEGORIES,
    Category,
    Contract,
    Entitlement,
    Grant,
    Institution,
)
from services.common.policy.schedule import PolicySchedule

FEN_PER_YUAN = 100

# The plan's targets, §一(二): they are the plan's text, not policy settings.
TURNOVER_TARGETS_FEN: dict[int, int] = {
    2022: 700_000_000 * FEN_PER_YUAN,
    2025: 1_000_000_000 * FEN_PER_YUAN,
}
BROKER_TARGET_YEAR, BROKER_TARGET = 2022, 100
ACHIEVEMENT_FIRST_YEAR, ACHIEVEMENT_LAST_YEAR, ACHIEVEMENT_TARGET = 2020, 2022, 300
# 培育省级技术转移示范机构3家 (by 2022).
INSTITUTION_TARGET_YEAR, INSTITUTION_TARGET = 2022, 3
LEVELS = ("national", "provincial", "municipal")
LEVEL_LABELS = {
    "national": ("国家级", "national"),
    "provincial": ("省级", "provincial"),
    "municipal": ("市级", "municipal"),
}
PROGRAMMES = ("demonstration_institution", "transfer_base", "pilot_base")
PROGRAMME_LABELS = {
    "demonstration_institution": ("省级技术转移示范机构", "demonstration institution"),
    "transfer_base": ("科技成果转移转化基地", "transfer base"),
    "pilot_base": ("中试熟化基地", "pilot base"),
}

OTHER_LOCAL = ("平顶山市(其他)", "Pingdingshan, other code")

CATEGORY_LABELS: dict[str, tuple[str, str]] = {
    "absorption": ("技术吸纳", "absorption"),
    "output": ("技术输出", "output"),
    "broker": ("技术经纪人", "broker"),
}


def report_years(schedule: PolicySchedule, year: int) -> list[int]:
    """The years the report covers: those in force, up to the evaluation year."""
    last = min(year, schedule.last_year)
    if last < schedule.first_year:
        raise ValueError(
            f"{year} is before the plan's first year in force ({schedule.first_year}): "
            "there is nothing to evaluate"
        )
    return list(range(schedule.first_year, last + 1))


def ratio(numerator: int | Fraction, denominator: int) -> str | None:
    """``numerator / denominator`` as a decimal string with six places; None when undefined."""
    if denominator == 0:
        return None
    exact = Fraction(numerator) / denominator
    value = Decimal(exact.numerator) / Decimal(exact.denominator)
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def share(part: int, whole: int) -> Fraction | None:
    """``part / whole`` exactly; None when ``whole`` is nothing."""
    return Fraction(part, whole) if whole else None


# -- the figures, typed ------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnoverYear:
    year: int
    contracts: int
    amount_fen: int
    cancelled_contracts: int
    cancelled_amount_fen: int
    target_fen: int | None
    met: bool | None


@dataclass(frozen=True)
class RegionYear:
    year: int
    seller_contracts: int
    seller_amount_fen: int
    buyer_contracts: int
    buyer_amount_fen: int


@dataclass(frozen=True)
class Region:
    region_code: str
    name: str
    name_en: str
    seller_contracts: int
    seller_amount_fen: int
    buyer_contracts: int
    buyer_amount_fen: int
    years: list[RegionYear]


@dataclass(frozen=True)
class CategorySubsidy:
    beneficiaries: int  # those entitled to more than nothing
    entitlement_fen: int
    share: Fraction | None  # of the year's turnover
    evidenced_turnover_fen: int


@dataclass(frozen=True)
class SubsidyYear:
    year: int
    turnover_fen: int
    categories: dict[Category, CategorySubsidy]
    total_fen: int
    share: Fraction | None


@dataclass(frozen=True)
class BrokersYear:
    year: int
    filed_in_year: int
    filed: int  # by 31 Dec, counted from the start
    target: int | None
    met: bool | None


@dataclass(frozen=True)
class AchievementYear:
    year: int
    contracts: int
    amount_fen: int


@dataclass(frozen=True)
class AchievementTarget:
    first_year: int
    last_year: int
    contracts: int
    counted: int
    met: bool | None


@dataclass(frozen=True)
class Achievements:
    years: list[AchievementYear]
    target: AchievementTarget


@dataclass(frozen=True)
class InstitutionsYear:
    year: int
    recognised: dict[str, int]  # level → institutions recognised at it in the year
    provincial: int  # recognised at provincial level by 31 Dec, counted from the start
    target: int | None
    met: bool | None


@dataclass(frozen=True)
class ProgrammeGrants:
    grants: int
    amount_fen: int


@dataclass(frozen=True)
class GrantsYear:
    year: int
    programmes: dict[str, ProgrammeGrants]  # decided in the year
    total_fen: int


@dataclass(frozen=True)
class Figures:
    """Every evaluation figure for the years in force up to the report's year."""

    years: list[int]
    turnover: list[TurnoverYear]
    regions: list[Region]
    subsidies: list[SubsidyYear]
    brokers: list[BrokersYear]
    achievements: Achievements
    institutions: list[InstitutionsYear]
    grants: list[GrantsYear]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready: amounts as yuan strings, shares as six-decimal ratios."""
        shown: dict[str, Any] = _json(self)
        return shown


def _json(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        shown = {}
        for f in fields(value):
            v = getattr(value, f.name)
            if f.name.endswith("_fen"):
                shown[f.name.removesuffix("_fen")] = None if v is None else format_fen(v)
            else:
                shown[f.name] = _json(v)
        return shown
    if isinstance(value, Fraction):
        return ratio(value, 1)
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


# -- running sums ------------------------------------------------------------------------------


@dataclass
class _Tally:
    contracts: int = 0
    fen: int = 0

    def add(self, fen: int) -> None:
        self.contracts += 1
        self.fen += fen


class FigureSums:
    """The figures' running sums: fed each contract (as the whole log leaves it), each
    entitlement of a year covered and each broker's filing day, in any order."""

    def __init__(self, schedule: PolicySchedule, year: int) -> None:
        self.schedule = schedule
        self.years = report_years(schedule, year)
        self._covered = set(self.years)
        self._turnover: dict[int, _Tally] = defaultdict(_Tally)
        self._cancelled: dict[int, _Tally] = defaultdict(_Tally)
        self._achievements: dict[int, _Tally] = defaultdict(_Tally)
        # (region code, year, role) → tally
        self._regions: dict[tuple[str, int, str], _Tally] = defaultdict(_Tally)
        self._region_codes: set[str] = set()
        # (year, category) → beneficiaries paid, and the turnover evidenced
        self._paid: dict[tuple[int, str], _Tally] = defaultdict(_Tally)
        self._evidenced: dict[tuple[int, str], Fraction | int] = defaultdict(int)
        self._filed: dict[int, int] = defaultdict(int)  # year → brokers filed in it
        self._recognised: dict[tuple[int, str], int] = defaultdict(int)  # (year, level) → n
        self._granted: dict[tuple[int, str], _Tally] = defaultdict(_Tally)  # (year, programme)

    def add_contract(self, contract: Contract) -> None:
        registered = contract.registered_on.year
        if registered not in self._covered:
            return
        amount = contract.contract_amount_fen
        if contract.cancelled:
            self._cancelled[registered].add(amount)
            return
        self._turnover[registered].add(amount)
        policy = self.schedule.for_year(registered)  # whose city the year's contracts count in
        for role, party in (("seller", contract.seller), ("buyer", contract.buyer)):
            if policy.is_local(party):
                self._region_codes.add(party.region_code)
                self._regions[(party.region_code, registered, role)].add(amount)
        if contract.seller.kind in OUTPUT_KINDS and policy.is_local(contract.buyer):
            self._achievements[registered].add(amount)

    def add_entitlement(self, entitlement: Entitlement) -> None:
        key = (entitlement.year, entitlement.category)
        self._evidenced[key] += entitlement.turnover
        if entitlement.entitlement_fen > 0:
            self._paid[key].add(entitlement.entitlement_fen)

    def add_broker(self, filed_on: date) -> None:
        self._filed[filed_on.year] += 1

    def add_institution(self, institution: Institution) -> None:
        self._recognised[(institution.recognised_on.year, institution.level)] += 1

    def add_grant(self, grant: Grant) -> None:
        self._granted[(grant.decided_on.year, grant.programme)].add(grant.amount_fen)

    def figures(self) -> Figures:
        return Figures(
            years=self.years,
            turnover=[self._turnover_year(y) for y in self.years],
            regions=[self._region(code) for code in self._ordered_regions()],
            subsidies=[self._subsidy_year(y) for y in self.years],
            brokers=self._brokers(),
            achievements=self._achievements_figure(),
            institutions=self._institutions(),
            grants=[self._grants_year(y) for y in self.years],
        )

    def _institutions(self) -> list[InstitutionsYear]:
        rows = []
        for y in self.years:
            provincial = sum(
                n for (year, level), n in self._recognised.items()
                if level == "provincial" and year <= y
            )  # fmt: skip
            due = y == INSTITUTION_TARGET_YEAR
            rows.append(
                InstitutionsYear(
                    year=y,
                    recognised={level: self._recognised.get((y, level), 0) for level in LEVELS},
                    provincial=provincial,
                    target=INSTITUTION_TARGET if due else None,
                    met=provincial >= INSTITUTION_TARGET if due else None,
                )
            )
        return rows

    def _grants_year(self, y: int) -> GrantsYear:
        programmes = {
            p: ProgrammeGrants(self._granted[(y, p)].contracts, self._granted[(y, p)].fen)
            for p in PROGRAMMES
        }
        return GrantsYear(y, programmes, sum(g.amount_fen for g in programmes.values()))

    def _turnover_year(self, y: int) -> TurnoverYear:
        target = TURNOVER_TARGETS_FEN.get(y)
        return TurnoverYear(
            year=y,
            contracts=self._turnover[y].contracts,
            amount_fen=self._turnover[y].fen,
            cancelled_contracts=self._cancelled[y].contracts,
            cancelled_amount_fen=self._cancelled[y].fen,
            target_fen=target,
            met=self._turnover[y].fen >= target if target is not None else None,
        )

    def _ordered_regions(self) -> list[str]:
        return [*COUNTIES, *sorted(self._region_codes - COUNTIES.keys())]

    def _region(self, code: str) -> Region:
        per_year = [
            RegionYear(
                year=y,
                seller_contracts=self._regions[(code, y, "seller")].contracts,
                seller_amount_fen=self._regions[(code, y, "seller")].fen,
                buyer_contracts=self._regions[(code, y, "buyer")].contracts,
                buyer_amount_fen=self._regions[(code, y, "buyer")].fen,
            )
            for y in self.years
        ]
        name, name_en = region_name(code)
        return Region(
            region_code=code,
            name=name,
            name_en=name_en,
            seller_contracts=sum(r.seller_contracts for r in per_year),
            seller_amount_fen=sum(r.seller_amount_fen for r in per_year),
            buyer_contracts=sum(r.buyer_contracts for r in per_year),
            buyer_amount_fen=sum(r.buyer_amount_fen for r in per_year),
            years=per_year,
        )

    def _subsidy_year(self, y: int) -> SubsidyYear:
        base = self._turnover[y].fen
        total = sum(self._paid[(y, c)].fen for c in CATEGORIES)
        return SubsidyYear(
            year=y,
            turnover_fen=base,
            categories={
                c: CategorySubsidy(
                    beneficiaries=self._paid[(y, c)].contracts,
                    entitlement_fen=self._paid[(y, c)].fen,
                    share=share(self._paid[(y, c)].fen, base),
                    evidenced_turnover_fen=round_half_up(self._evidenced[(y, c)]),
                )
                for c in CATEGORIES
            },
            total_fen=total,
            share=share(total, base),
        )

    def _brokers(self) -> list[BrokersYear]:
        rows = []
        for y in self.years:
            cumulative = sum(n for filed, n in self._filed.items() if filed <= y)
            due = y == BROKER_TARGET_YEAR
            rows.append(
                BrokersYear(
                    year=y,
                    filed_in_year=self._filed.get(y, 0),
                    filed=cumulative,
                    target=BROKER_TARGET if due else None,
                    met=cumulative >= BROKER_TARGET if due else None,
                )
            )
        return rows

    def _achievements_figure(self) -> Achievements:
        window = [y for y in self.years if ACHIEVEMENT_FIRST_YEAR <= y <= ACHIEVEMENT_LAST_YEAR]
        counted = sum(self._achievements[y].contracts for y in window)
        due = self.years[-1] >= ACHIEVEMENT_LAST_YEAR
        return Achievements(
            years=[
                AchievementYear(y, self._achievements[y].contracts, self._achievements[y].fen)
                for y in self.years
            ],
            target=AchievementTarget(
                first_year=ACHIEVEMENT_FIRST_YEAR,
                last_year=ACHIEVEMENT_LAST_YEAR,
                contracts=ACHIEVEMENT_TARGET,
                counted=counted,
                met=counted >= ACHIEVEMENT_TARGET if due else None,
            ),
        )


def region_name(code: str) -> tuple[str, str]:
    """The county or district's Chinese and English names."""
    return COUNTIES.get(code, OTHER_LOCAL)


def figure_rows(figures: Figures) -> Iterator[tuple[str, int | str, str, str, Any]]:
    """The figures flattened to ``(figure, year, key, measure, value)`` rows, for CSV: values
    as in :meth:`Figures.as_json`."""
    shown = figures.as_json()
    for row in shown["turnover"]:
        for measure in ("contracts", "amount", "cancelled_contracts", "cancelled_amount"):
            yield "turnover", row["year"], "", measure, row[measure]
        if row["target"] is not None:
            yield "turnover", row["year"], "", "target", row["target"]
            yield "turnover", row["year"], "", "met", row["met"]
    for region in shown["regions"]:
        for row in region["years"]:
            for measure in ("seller_contracts", "seller_amount", "buyer_contracts", "buyer_amount"):
                yield "region", row["year"], region["region_code"], measure, row[measure]
    for row in shown["subsidies"]:
        for category, values in row["categories"].items():
            for measure, value in values.items():
                yield "subsidy", row["year"], category, measure, value
        yield "subsidy", row["year"], "total", "entitlement", row["total"]
        yield "subsidy", row["year"], "total", "share", row["share"]
    for row in shown["brokers"]:
        yield "brokers", row["year"], "", "filed_in_year", row["filed_in_year"]
        yield "brokers", row["year"], "", "filed", row["filed"]
        if row["target"] is not None:
            yield "brokers", row["year"], "", "target", row["target"]
            yield "brokers", row["year"], "", "met", row["met"]
    for row in shown["achievements"]["years"]:
        yield "achievements", row["year"], "", "contracts", row["contracts"]
        yield "achievements", row["year"], "", "amount", row["amount"]
    target = shown["achievements"]["target"]
    span = f"{target['first_year']}-{target['last_year']}"
    yield "achievements", span, "", "counted", target["counted"]
    yield "achievements", span, "", "target", target["contracts"]
    yield "achievements", span, "", "met", target["met"]
    for row in shown["institutions"]:
        for level, n in row["recognised"].items():
            yield "institutions", row["year"], level, "recognised", n
        yield "institutions", row["year"], "provincial", "cumulative", row["provincial"]
        if row["target"] is not None:
            yield "institutions", row["year"], "provincial", "target", row["target"]
            yield "institutions", row["year"], "provincial", "met", row["met"]
    for row in shown["grants"]:
        for programme, values in row["programmes"].items():
            for measure, value in values.items():
                yield "grants", row["year"], programme, measure, value
        yield "grants", row["year"], "total", "amount", row["total"]
