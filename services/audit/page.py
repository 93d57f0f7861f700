"""The report as one self-contained HTML page: typed figures through Jinja2 templates
(autoescaped, shipped inside this package), charts drawn by :mod:`services.audit.charts`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from services.audit.charts import BarChart, Series, Target, bar_chart, progress_bar
from services.audit.content import AuditReport
from services.audit.figures import (
    ACHIEVEMENT_FIRST_YEAR,
    ACHIEVEMENT_LAST_YEAR,
    BROKER_TARGET,
    BROKER_TARGET_YEAR,
    CATEGORY_LABELS,
    INSTITUTION_TARGET,
    INSTITUTION_TARGET_YEAR,
    LEVEL_LABELS,
    LEVELS,
    PROGRAMME_LABELS,
    PROGRAMMES,
    TURNOVER_TARGETS_FEN,
    Figures,
    ratio,
)
from services.audit.findings import (
    EVIDENCE_GRACE_DAYS,
    EVIDENCE_MIN_SHARE,
    KIND_LABELS,
    LATE_AFTER_DAYS,
)
from services.common.money import format_fen
from services.common.policy.model import CATEGORIES

MAX_FINDINGS_SHOWN = 2000  # rows on the page; findings.csv holds them all
BEIJING = timezone(timedelta(hours=8), "UTC+08:00")
COLOURS = {
    "turnover": "#2f6f9f",
    "seller": "#2f6f9f",
    "buyer": "#d9822b",
    "absorption": "#2f6f9f",
    "output": "#3a9b6b",
    "broker": "#d9822b",
    "brokers": "#6a5acd",
    "achievements": "#3a9b6b",
}
YI, WAN = Decimal(100_000_000), Decimal(10_000)


def render_html(report: AuditReport) -> str:
    """The report as one self-contained page: inline CSS and SVG, no script, no network."""
    f = report.figures
    return (
        _templates()
        .get_template("report.html.j2")
        .render(
            report=report,
            f=f,
            generated=report.generated_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"),
            charts=_charts(f),
            findings_shown=report.findings.page(0, MAX_FINDINGS_SHOWN),
            kinds=KIND_LABELS,
            categories=[(c, *CATEGORY_LABELS[c]) for c in CATEGORIES],
            targets=sorted(TURNOVER_TARGETS_FEN.items()),
            broker_target=(BROKER_TARGET, BROKER_TARGET_YEAR),
            achievement_span=(ACHIEVEMENT_FIRST_YEAR, ACHIEVEMENT_LAST_YEAR),
            institution_target=(INSTITUTION_TARGET, INSTITUTION_TARGET_YEAR),
            levels=[(level, *LEVEL_LABELS[level]) for level in LEVELS],
            programmes=[(p, *PROGRAMME_LABELS[p]) for p in PROGRAMMES],
            rules={
                "late_after_days": LATE_AFTER_DAYS,
                "evidence_share": EVIDENCE_MIN_SHARE,
                "evidence_grace_days": EVIDENCE_GRACE_DAYS,
            },
        )
    )


@cache
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("services.audit", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(yuan=yuan, yi=yi, percent=percent, count=count, met=met)
    return env


def yuan(fen: int) -> str:
    """Fen as yuan with thousands separators: 123456700 → 1,234,567.00."""
    whole, _, cents = format_fen(fen).partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}.{cents or '00'}"


def yi(fen: int) -> str:
    """Fen as 亿元 (hundreds of millions of yuan), two decimals."""
    return f"{Decimal(format_fen(fen)) / YI:,.2f}"


def percent(share: Fraction | None) -> str:
    """A share as a percentage with two decimals (of the six-decimal ratio the figures give)."""
    shown = None if share is None else ratio(share, 1)
    return "—" if shown is None else f"{Decimal(shown) * 100:.2f}%"


def count(n: int) -> str:
    return f"{n:,}"


def met(value: bool | None) -> Markup:
    """Whether a target is met, in words and colour."""
    if value is None:
        return Markup('<span class="note">未到期 not yet due</span>')
    if value:
        return Markup('<span class="met">✔ 达标 met</span>')
    return Markup('<span class="unmet">✘ 未达标 not met</span>')


def _to(fen: int, unit: Decimal) -> float:
    return float(Decimal(format_fen(fen)) / unit)


def _both(chart: BarChart, narrow: int = 400) -> tuple[Markup, Markup]:
    """The chart drawn to fit the page, and drawn for a phone at its own size: scaled down to
    a phone's width, the wide one's text would be five pixels high."""
    return bar_chart(chart), bar_chart(replace(chart, width=narrow, fit=False))


def _charts(f: Figures) -> dict[str, Any]:
    years = [[str(y)] for y in f.years]
    span = f"{f.years[0]}–{f.years[-1]}"
    a = f.achievements.target
    return {
        "turnover": _both(
            BarChart(
                categories=years,
                series=[
                    Series(
                        "成交额 turnover",
                        COLOURS["turnover"],
                        [_to(r.amount_fen, YI) for r in f.turnover],
                    )
                ],
                unit="亿元 · 100 million CNY",
                targets=[
                    Target(i, _to(r.target_fen, YI), f"目标 {yi(r.target_fen)}")
                    for i, r in enumerate(f.turnover)
                    if r.target_fen is not None
                ],
            )
        ),
        "regions": _both(
            BarChart(
                categories=[[r.name, r.name_en.split(" ")[0]] for r in f.regions],
                series=[
                    Series(
                        "输出 as seller",
                        COLOURS["seller"],
                        [_to(r.seller_amount_fen, YI) for r in f.regions],
                    ),
                    Series(
                        "吸纳 as buyer",
                        COLOURS["buyer"],
                        [_to(r.buyer_amount_fen, YI) for r in f.regions],
                    ),
                ],
                unit=f"亿元 · 100 million CNY, {span}",
                value_labels=False,
            ),
            narrow=640,
        ),
        "subsidies": _both(
            BarChart(
                categories=years,
                series=[
                    Series(
                        f"{CATEGORY_LABELS[c][0]} {CATEGORY_LABELS[c][1]}",
                        COLOURS[c],
                        [_to(r.categories[c].entitlement_fen, WAN) for r in f.subsidies],
                    )
                    for c in CATEGORIES
                ],
                unit="万元 · 10 thousand CNY",
                stacked=True,
                top_labels=[percent(r.share) for r in f.subsidies],
            )
        ),
        "brokers": _both(
            BarChart(
                categories=years,
                series=[
                    Series(
                        "累计备案 filed, cumulative",
                        COLOURS["brokers"],
                        [float(r.filed) for r in f.brokers],
                    )
                ],
                unit="人 · brokers",
                targets=[
                    Target(i, float(r.target), f"目标 {r.target}")
                    for i, r in enumerate(f.brokers)
                    if r.target is not None
                ],
                integer=True,
            )
        ),
        "achievements": _both(
            BarChart(
                categories=years,
                series=[
                    Series(
                        "合同数 contracts",
                        COLOURS["achievements"],
                        [float(r.contracts) for r in f.achievements.years],
                    )
                ],
                unit="份 · contracts",
                integer=True,
            )
        ),
        "achievements_progress": progress_bar(
            a.counted,
            a.contracts,
            f"{a.first_year}–{a.last_year}: {a.counted:,} / {a.contracts} 份 contracts",
            COLOURS["achievements"],
        ),
    }
