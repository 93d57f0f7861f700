"""The command table declares each op once; the schemas and the domain agree with it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from services.common.schemas import ENVELOPE_SCHEMA, event_date_fields, schema_dir
from services.registry.api.batch import BatchCommand
from services.registry.commands import COMMANDS, HANDLERS, Command, needs
from services.registry.domain import contract_aggregate_id
from services.registry.log import EVENT_TYPES, SUBJECT_FIELD


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((schema_dir() / name).read_text(encoding="utf-8"))
    return loaded


def test_every_op_records_an_event_its_aggregate_declares() -> None:
    for op, declared in COMMANDS.items():
        event = getattr(declared.aggregate, declared.event, None)
        assert isinstance(event, type) and issubclass(event, Aggregate.Event), op


def test_the_event_types_of_the_table_are_those_the_schemas_describe() -> None:
    files = {p.name.split(".", 1)[0] for p in (schema_dir() / "events").glob("*.json")}
    envelope_types = _schema(ENVELOPE_SCHEMA)["properties"]["type"]["enum"]

    # The envelope lists every type of schemas/events/ (those it does not list yet are
    # validated by their payload schema alone: tests/integration/test_event_schemas.py).
    assert set(envelope_types) <= set(EVENT_TYPES)
    assert set(EVENT_TYPES) == files


def test_each_subject_and_event_day_is_a_required_field_of_its_payload() -> None:
    for kind, field in [*SUBJECT_FIELD.items(), *event_date_fields().items()]:
        schema = _schema(f"events/{kind}.v1.json")
        assert field in schema["required"], (kind, field)


def test_the_batch_accepts_exactly_the_ops_of_the_table() -> None:
    documented = BatchCommand.model_json_schema()["oneOf"]
    assert [o["properties"]["op"]["const"] for o in documented] == list(COMMANDS)
    for op in COMMANDS:
        BatchCommand.model_validate({"op": op, "body": {}})  # the body is read per op, later
    with pytest.raises(ValueError, match="register_contract"):
        BatchCommand.model_validate({"op": "delete_contract", "body": {}})
    assert list(HANDLERS) == list(COMMANDS)


def test_a_contract_command_prefetches_its_contract_and_the_numbers_it_claims() -> None:
    invoice = Command("record_invoice", {"registration_no": "R1", "invoice_no": "INV-1"})

    assert needs(invoice) == ([contract_aggregate_id("R1")], [("invoice", "INV-1")])


@pytest.mark.parametrize("op", ["delete_contract", "file_station"])
def test_an_op_the_table_does_not_hold_prefetches_nothing(op: str) -> None:
    assert needs(Command(op, {"registration_no": "R1", "station_id": "S9"})) == ([], [])


def test_the_registry_application_loads_no_web_framework() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, services.registry.application; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'starlette'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )

    assert loaded.stdout.strip() == "[]"
