"""Identity codes: unified social credit codes (GB 32100-2015) and region codes (GB/T 2260)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.codes import (
    CREDIT_CODE_CHARSET,
    credit_code_check_character,
    credit_code_problem,
    region_code_problem,
)
from tests.support.parties import LOCAL_ENTERPRISE, OUTSIDE_ENTERPRISE, UNIVERSITY, credit_code

# Real-world codes of large registered companies, as published on their business licences.
PUBLISHED_CODES = [
    "914403001922038216",
    "9144030071526726XG",
    "91330100716105852F",
    "91110000802100433B",
]

body17 = st.text(alphabet=CREDIT_CODE_CHARSET, min_size=17, max_size=17)
valid_codes = body17.map(credit_code)


def test_the_check_character_set_has_31_characters_without_i_o_z_s_v() -> None:
    assert len(CREDIT_CODE_CHARSET) == len(set(CREDIT_CODE_CHARSET)) == 31
    assert not set("IOZSV") & set(CREDIT_CODE_CHARSET)


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_published_credit_codes_pass_the_check(code: str) -> None:
    assert credit_code_problem(code) is None


@pytest.mark.parametrize("party", [UNIVERSITY, LOCAL_ENTERPRISE, OUTSIDE_ENTERPRISE])
def test_the_test_parties_carry_valid_credit_codes(party: dict[str, str]) -> None:
    assert credit_code_problem(party["credit_code"]) is None


def test_the_check_character_can_be_a_letter_or_zero() -> None:
    # Check values 0 and 10+ are the edge cases of (31 - total % 31) % 31.
    assert PUBLISHED_CODES[1][-1] == "G"
    assert credit_code_check_character("00000000000000000") == "0"


@given(valid_codes)
def test_a_code_completed_with_its_check_character_is_valid(code: str) -> None:
    assert credit_code_problem(code) is None


@given(valid_codes, st.integers(0, 17), st.sampled_from(CREDIT_CODE_CHARSET))
def test_every_single_character_substitution_of_a_valid_code_is_caught(
    code: str, index: int, replacement: str
) -> None:
    # 31 is prime and no weight is 0 mod 31, so no substitution can keep the sum: the
    # property holds for every position and every other character of the set.
    if replacement == code[index]:
        replacement = CREDIT_CODE_CHARSET[(CREDIT_CODE_CHARSET.index(replacement) + 1) % 31]
    corrupted = code[:index] + replacement + code[index + 1 :]

    assert credit_code_problem(corrupted) == "fails the GB 32100-2015 check character"


@pytest.mark.parametrize("code", PUBLISHED_CODES[:2])
def test_every_single_character_corruption_of_a_published_code_is_caught(code: str) -> None:
    corruptions = [
        code[:i] + c + code[i + 1 :]
        for i in range(18)
        for c in CREDIT_CODE_CHARSET + "IOZSVabc -"
        if c != code[i]
    ]

    assert all(credit_code_problem(bad) is not None for bad in corruptions)


@given(valid_codes, st.integers(0, 15))
def test_swapping_two_adjacent_characters_of_a_valid_code_is_caught(code: str, i: int) -> None:
    swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
    if swapped != code:
        assert credit_code_problem(swapped) is not None


@pytest.mark.parametrize("length", [0, 1, 15, 17, 19, 20])
def test_a_credit_code_of_the_wrong_length_is_refused(length: int) -> None:
    code = (PUBLISHED_CODES[0] * 2)[:length]

    assert credit_code_problem(code) == "must be 18 characters (GB 32100-2015)"


@pytest.mark.parametrize("letter", list("IOZSV"))
def test_a_credit_code_with_a_forbidden_letter_is_refused(letter: str) -> None:
    code = "91410400MA" + letter + "000002"
    code += "0"  # 18 characters, check character irrelevant: the letter alone is enough

    problem = credit_code_problem(code)

    assert problem is not None
    assert letter in problem


def test_a_lower_case_credit_code_is_refused() -> None:
    assert credit_code_problem(PUBLISHED_CODES[1].lower()) is not None


def test_a_credit_code_with_a_trailing_newline_is_refused() -> None:
    assert credit_code_problem(PUBLISHED_CODES[0][:17] + "\n") is not None
    assert credit_code_problem(PUBLISHED_CODES[0] + "\n") is not None


@pytest.mark.parametrize("code", ["410402", "410403", "410482", "110108", "000000", "999999"])
def test_a_six_digit_region_code_is_accepted(code: str) -> None:
    assert region_code_problem(code) is None


@pytest.mark.parametrize(
    "code", ["", "41040", "4104021", "41040A", " 410402", "410402 ", "4104-2", "４１０４０２"]
)
def test_a_region_code_that_is_not_six_ascii_digits_is_refused(code: str) -> None:
    assert region_code_problem(code) == "must be 6 digits (GB/T 2260)"


def test_a_region_code_with_a_trailing_newline_is_refused() -> None:
    assert region_code_problem("410402\n") is not None
