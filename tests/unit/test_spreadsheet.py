"""CSV cells never start a formula, and numbers stay numbers."""

from __future__ import annotations

import pytest

from services.common.spreadsheet import safe_cell


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://evil.example","点击")',
        "@SUM(A1:A9)",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "=1+1",
        "\t=1+1",
        "\r=1+1",
        "-",
        "+",
        "-12.50 ",
        "-1e5",
    ],
)
def test_a_cell_that_would_start_a_formula_is_prefixed_with_a_quote(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("number", ["-12.50", "+3", "-0", "12.50", "-1200000.00", "0"])
def test_a_number_even_negative_stays_a_number(number: str) -> None:
    assert safe_cell(number) == number


@pytest.mark.parametrize("text", ["平顶山学院", "", "a=b", "R&D - 研发", "2020-2025", "'quoted"])
def test_other_text_is_left_as_it_is(text: str) -> None:
    assert safe_cell(text) == text
