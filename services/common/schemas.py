"""The JSON Schemas of the log (schemas/): the envelope and one payload schema per event type."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ENVELOPE_SCHEMA = "envelope.v1.json"


def schema_dir() -> Traversable:
    """The repository's ``schemas/``, which the wheel ships as the package ``services.schemas``."""
    return files("services.schemas")


def _load(path: Traversable) -> dict[str, Any]:
    contents: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return contents


@cache
def event_date_fields() -> dict[str, str]:
    """The payload field holding each event type's own date (the day the fact happened), as
    its schema's ``x-event-date`` names it; types without such a day are left out."""
    fields = {}
    events = (p for p in (schema_dir() / "events").iterdir() if p.name.endswith(".json"))
    for path in sorted(events, key=lambda p: p.name):
        field = _load(path).get("x-event-date")
        if field is not None:
            fields[path.name.split(".", 1)[0]] = str(field)
    return fields


@cache
def envelope_validator() -> Draft202012Validator:
    """A validator of log envelopes; each payload is checked against its event type's schema.

    Formats (``date``, ``uuid``) are asserted, not only annotated.
    """
    resources: list[tuple[str, Resource[Any]]] = []
    events = (schema_dir() / "events").iterdir()
    for path in sorted((p for p in events if p.name.endswith(".json")), key=lambda p: p.name):
        contents = _load(path)
        Draft202012Validator.check_schema(contents)
        resources.append((contents["$id"], DRAFT202012.create_resource(contents)))
    registry: Registry[Any] = Registry().with_resources(resources)
    envelope = _load(schema_dir() / ENVELOPE_SCHEMA)
    Draft202012Validator.check_schema(envelope)
    return Draft202012Validator(
        envelope, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
