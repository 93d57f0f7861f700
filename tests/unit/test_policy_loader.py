"""Policy files: the bundled Pingdingshan policy, and bad mappings refused naming the key."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest

from services.common.policy.loader import (
    PolicyError,
    load_policy,
    policy_from_mapping,
    policy_from_text,
)
from tests.support.policy_facts import PINGDINGSHAN_2020

# The bundled policy as tomllib reads it, written out so each test can spoil one key.
MAPPING: dict[str, Any] = {
    "version": "pingdingshan-2020.1",
    "city_prefix": "4104",
    "applies_to": [2020, 2025],
    "registration_window_years": 2,
    "eligible_contract_types": ["development", "transfer", "licensing"],
    "evidence_ceiling": "contract_amount",
    "categories": {
        "absorption": {"rate": "0.10", "cap": "500000.00"},
        "output": {"rate": "0.10", "cap": "500000.00"},
        "broker": {"rate": "0.01", "cap": "200000.00"},
    },
}


def mapping(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MAPPING)
    data.update(changes)
    return data


def with_category(name: str, **rule: Any) -> dict[str, Any]:
    data = mapping()
    data["categories"][name] = {
        k: v for k, v in {**MAPPING["categories"][name], **rule}.items() if v is not None
    }
    return data


def test_bundled_policy_loads_with_its_version_rates_and_caps() -> None:
    policy = load_policy()

    assert policy.version == "pingdingshan-2020.1"
    assert policy.categories["absorption"].rate == Fraction(1, 10)
    assert policy.categories["output"].rate == Fraction(1, 10)
    assert policy.categories["broker"].rate == Fraction(1, 100)
    assert policy.categories["absorption"].cap_fen == 50_000_000  # 500,000.00 yuan
    assert policy.categories["output"].cap_fen == 50_000_000
    assert policy.categories["broker"].cap_fen == 20_000_000  # 200,000.00 yuan


def test_bundled_policy_holds_every_policy_setting_of_the_domain() -> None:
    policy = load_policy()

    assert policy.city_prefix == "4104"
    assert (policy.first_year, policy.last_year) == (2020, 2025)
    assert policy.registration_window_years == 2
    assert policy.eligible_contract_types == {"development", "transfer", "licensing"}
    assert policy.evidence_ceiling == "contract_amount"
    assert policy == PINGDINGSHAN_2020  # the hand-written policy the engine tests use


def test_mapping_of_the_bundled_file_gives_the_same_policy() -> None:
    assert policy_from_mapping(mapping()) == PINGDINGSHAN_2020


def test_technology_amount_is_an_accepted_evidence_ceiling() -> None:
    policy = policy_from_mapping(mapping(evidence_ceiling="technology_amount"))

    assert policy.evidence_ceiling == "technology_amount"


@pytest.mark.parametrize(
    "key",
    [
        "version",
        "city_prefix",
        "applies_to",
        "registration_window_years",
        "eligible_contract_types",
        "evidence_ceiling",
        "categories",
    ],
)
def test_mapping_missing_a_key_is_refused_naming_it(key: str) -> None:
    data = mapping()
    del data[key]

    with pytest.raises(ValueError, match=key):
        policy_from_mapping(data, source="test.toml")


@pytest.mark.parametrize("category", ["absorption", "output", "broker"])
def test_mapping_missing_a_category_is_refused_naming_it(category: str) -> None:
    data = mapping()
    del data["categories"][category]

    with pytest.raises(ValueError, match=rf"categories\.{category}"):
        policy_from_mapping(data)


@pytest.mark.parametrize("ceiling", ["contract", "TECHNOLOGY_AMOUNT", ""])
def test_unknown_evidence_ceiling_is_refused_naming_it(ceiling: str) -> None:
    with pytest.raises(ValueError, match="evidence_ceiling"):
        policy_from_mapping(mapping(evidence_ceiling=ceiling))


@pytest.mark.parametrize("rate", ["ten percent", "", "1.5", "-0.01", None])
def test_bad_or_missing_rate_is_refused_naming_it(rate: str | None) -> None:
    with pytest.raises(ValueError, match=r"categories\.broker\.rate"):
        policy_from_mapping(with_category("broker", rate=rate))


@pytest.mark.parametrize("rate", ["0", "1", "0.005"])
def test_rate_between_zero_and_one_is_accepted_exactly(rate: str) -> None:
    policy = policy_from_mapping(with_category("output", rate=rate))

    assert policy.categories["output"].rate == Fraction(rate)


def test_applies_to_starting_after_it_ends_is_refused() -> None:
    with pytest.raises(ValueError, match="applies_to"):
        policy_from_mapping(mapping(applies_to=[2026, 2025]))


@pytest.mark.parametrize("span", [2020, [2020], [2020, 2021, 2022], ["2020", "2025"], [True, 2025]])
def test_applies_to_not_a_pair_of_years_is_refused(span: Any) -> None:
    with pytest.raises(ValueError, match="applies_to"):
        policy_from_mapping(mapping(applies_to=span))


def test_a_file_from_before_schedules_with_first_and_last_year_still_loads() -> None:
    data = mapping()
    del data["applies_to"]

    assert policy_from_mapping({**data, "first_year": 2020, "last_year": 2025}) == PINGDINGSHAN_2020


def test_error_names_the_policy_source() -> None:
    data = mapping()
    del data["version"]

    with pytest.raises(ValueError, match=r"pingdingshan-2099\.toml"):
        policy_from_mapping(data, source="pingdingshan-2099.toml")


def test_mapping_missing_a_cap_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"categories\.absorption\.cap"):
        policy_from_mapping(with_category("absorption", cap=None))


@pytest.mark.parametrize("cap", ["-1", "500000.001", "five hundred thousand"])
def test_bad_cap_is_refused_naming_it(cap: str) -> None:
    with pytest.raises(ValueError, match=r"categories\.output\.cap"):
        policy_from_mapping(with_category("output", cap=cap))


@pytest.mark.parametrize("rate", ["NaN", "Infinity"])
def test_non_finite_rate_is_refused_naming_it(rate: str) -> None:
    with pytest.raises(ValueError, match=r"categories\.absorption\.rate"):
        policy_from_mapping(with_category("absorption", rate=rate))


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("version", ""),
        ("city_prefix", 4104),
        ("city_prefix", "41A4"),
        ("registration_window_years", "2"),
        ("registration_window_years", 0),
        ("eligible_contract_types", "development"),
        ("applies_to", [2020]),
    ],
)
def test_a_setting_of_the_wrong_kind_is_refused_naming_it(setting: str, value: Any) -> None:
    with pytest.raises(PolicyError) as refused:
        policy_from_mapping(mapping(**{setting: value}))

    assert refused.value.setting == setting


def test_a_policy_text_that_is_not_toml_is_refused_naming_its_source() -> None:
    with pytest.raises(ValueError, match=r"draft\.toml: not TOML"):
        policy_from_text("rate = =", source="draft.toml")
