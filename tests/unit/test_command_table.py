"""The command table declares each op once; the schemas and the domain agree with it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from services.common.schemas import (
    envelope_schema,
    event_date_fields,
    event_schemas,
    schema_dir,
    schema_versions,
)
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
    envelope_types = envelope_schema()["properties"]["type"]["enum"]

    assert set(EVENT_TYPES) == set(envelope_types) == files


def test_each_event_class_writes_the_newest_version_its_schemas_describe() -> None:
    for declared in COMMANDS.values():
        event = getattr(declared.aggregate, declared.event)
        written = getattr(event, "class_version", 1)
        assert schema_versions()[declared.event][-1] == written, declared.event


def test_each_subject_and_event_day_is_a_required_field_of_every_version_of_its_payload() -> None:
    for kind, field in [*SUBJECT_FIELD.items(), *event_date_fields().items()]:
        for version, schema in event_schemas()[kind].items():
            assert field in schema["required"], (kind, version, field)


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
