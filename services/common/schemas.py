"""The JSON Schemas of the log (schemas/): the envelope and one payload schema per event type
and version, ``events/<Type>.v<N>.json``.

The envelope file describes an entry's structure; which (type, version) pairs it accepts, and
which payload schema each names, is composed in here from the files of ``events/``, so adding an
event type or a version of one is adding a file.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ENVELOPE_SCHEMA = "envelope.v1.json"
SCHEMA_BASE = "https://tcr.example/schemas/"
_EVENT_FILE = re.compile(r"([A-Z][A-Za-z0-9]*)\.v([1-9][0-9]*)\.json")


def schema_dir() -> Traversable:
    """The repository's ``schemas/``, which the wheel ships as the package ``services.schemas``."""
    return files("services.schemas")


def _load(path: Traversable) -> dict[str, Any]:
    contents: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return contents


@cache
def _event_schemas() -> dict[str, dict[int, dict[str, Any]]]:
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted((schema_dir() / "events").iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".json"):
            continue
        named = _EVENT_FILE.fullmatch(path.name)
        if named is None:
            raise ValueError(f"schemas/events/{path.name}: not named <Type>.v<version>.json")
        contents = _load(path)
        if contents.get("$id") != f"{SCHEMA_BASE}events/{path.name}":
            raise ValueError(f"schemas/events/{path.name}: its $id does not name the file")
        found.setdefault(named[1], {})[int(named[2])] = contents
    for kind, versions in found.items():
        if sorted(versions) != list(range(1, len(versions) + 1)):
            raise ValueError(f"schemas/events/{kind}: versions {sorted(versions)} are not 1, 2, …")
    return {kind: dict(sorted(found[kind].items())) for kind in sorted(found)}


def event_schemas() -> dict[str, dict[int, dict[str, Any]]]:
    """Each event type's payload schemas by version, as ``schemas/events/`` holds them; a file
    misnamed, whose ``$id`` is not its name, or a version missing below another, is refused."""
    return copy.deepcopy(_event_schemas())


def schema_versions() -> dict[str, tuple[int, ...]]:
    """The versions of each event type that ``schemas/events/`` describes."""
    return {kind: tuple(versions) for kind, versions in _event_schemas().items()}


@cache
def event_date_fields() -> dict[str, str]:
    """The payload field holding each event type's own date (the day the fact happened), as
    its newest schema's ``x-event-date`` names it; types without such a day are left out."""
    fields = {}
    for kind, versions in _event_schemas().items():
        field = versions[max(versions)].get("x-event-date")
        if field is not None:
            fields[kind] = str(field)
    return fields


def envelope_schema() -> dict[str, Any]:
    """The envelope schema as validators use it: ``envelope.v1.json`` with the types and
    versions of ``schemas/events/`` composed in. An entry's ``type`` must be one of the types,
    its ``schema_version`` one of that type's versions, and its ``payload`` valid under the
    schema the pair names."""
    envelope = _load(schema_dir() / ENVELOPE_SCHEMA)
    versions = schema_versions()
    envelope["properties"]["type"]["enum"] = list(versions)
    envelope["allOf"] = [_type_clause(kind, numbers) for kind, numbers in versions.items()]
    return envelope


def _type_clause(kind: str, versions: tuple[int, ...]) -> dict[str, Any]:
    return {
        "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
        "then": {
            "properties": {"schema_version": {"enum": list(versions)}},
            "allOf": [
                {
                    "if": {
                        "properties": {"schema_version": {"const": version}},
                        "required": ["schema_version"],
                    },
                    "then": {
                        "properties": {
                            "payload": {"$ref": f"{SCHEMA_BASE}events/{kind}.v{version}.json"}
                        }
                    },
                }
                for version in versions
            ],
        },
    }


@cache
def envelope_validator() -> Draft202012Validator:
    """A validator of log envelopes; each payload is checked against the schema of its type
    and version.

    Formats (``date``, ``uuid``) are asserted, not only annotated.
    """
    resources: list[tuple[str, Resource[Any]]] = []
    for versions in _event_schemas().values():
        for contents in versions.values():
            Draft202012Validator.check_schema(contents)
            resources.append((contents["$id"], DRAFT202012.create_resource(contents)))
    registry: Registry[Any] = Registry().with_resources(resources)
    envelope = envelope_schema()
    Draft202012Validator.check_schema(envelope)
    return Draft202012Validator(
        envelope, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
