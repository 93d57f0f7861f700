"""An instant a client sends is parsed once, the same way by every service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.common.errors import Invalid
from services.common.instants import parse_instant


def test_an_instant_with_a_time_zone_is_returned_in_utc() -> None:
    assert parse_instant("as_of", "2025-03-31T08:00:00+08:00") == datetime(
        2025, 3, 31, 0, 0, tzinfo=UTC
    )
    assert parse_instant("since", "2025-03-31T00:00:00Z").tzinfo is UTC


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_an_instant_beyond_the_years_1_to_9999_in_utc_is_invalid(value: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_instant("as_of", value)
    assert refused.value.field == "as_of"
    assert "9999" in refused.value.message


def test_an_instant_without_a_time_zone_is_invalid() -> None:
    with pytest.raises(Invalid) as refused:
        parse_instant("since", "2025-03-31T00:00:00")
    assert refused.value.field == "since"
    assert "time zone" in refused.value.message


@pytest.mark.parametrize("value", ["", "yesterday", "2025-13-01T00:00:00Z", "2025-03-31T25:00Z"])
def test_text_that_is_no_instant_is_invalid(value: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_instant("as_of", value)
    assert refused.value.field == "as_of"


def test_a_date_alone_is_the_end_of_that_day_in_beijing() -> None:
    assert parse_instant("as_of", "2025-03-31") == datetime(
        2025, 3, 31, 15, 59, 59, 999_999, tzinfo=UTC
    )


@pytest.mark.parametrize("value", ["2025-02-30", "2025-13-01", "0000-01-01"])
def test_a_date_not_of_the_calendar_is_invalid(value: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_instant("as_of", value)
    assert refused.value.field == "as_of"
    assert value in refused.value.message
