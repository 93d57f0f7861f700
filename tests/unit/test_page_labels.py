"""How the finance page writes amounts and rates: 元 and 万元 with thousands separators."""

from __future__ import annotations

from fractions import Fraction

import pytest

from services.common.web.page import beijing, yuan
from services.subsidy.web.labels import county, percent, sum_amounts, wan


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("0.00", "0.00"), ("1234567.5", "1,234,567.50"), ("-5000.00", "-5,000.00"), (None, "—")],
)
def test_yuan_are_shown_with_thousands_separators_and_two_decimals(
    amount: str | None, shown: str
) -> None:
    assert yuan(amount) == shown


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("1234567.50", "123.46"),
        ("5000.00", "0.50"),
        ("49.99", "0.00"),
        ("123456789.00", "12,345.68"),
    ],
)
def test_wan_yuan_are_rounded_half_up_to_two_decimals(amount: str, shown: str) -> None:
    assert wan(amount) == shown


def test_rates_are_percentages_and_sums_are_exact() -> None:
    assert [percent(Fraction(1, 10)), percent(Fraction(1, 100)), percent(Fraction(1, 3))] == [
        "10%",
        "1%",
        "33.33%",
    ]
    rows = [{"a": "0.10"}, {"a": "0.20"}, {"a": "1000000.01"}]
    assert sum_amounts(rows, "a") == "1000000.31"


def test_a_county_of_the_city_is_named_and_any_other_shown_as_its_code() -> None:
    assert county("410402") == "新华区 410402"
    assert county("110101") == "110101"


def test_log_instants_are_shown_in_beijing_time() -> None:
    assert beijing("2026-12-06T15:54:40.020313Z") == "2026-12-06 23:54:40"
    assert beijing("2024-12-31T16:00:00Z") == "2025-01-01 00:00:00"
