"""The application taken without HTTP: a receipt for what was stored, a domain error for what
was refused, and an op the command table does not hold refused like any broken rule."""

from __future__ import annotations

import pytest

from services.registry.commands import Command
from services.registry.errors import InvalidCommand, NotFound
from tests.integration.test_registry_concurrency import (
    ANSWER_TIMEOUT,
    STATION,
    invoice,
    register,
    registries,
)


def test_a_stored_command_is_answered_with_its_receipt(database_url: str) -> None:
    with registries(database_url, 1) as (registry,):
        register(registry, "R1")

        receipt = registry.submit(STATION, [invoice("R1", "INV-1")]).result(ANSWER_TIMEOUT)

        entry = registry.read_log(1, 1)["events"][0]
        assert receipt == {
            k: entry[k] for k in ("position", "event_id", "type", "subject", "recorded_at", "hash")
        }


def test_a_refused_command_raises_its_domain_error_and_stores_nothing(database_url: str) -> None:
    with registries(database_url, 1) as (registry,):
        future = registry.submit(STATION, [invoice("R9", "INV-1")])

        with pytest.raises(NotFound) as refused:
            future.result(ANSWER_TIMEOUT)
        assert refused.value.field == "registration_no"
        assert registry.head() == 0


def test_an_op_the_command_table_does_not_hold_is_refused_naming_it_within_its_batch(
    database_url: str,
) -> None:
    with registries(database_url, 1) as (registry,):
        register(registry, "R1")
        unknown = Command("delete_contract", {"registration_no": "R1"})

        future = registry.submit(STATION, [invoice("R1", "INV-1"), unknown], batch=True)

        with pytest.raises(InvalidCommand) as refused:
            future.result(ANSWER_TIMEOUT)
        assert (refused.value.field, refused.value.index) == ("op", 1)
        assert "delete_contract" in refused.value.message
        assert registry.head() == 1  # the registration alone
