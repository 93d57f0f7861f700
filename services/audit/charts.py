"""The report's charts as inline SVG: bars (grouped or stacked) with targets, and a progress bar.

The SVG scales with the page (``viewBox``, width 100%); text is sized for the drawn width.
Targets are dashed lines across their bar's slot, their values written under the slot's label,
never in the plot, where they met the bars' own value labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

TARGET_COLOUR = "#c0392b"
GRID, AXIS, MUTED = "#e3e8ee", "#8a96a3", "#5d6b7a"


@dataclass(frozen=True)
class Series:
    """One series of bars: its legend label, colour and a value per category."""

    label: str
    colour: str
    values: list[float]


@dataclass(frozen=True)
class Target:
    """A target drawn over one category's bars, and how its value is written."""

    index: int
    value: float
    label: str


@dataclass(frozen=True)
class BarChart:
    """What a bar chart shows; :func:`bar_chart` draws it."""

    categories: list[list[str]]  # each category's label, one string per line
    series: list[Series]
    unit: str
    targets: list[Target] = field(default_factory=list)
    stacked: bool = False
    top_labels: list[str] | None = None  # over each stack
    value_labels: bool = True
    integer: bool = False
    width: int = 760
    height: int = 300
    fit: bool = True  # scaled to the page's width; else drawn at its own size


def nice_ticks(peak: float, *, most: int = 5, integer: bool = False) -> list[float]:
    """Axis ticks from 0 in steps of 1, 2, 2.5 or 5 × 10^k, at most ``most`` steps, the last at
    or just above ``peak``: data peaking at 10.5 runs to 12.5, not 20."""
    if peak <= 0:
        return [0.0, 1.0]
    magnitude = 10.0 ** math.floor(math.log10(peak / most))
    for scale in (magnitude, magnitude * 10):
        for s in (1, 2, 2.5, 5):
            step = s * scale
            if integer and step != math.floor(step):
                continue
            count = math.ceil(peak / step - 1e-9)
            if count <= most:
                return [step * i for i in range(count + 1)]
    raise AssertionError("a step of 10^(k+1) always fits")  # pragma: no cover


def text_width(text: str, size: float) -> float:
    """About how wide ``text`` sets at ``size`` px: CJK characters are square, Latin narrower."""
    return sum(size if ord(c) >= 0x2E80 else size * 0.58 for c in text)


def number(value: float, integer: bool) -> str:
    """A value as labelled on a chart."""
    if integer:
        return f"{round(value):,}"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def bar_chart(chart: BarChart) -> Markup:
    """The chart as an ``<svg>`` element."""
    width, height = chart.width, chart.height
    label_lines = max(len(c) for c in chart.categories) + (1 if chart.targets else 0)
    left, right = 64, 16
    legend = _legend(chart, width - right)
    top, bottom = 24 + 16 * legend.rows, 24 + 14 * label_lines
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(chart.categories)
    totals = [
        sum(s.values[i] for s in chart.series)
        if chart.stacked
        else max((s.values[i] for s in chart.series), default=0.0)
        for i in range(n)
    ]
    ticks = nice_ticks(
        max([*totals, *(t.value for t in chart.targets), 0.0]) * 1.04, integer=chart.integer
    )
    peak = ticks[-1]
    slot = plot_w / max(1, n)
    per_slot = 1 if chart.stacked else len(chart.series)
    bar_w = min(56.0, slot * 0.7 / per_slot)
    base = top + plot_h

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / peak

    out = [_svg_open(width, height, chart.fit)]
    step = ticks[1]
    places = next((p for p in range(8) if abs(step * 10**p - round(step * 10**p)) < 1e-6), 8)
    for value in ticks:
        ty = y(value)
        out.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{ty + 4:.1f}" font-size="11" text-anchor="end">'
            f"{value:,.{places}f}</text>"
        )
    out.append(f'<text x="{left}" y="14" font-size="11" fill="{MUTED}">{escape(chart.unit)}</text>')
    for i, lines in enumerate(chart.categories):
        cx = left + slot * (i + 0.5)
        below = 0.0
        for j, s in enumerate(chart.series):
            value = s.values[i]
            if chart.stacked:
                x = cx - bar_w / 2
                bar_bottom, bar_top = y(below), y(below + value)
                below += value
            else:
                x = cx - bar_w * len(chart.series) / 2 + j * bar_w
                bar_bottom, bar_top = base, y(value)
            out.append(
                f'<rect x="{x:.1f}" y="{bar_top:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{max(0.0, bar_bottom - bar_top):.1f}" fill="{s.colour}"><title>'
                f"{escape(lines[0])} {escape(s.label)}: {number(value, chart.integer)}"
                "</title></rect>"
            )
            if chart.value_labels and not chart.stacked and value > 0:
                label_y = bar_top - 4
                for t in chart.targets:  # a target line near the bar's top: label above both
                    if t.index == i and abs(y(t.value) - bar_top) < 16:
                        label_y = min(bar_top, y(t.value)) - 7
                out.append(
                    f'<text x="{x + bar_w / 2 - 1:.1f}" y="{label_y:.1f}" font-size="11" '
                    f'text-anchor="middle">{number(value, chart.integer)}</text>'
                )
        if chart.stacked and chart.top_labels:
            out.append(
                f'<text x="{cx:.1f}" y="{y(totals[i]) - 5:.1f}" font-size="11" '
                f'text-anchor="middle">{escape(chart.top_labels[i])}</text>'
            )
        for k, line in enumerate(lines):
            out.append(
                f'<text x="{cx:.1f}" y="{base + 16 + 13 * k:.1f}" font-size="{12 - min(k, 1)}" '
                f'text-anchor="middle">{escape(line)}</text>'
            )
    for target in chart.targets:
        cx = left + slot * (target.index + 0.5)
        ty = y(target.value)
        half = max(bar_w * per_slot / 2 + 6, slot * 0.4)
        out.append(
            f'<line x1="{cx - half:.1f}" y1="{ty:.1f}" x2="{cx + half:.1f}" y2="{ty:.1f}" '
            f'stroke="{TARGET_COLOUR}" stroke-width="2.5" stroke-dasharray="6 3"/>'
            f'<text x="{cx:.1f}" y="{base + 16 + 13 * (label_lines - 1):.1f}" font-size="11" '
            f'text-anchor="middle" style="fill:{TARGET_COLOUR}">{escape(target.label)}</text>'
        )
    out.append(f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="{AXIS}"/>')
    out.append(legend.svg)
    out.append("</svg>")
    return Markup("".join(out))


def _svg_open(width: int, height: int, fit: bool) -> str:
    size = "" if fit else f' width="{width}" height="{height}"'
    return f'<svg viewBox="0 0 {width} {height}"{size} role="img" class="chart">'


@dataclass(frozen=True)
class _Legend:
    svg: str
    rows: int


def _legend(chart: BarChart, right: float) -> _Legend:
    """The legend under the unit, from the plot's left edge (in view before a narrow chart is
    scrolled); an item that would run past the right edge starts another row."""
    items: list[tuple[str, str]] = [(s.label, s.colour) for s in chart.series]
    if chart.targets:
        items.append(("目标 target", TARGET_COLOUR))
    start = 64.0  # the plot's left edge
    out, x, row = [], start, 0
    for label, colour in items:
        step = text_width(label, 11) + 24
        if x + step > right and x > start:
            x, row = start, row + 1
        top = 22 + 16 * row
        swatch = (
            f'<line x1="{x:.1f}" y1="{top + 6}" x2="{x + 12:.1f}" y2="{top + 6}" '
            f'stroke="{colour}" stroke-width="2.5" stroke-dasharray="4 2"/>'
            if colour == TARGET_COLOUR
            else f'<rect x="{x:.1f}" y="{top}" width="11" height="11" fill="{colour}"/>'
        )
        out.append(
            f'{swatch}<text x="{x + 15:.1f}" y="{top + 10}" font-size="11">{escape(label)}</text>'
        )
        x += step
    return _Legend("".join(out), row + 1)


def progress_bar(value: int, target: int, label: str, colour: str, width: int = 760) -> Markup:
    """A horizontal progress bar towards a target, as an ``<svg>`` element."""
    share = min(1.0, value / target) if target else 1.0
    fill = "#1e7d4f" if value >= target else colour
    percent = 100 * value / target if target else 100
    return Markup(
        f'<svg viewBox="0 0 {width} 44" role="img" class="chart">'
        f'<rect x="1" y="18" width="{width - 2}" height="18" rx="4" fill="#e8edf2"/>'
        f'<rect x="1" y="18" width="{(width - 2) * share:.1f}" height="18" rx="4" '
        f'fill="{fill}"/><text x="4" y="12" font-size="13">{escape(label)} '
        f"({percent:.0f}%)</text></svg>"
    )
