"""The report's chart axes: round steps, the top just above the data."""

from __future__ import annotations

import math

import pytest

from services.audit.charts import BarChart, Series, bar_chart, nice_ticks


def test_an_axis_for_data_peaking_at_ten_and_a_half_runs_to_twelve_and_a_half() -> None:
    assert nice_ticks(10.5) == [0.0, 2.5, 5.0, 7.5, 10.0, 12.5]


@pytest.mark.parametrize("peak", [0.0004, 0.003, 0.7, 3.0, 10.5, 154.0, 9_759_202.5])
def test_an_axis_has_at_most_five_round_steps_and_ends_at_or_above_its_peak(peak: float) -> None:
    ticks = nice_ticks(peak)
    step = ticks[1]

    assert len(ticks) - 1 <= 5
    assert ticks[-1] >= peak > ticks[-2]
    assert round(step / 10 ** math.floor(math.log10(step)), 6) in {1, 2, 2.5, 5}


def test_a_count_axis_steps_in_whole_numbers() -> None:
    assert nice_ticks(3.0, integer=True) == [0.0, 1.0, 2.0, 3.0]
    assert all(t == int(t) for t in nice_ticks(160.2, integer=True))


@pytest.mark.parametrize("peak", [0.0, 0.004, 0.5, 1_000_000.0])
def test_a_chart_of_any_size_of_data_is_drawn(peak: float) -> None:
    svg = bar_chart(BarChart([["2024"], ["2025"]], [Series("x", "#000", [peak, peak / 2])], "u"))

    assert svg.startswith("<svg") and svg.endswith("</svg>")
