"""One table says what a client is told of each domain error; the errors know no HTTP."""

from __future__ import annotations

import pytest

from services.common.errors import Conflict, DomainError, NotFound, Unavailable
from services.common.web.refusals import refusal
from services.registry.errors import InvalidCommand


@pytest.mark.parametrize(
    ("error", "status", "name"),
    [
        pytest.param(InvalidCommand("amount", "too much", "过多"), 422, "invalid", id="subclass"),
        pytest.param(Conflict("invoice_no", "taken", "已占用"), 409, "conflict", id="conflict"),
        pytest.param(NotFound(None, "nothing", "不存在"), 404, "not_found", id="not-found"),
        pytest.param(Unavailable(None, "later", "稍后"), 503, "unavailable", id="unavailable"),
        pytest.param(DomainError(None, "no", "否"), 400, "bad_request", id="base"),
    ],
)
def test_a_domain_error_answers_as_the_nearest_of_its_classes_in_the_table(
    error: DomainError, status: int, name: str
) -> None:
    assert refusal(error) == (
        status,
        {
            "error": name,
            "field": error.field,
            "message": error.message,
            "message_zh": error.message_zh,
        },
    )


def test_a_refused_command_of_a_batch_is_named_by_its_index() -> None:
    error = InvalidCommand("amount", "too much", "过多")
    error.index = 3

    assert refusal(error)[1]["index"] == 3


def test_domain_errors_carry_no_http_status() -> None:
    assert not hasattr(InvalidCommand("amount", "too much", "过多"), "status")


def test_a_rule_named_by_the_error_is_in_the_body() -> None:
    error = InvalidCommand("amended_on", "too early", "过早", rule="not_before_registration")

    assert refusal(error)[1]["rule"] == "not_before_registration"
