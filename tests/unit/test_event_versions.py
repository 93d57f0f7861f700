"""Each event type has its own versions: the envelope accepts exactly the (type, version) pairs
of schemas/events/, derived from the files; readers take older versions upcast and skip, counting
them, versions newer than they read."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.audit.application import Audit
from services.common import schemas
from services.common.payloads import current_payload, now_read, read_version, skipped_as
from services.common.policy.facts import FactsBuilder
from services.common.policy.loader import load_schedule
from services.common.schemas import envelope_validator, schema_dir, schema_versions
from tests.support.policy_facts import contract, contract_events, numbered

GRANT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://tcr.example/schemas/events/GrantDecided.v1.json",
    "type": "object",
    "properties": {"grant_no": {"type": "string", "minLength": 1}},
    "required": ["grant_no"],
    "additionalProperties": False,
}


@pytest.fixture
def schema_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of schemas/ that the schema functions read instead, their caches cleared."""
    copy = tmp_path / "schemas"
    shutil.copytree(str(schema_dir()), copy, ignore=shutil.ignore_patterns("*.py", "policy"))
    monkeypatch.setattr(schemas, "schema_dir", lambda: copy)
    _clear()
    yield copy
    _clear()


def _clear() -> None:
    schemas._event_schemas.cache_clear()
    schemas.envelope_validator.cache_clear()
    schemas.event_date_fields.cache_clear()


def _entry(kind: str, version: int, payload: dict[str, Any], position: int = 1) -> dict[str, Any]:
    return {
        "position": position,
        "event_id": "9aa44caa-2744-5b25-9324-63db14b64902",
        "type": kind,
        "schema_version": version,
        "recorded_at": "2024-01-10T08:00:00.123456Z",
        "principal": "bureau",
        "subject": "S",
        "payload": payload,
        "prev_hash": "0" * 64,
        "hash": "1" * 64,
    }


def test_an_event_type_added_as_a_file_is_accepted_with_no_edit_of_the_envelope(
    schema_copy: Path,
) -> None:
    (schema_copy / "events" / "GrantDecided.v1.json").write_text(json.dumps(GRANT))

    assert schema_versions()["GrantDecided"] == (1,)
    assert envelope_validator().is_valid(_entry("GrantDecided", 1, {"grant_no": "G-1"}))
    assert not envelope_validator().is_valid(_entry("GrantDecided", 1, {"grant": "G-1"}))
    assert not envelope_validator().is_valid(_entry("GrantDecided", 2, {"grant_no": "G-1"}))


def test_a_version_missing_below_another_is_refused(schema_copy: Path) -> None:
    (schema_copy / "events" / "GrantDecided.v2.json").write_text(
        json.dumps({**GRANT, "$id": GRANT["$id"].replace("v1", "v2")})
    )

    with pytest.raises(ValueError, match=re.escape("GrantDecided: versions [2]")):
        schema_versions()


def test_a_schema_whose_id_is_not_its_file_name_is_refused(schema_copy: Path) -> None:
    (schema_copy / "events" / "GrantDecided.v1.json").write_text(
        json.dumps({**GRANT, "$id": "https://tcr.example/schemas/events/Grant.v1.json"})
    )

    with pytest.raises(ValueError, match=re.escape("GrantDecided.v1.json: its $id")):
        schema_versions()


def test_a_schema_file_not_named_type_and_version_is_refused(schema_copy: Path) -> None:
    (schema_copy / "events" / "GrantDecided.json").write_text(json.dumps(GRANT))

    with pytest.raises(ValueError, match=re.escape("not named <Type>.v<version>.json")):
        schema_versions()


def test_the_readers_read_every_version_the_schemas_describe() -> None:
    for kind, versions in schema_versions().items():
        assert read_version(kind) == versions[-1], kind


def test_a_version_1_registration_reads_as_version_2_without_a_certificate_number() -> None:
    payload = {"registration_no": "R1", "title": "t"}

    assert current_payload(_entry("ContractRegistered", 1, payload)) == {
        **payload,
        "certificate_no": None,
    }
    assert payload == {"registration_no": "R1", "title": "t"}, "the entry itself is unchanged"
    v2 = {**payload, "certificate_no": "410400-2024-000123"}
    assert current_payload(_entry("ContractRegistered", 2, v2)) == v2


def test_a_version_1_transfer_proof_reads_as_an_amount_in_cny() -> None:
    payload = {"serial_no": "BANK-1", "amount_fen": 100}

    assert current_payload(_entry("TransferProofRecorded", 1, payload)) == {
        **payload,
        "currency": "CNY",
    }


@pytest.mark.parametrize(
    ("kind", "version"),
    [("TransferProofRecorded", 3), ("BrokerFiled", 2), ("ContractRegistered", 0)],
)
def test_a_version_newer_than_the_readers_read_is_not_read(kind: str, version: int) -> None:
    assert current_payload(_entry(kind, version, {"registration_no": "R1"})) is None


def test_a_skipped_entry_is_counted_under_its_type_and_any_version_above_1() -> None:
    assert skipped_as(_entry("ContractInspected", 1, {})) == "ContractInspected"
    assert skipped_as(_entry("TransferProofRecorded", 3, {})) == "TransferProofRecorded v3"


def test_a_skipped_version_is_read_now_once_the_readers_know_it() -> None:
    known = {"TransferProofRecorded", "BrokerFiled"}

    assert now_read("TransferProofRecorded v2", known)
    assert not now_read("TransferProofRecorded v3", known)
    assert not now_read("ContractInspected", known)
    assert now_read("BrokerFiled", known)


def test_the_facts_skip_and_count_a_newer_version_of_a_known_type_and_read_the_rest() -> None:
    settled = contract("2023410400000001", settled=[])
    known = contract_events(settled)
    log = numbered([*known, ("TransferProofRecorded", {"registration_no": "X"})])
    log[-1]["schema_version"] = 3

    builder = FactsBuilder().apply_all(log)

    assert builder.skipped == {"TransferProofRecorded v3": 1}
    assert builder.position == log[-1]["position"]
    assert list(builder.facts().contracts) == ["2023410400000001"]


class ListSource:
    """A history held in a list, as the audit reads a bundle."""

    def __init__(self, envelopes: list[dict[str, Any]]) -> None:
        self._envelopes = envelopes

    def envelopes(self) -> Iterator[dict[str, Any]]:
        return iter(copy.deepcopy(self._envelopes))

    def policy_files(self) -> dict[str, str] | None:
        return None  # computed under the auditor's own schedule


def test_the_audit_replay_skips_and_counts_unknown_types_and_newer_versions() -> None:
    settled = contract("2023410400000001", settled=[(date(2023, 5, 1), 300_000_00)])
    known = contract_events(settled)
    unread = [
        ("ContractInspected", {"registration_no": settled.registration_no}),
        ("TransferProofRecorded", {"registration_no": settled.registration_no}),
    ]
    log = numbered([*known, *unread])
    log[-1]["schema_version"] = 3
    audit = Audit(load_schedule())

    replayed = audit.replay(ListSource(log), verify=False)  # type: ignore[arg-type]

    assert replayed["skipped_events"] == {"ContractInspected": 1, "TransferProofRecorded v3": 1}
    assert replayed["position"] == log[-1]["position"]
    assert replayed["years"] == audit.replay(ListSource(numbered(known)), verify=False)["years"]  # type: ignore[arg-type]
    assert replayed["years"]["2023"], "the known entries earn something to compare"
