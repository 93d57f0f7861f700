"""The policy schedule: each turnover year's version, and the schedules refused."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from services.common.policy.loader import load_policy, load_schedule
from services.common.policy.model import CategoryRule, Policy
from services.common.policy.schedule import PolicySchedule
from tests.support.policy_facts import PINGDINGSHAN_2020

UNTIL_2023 = dataclasses.replace(PINGDINGSHAN_2020, last_year=2023)
FROM_2024 = dataclasses.replace(
    PINGDINGSHAN_2020,
    version="pingdingshan-2024.1",
    first_year=2024,
    categories={
        **PINGDINGSHAN_2020.categories,
        "absorption": CategoryRule(rate=Fraction(15, 100), cap_fen=100_000_00),
    },
)


def span(policy: Policy, first: int, last: int, version: str | None = None) -> Policy:
    return dataclasses.replace(
        policy, first_year=first, last_year=last, version=version or policy.version
    )


def test_each_year_is_given_the_version_whose_years_hold_it() -> None:
    schedule = PolicySchedule.of({"b.toml": FROM_2024, "a.toml": UNTIL_2023})

    assert [schedule.version_of(y) for y in range(2020, 2026)] == ["pingdingshan-2020.1"] * 4 + [
        "pingdingshan-2024.1"
    ] * 2
    assert schedule.for_year(2024) is FROM_2024
    assert (schedule.first_year, schedule.last_year) == (2020, 2025)
    assert schedule.version == "pingdingshan-2020.1, pingdingshan-2024.1"


@pytest.mark.parametrize("year", [2019, 2026])
def test_a_year_outside_every_version_has_none(year: int) -> None:
    schedule = PolicySchedule.of({"a.toml": UNTIL_2023, "b.toml": FROM_2024})

    assert not schedule.in_force(year)
    with pytest.raises(ValueError, match=f"{year} is outside the years in force"):
        schedule.for_year(year)


def test_overlapping_versions_are_refused_naming_both_files_and_the_years() -> None:
    late = span(FROM_2024, 2022, 2025)

    with pytest.raises(ValueError) as refused:
        PolicySchedule.of({"a.toml": UNTIL_2023, "b.toml": late})

    assert str(refused.value) == (
        "a.toml (2020–2023) and b.toml (2022–2025) both apply to 2022–2023"
    )


def test_a_gap_between_versions_is_refused_naming_the_years_no_file_holds() -> None:
    with pytest.raises(ValueError) as refused:
        PolicySchedule.of({"a.toml": span(UNTIL_2023, 2020, 2021), "b.toml": FROM_2024})

    assert str(refused.value) == (
        "no policy file applies to 2022–2023, between a.toml (2020–2021) and b.toml (2024–2025)"
    )


def test_two_files_of_one_version_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"a\.toml and b\.toml are both version pingdingshan-2020\.1"
    ):
        PolicySchedule.of({"a.toml": UNTIL_2023, "b.toml": span(UNTIL_2023, 2024, 2025)})


def test_an_empty_folder_is_refused() -> None:
    with pytest.raises(ValueError, match="no policy file"):
        PolicySchedule.of({})


def test_the_bundled_schedule_is_todays_one_policy_for_2020_to_2025() -> None:
    schedule = load_schedule()

    assert schedule.versions == (load_policy(),)
    assert schedule.versions == (PINGDINGSHAN_2020,)


def test_the_fingerprint_changes_with_any_setting_and_only_then() -> None:
    one = PolicySchedule.of({"a.toml": UNTIL_2023, "b.toml": FROM_2024})
    same = PolicySchedule.of({"x.toml": UNTIL_2023, "y.toml": FROM_2024})
    other_cap = dataclasses.replace(
        FROM_2024,
        categories={**FROM_2024.categories, "broker": CategoryRule(Fraction(1, 100), 1)},
    )

    assert one.fingerprint() == same.fingerprint()
    assert one.fingerprint() != PolicySchedule.single(PINGDINGSHAN_2020).fingerprint()
    assert one.fingerprint() != PolicySchedule.of({"a": UNTIL_2023, "b": other_cap}).fingerprint()
