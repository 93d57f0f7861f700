"""How entitlements read to finance: Chinese beside the codes, exact amounts, rates as written."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import get_args

import pytest

from services.common.counties import COUNTIES, county_name
from services.common.policy.model import ALL_CATEGORIES, Category, ExclusionReason
from services.common.policy.present import (
    CATEGORY_ZH,
    REASON_ZH,
    exclusion_json,
    rate_text,
    yuan,
    yuan_decimal,
)


def test_every_exclusion_reason_and_category_has_its_chinese_text() -> None:
    assert set(REASON_ZH) == set(get_args(ExclusionReason))
    assert set(CATEGORY_ZH) == set(ALL_CATEGORIES) == set(get_args(Category))
    assert len(set(REASON_ZH.values())) == len(REASON_ZH)  # no two reasons read alike
    assert not any(text.isascii() for text in [*REASON_ZH.values(), *CATEGORY_ZH.values()])


def test_an_exclusion_carries_its_code_and_its_chinese_text() -> None:
    assert exclusion_json("2024410400000003", "related_party") == {
        "registration_no": "2024410400000003",
        "reason": "related_party",
        "reason_zh": "关联企业间交易",
    }


@pytest.mark.parametrize(
    ("fen", "expected"),
    [
        (0, Decimal("0.00")),
        (1, Decimal("0.01")),
        (12_345_678_901, Decimal("123456789.01")),
        (Fraction(50_000_001, 2), Decimal("250000.01")),  # half a fen rounds up
        (Fraction(50_000_001, 3), Decimal("166666.67")),
    ],
)
def test_a_number_cell_holds_the_amount_shown_as_text_exactly(
    fen: int | Fraction, expected: Decimal
) -> None:
    assert yuan_decimal(fen) == expected
    assert str(yuan_decimal(fen)) == yuan(fen)


@pytest.mark.parametrize(
    ("rate", "text"),
    [(Fraction(1, 10), "0.1"), (Fraction(1, 100), "0.01"), (Fraction(0), "0"),
     (Fraction(1), "1"), (Fraction(1, 3), "1/3")],
)  # fmt: skip
def test_a_rate_reads_as_the_policy_file_writes_it(rate: Fraction, text: str) -> None:
    assert rate_text(rate) == text


def test_only_the_citys_listed_counties_have_a_name() -> None:
    assert county_name("410482") == "汝州市"
    assert county_name("410499") == ""  # local by prefix, but no listed county
    assert county_name("110108") == ""
    assert len(COUNTIES) == 10 and all(code.startswith("4104") for code in COUNTIES)
