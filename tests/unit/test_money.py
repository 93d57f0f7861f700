"""Money at the edges: yuan strings with at most two decimals, integer fen inside."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.money import AmountError, format_fen, parse_yuan

MAX_WHOLE_YUAN = 10**16 - 1  # sixteen digits before the point

whole_yuan = st.integers(min_value=0, max_value=MAX_WHOLE_YUAN)
decimals = st.one_of(
    st.just(""),
    st.integers(0, 9).map(lambda d: f".{d}"),
    st.integers(0, 99).map(lambda d: f".{d:02d}"),
)


# Valid positive yuan strings: no leading zeros, zero to two decimals, never all zeros.
yuan_strings = st.builds(lambda whole, fraction: f"{whole}{fraction}", whole_yuan, decimals).filter(
    lambda text: text.strip("0.") != ""
)


def _with_two_decimals(text: str) -> str:
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


@given(yuan_strings)
def test_a_valid_yuan_string_formats_back_to_itself_with_two_decimals(text: str) -> None:
    assert format_fen(parse_yuan(text)) == _with_two_decimals(text)


@given(st.integers(min_value=1, max_value=MAX_WHOLE_YUAN * 100 + 99))
def test_any_positive_fen_amount_parses_back_from_its_formatted_string(fen: int) -> None:
    assert parse_yuan(format_fen(fen)) == fen


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1200000.00", 120_000_000),
        ("1200000", 120_000_000),
        ("0.01", 1),
        ("0.5", 50),
        ("0.50", 50),
        ("12.3", 1230),
        ("9999999999999999.99", 999_999_999_999_999_999),
    ],
)
def test_yuan_strings_are_stored_as_exact_integer_fen(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


def test_fen_are_formatted_with_exactly_two_decimals() -> None:
    assert format_fen(1) == "0.01"
    assert format_fen(50) == "0.50"
    assert format_fen(120_000_000) == "1200000.00"
    assert format_fen(0) == "0.00"
    assert format_fen(-1234) == "-12.34"


@pytest.mark.parametrize("text", ["0", "0.0", "0.00", "00", "-0.00"])
def test_a_zero_amount_is_refused(text: str) -> None:
    with pytest.raises(AmountError):
        parse_yuan(text)


@pytest.mark.parametrize("text", ["-1", "-0.01", "-1200000.00", "+1.00"])
def test_a_signed_amount_is_refused(text: str) -> None:
    with pytest.raises(AmountError):
        parse_yuan(text)


@pytest.mark.parametrize("text", ["1.001", "0.005", "1200000.000", "1.999"])
def test_an_amount_with_three_decimals_is_refused_not_rounded(text: str) -> None:
    with pytest.raises(AmountError):
        parse_yuan(text)


@pytest.mark.parametrize("text", ["1e6", "1E6", "1.2e3", "inf", "nan", "Infinity"])
def test_an_amount_in_exponent_or_float_notation_is_refused(text: str) -> None:
    with pytest.raises(AmountError):
        parse_yuan(text)


@pytest.mark.parametrize("text", [" 1.00", "1.00 ", "1 000.00", "1. 00", "\t1.00", ""])
def test_an_amount_with_spaces_or_nothing_is_refused(text: str) -> None:
    with pytest.raises(AmountError):
        parse_yuan(text)


def test_an_amount_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(AmountError):
        parse_yuan("100.00\n")


@pytest.mark.parametrize("text", ["01", "01.00", "00.50", "007"])
def test_an_amount_with_leading_zeros_is_refused(text: str) -> None:
    with pytest.raises(AmountError):
        parse_yuan(text)


@pytest.mark.parametrize(
    "text", ["1.", ".5", "1,000.00", "1,5", "¥100", "100元", "1_000", "١٢٣", "１２３"]
)
def test_an_amount_in_any_other_notation_is_refused(text: str) -> None:
    with pytest.raises(AmountError):
        parse_yuan(text)


def test_an_amount_of_more_than_sixteen_whole_digits_is_refused() -> None:
    with pytest.raises(AmountError):
        parse_yuan("10000000000000000.00")
