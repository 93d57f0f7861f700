"""Canonical bytes of a log envelope and the hash that chains each entry to the one before."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.envelope import (
    ENVELOPE_FIELDS,
    GENESIS_HASH,
    canonical_bytes,
    entry_hash,
)

PREV = hashlib.sha256(b"the entry before").hexdigest()


def envelope(**overrides: Any) -> dict[str, Any]:
    """An invoice envelope as the registry builds it, before its hash is set."""
    value: dict[str, Any] = {
        "position": 2,
        "event_id": "f6b925a9-9d3c-57e5-9921-7711e46edfd7",
        "type": "InvoiceRecorded",
        "schema_version": 1,
        "recorded_at": "2024-04-01T02:03:04.000005Z",
        "principal": "station-s1",
        "subject": "2024410400000001",
        "payload": {
            "registration_no": "2024410400000001",
            "invoice_no": "INV-0001",
            "issued_on": "2024-04-01",
            "amount_fen": 60_000_000,
            "issuer_credit_code": "12410400MB0000001L",
            "recipient_credit_code": "91410400MA0000002G",
        },
        "prev_hash": PREV,
    }
    value.update(overrides)
    return value


def reference_canonical_bytes(value: Any) -> bytes:
    """An independent JCS (RFC 8785) rendering for our value types, from the standard library."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# JSON values of the types envelopes carry: no floats, integers within 64 bits.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=0x7F)), children, max_size=4)
    ),
    max_leaves=20,
)


# -- canonical bytes --------------------------------------------------------------------------


def test_canonical_bytes_sort_keys_at_every_depth() -> None:
    value = {"b": 1, "a": {"z": [{"y": 1, "x": 2}], "c": 3}}

    assert canonical_bytes(value) == b'{"a":{"c":3,"z":[{"x":2,"y":1}]},"b":1}'


def test_canonical_bytes_hold_no_insignificant_whitespace() -> None:
    text = canonical_bytes(envelope()).decode()

    assert not any(c in text for c in " \n\r\t")
    assert text == json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True)


def test_canonical_bytes_are_utf_8_with_chinese_unescaped() -> None:
    value = {"name": "平顶山学院", "title": "煤矿智能巡检机器人技术开发"}

    data = canonical_bytes(value)

    assert data == '{"name":"平顶山学院","title":"煤矿智能巡检机器人技术开发"}'.encode()
    assert b"\\u" not in data


def test_canonical_bytes_escape_only_what_json_requires() -> None:
    assert canonical_bytes({"s": 'a"b\\c\n\u0001'}) == b'{"s":"a\\"b\\\\c\\n\\u0001"}'


def test_canonical_bytes_do_not_depend_on_the_order_keys_were_inserted() -> None:
    forward = envelope()
    backward = dict(reversed(list(forward.items())))

    assert canonical_bytes(forward) == canonical_bytes(backward)


@given(json_values)
def test_canonical_bytes_match_an_independent_jcs_rendering(value: Any) -> None:
    assert canonical_bytes(value) == reference_canonical_bytes(value)


# -- entry hash -------------------------------------------------------------------------------


def test_the_entry_hash_is_sha256_of_the_previous_hash_bytes_then_the_canonical_envelope() -> None:
    expected = hashlib.sha256(bytes.fromhex(PREV) + reference_canonical_bytes(envelope()))

    assert entry_hash(PREV, envelope()) == expected.hexdigest()


def test_the_first_entry_chains_to_the_genesis_hash_of_64_zeros() -> None:
    assert GENESIS_HASH == "0" * 64
    first = envelope(position=1, prev_hash=GENESIS_HASH)

    assert (
        entry_hash(GENESIS_HASH, first)
        == hashlib.sha256(bytes(32) + reference_canonical_bytes(first)).hexdigest()
    )


def test_the_entry_hash_leaves_out_the_envelopes_own_hash_field() -> None:
    without = entry_hash(PREV, envelope())

    assert entry_hash(PREV, envelope(hash="f" * 64)) == without
    assert entry_hash(PREV, envelope(hash=without)) == without


CHANGED_FIELD_VALUES = {
    "position": 3,
    "event_id": "f6b925a9-9d3c-57e5-9921-7711e46edfd8",
    "type": "InvoiceVoided",
    "schema_version": 2,
    "recorded_at": "2024-04-01T02:03:04.000006Z",
    "principal": "station-s2",
    "subject": "2024410400000002",
    "payload": {**envelope()["payload"], "amount_fen": 60_000_001},
    "prev_hash": GENESIS_HASH,
}


def test_every_hashed_envelope_field_has_a_changed_value_under_test() -> None:
    assert set(CHANGED_FIELD_VALUES) == set(ENVELOPE_FIELDS) - {"hash"}


@pytest.mark.parametrize("field", sorted(CHANGED_FIELD_VALUES))
def test_changing_any_envelope_field_changes_the_entry_hash(field: str) -> None:
    changed = envelope(**{field: CHANGED_FIELD_VALUES[field]})

    assert entry_hash(PREV, changed) != entry_hash(PREV, envelope())


@pytest.mark.parametrize(
    "payload_change",
    [
        {"amount_fen": 60_000_001},
        {"invoice_no": "INV-0002"},
        {"issued_on": "2024-04-02"},
        {"extra": None},
    ],
)
def test_changing_anything_in_the_payload_changes_the_entry_hash(
    payload_change: dict[str, Any],
) -> None:
    changed = envelope(payload={**envelope()["payload"], **payload_change})

    assert entry_hash(PREV, changed) != entry_hash(PREV, envelope())


def test_a_number_and_its_string_hash_differently() -> None:
    assert entry_hash(PREV, envelope(position="2")) != entry_hash(PREV, envelope())


def test_the_previous_hash_is_part_of_the_entry_hash() -> None:
    other_prev = hashlib.sha256(b"another entry before").hexdigest()

    assert entry_hash(other_prev, envelope()) != entry_hash(PREV, envelope())
    assert entry_hash(GENESIS_HASH, envelope()) != entry_hash(PREV, envelope())


@given(json_values, json_values)
def test_different_payloads_never_share_an_entry_hash(a: Any, b: Any) -> None:
    if canonical_bytes(a) != canonical_bytes(b):
        assert entry_hash(PREV, envelope(payload=a)) != entry_hash(PREV, envelope(payload=b))


def test_an_entry_hash_is_64_lower_case_hex_digits() -> None:
    digest = entry_hash(PREV, envelope())

    assert len(digest) == 64
    assert digest == digest.lower()
    bytes.fromhex(digest)
