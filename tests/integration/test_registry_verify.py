"""Tampering with the stored log behind the registry's back is found, at the first bad entry.

The log is written through the registry, then altered with plain SQL on a separate connection,
as someone with database access would: ``verify()`` and ``tcr registry verify`` must name the
first position whose stored event no longer matches the hash chain.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text

from services.cli import main
from services.registry.application import Registry
from services.registry.commands import Command, Principal
from tests.support.parties import LOCAL_ENTERPRISE, UNIVERSITY

STATION = Principal("station-s1", "station", "S1")
SELLER = UNIVERSITY["credit_code"]
BUYER = LOCAL_ENTERPRISE["credit_code"]


def contract(registration_no: str) -> Command:
    return Command(
        "register_contract",
        {
            "registration_no": registration_no,
            "station_id": "S1",
            "registered_on": "2024-03-01",
            "signed_on": "2024-02-01",
            "title": "煤矿智能巡检机器人技术开发",
            "contract_type": "development",
            "domain": "advanced manufacturing",
            "seller": UNIVERSITY,
            "buyer": LOCAL_ENTERPRISE,
            "brokers": [],
            "contract_amount_fen": 120_000_000,
            "technology_amount_fen": 100_000_000,
            "related_party": False,
            "certificate_no": None,
        },
    )


def invoice(registration_no: str, invoice_no: str, amount_fen: int) -> Command:
    return Command(
        "record_invoice",
        {
            "registration_no": registration_no,
            "invoice_no": invoice_no,
            "issued_on": "2024-04-01",
            "amount_fen": amount_fen,
            "issuer_credit_code": SELLER,
            "recipient_credit_code": BUYER,
        },
    )


def transfer_proof(registration_no: str, serial_no: str, amount_fen: int) -> Command:
    return Command(
        "record_transfer_proof",
        {
            "registration_no": registration_no,
            "serial_no": serial_no,
            "paid_on": "2024-04-15",
            "amount_fen": amount_fen,
            "payer_credit_code": BUYER,
            "payee_credit_code": SELLER,
            "bank": "中国银行平顶山分行",
            "currency": "CNY",
        },
    )


# Positions 1..6 of the log written by the `stored_log` fixture.
LOG = [
    contract("R1"),
    invoice("R1", "INV-1", 60_000_000),
    transfer_proof("R1", "BANK-1", 60_000_000),
    contract("R2"),
    invoice("R2", "INV-2", 60_000_000),
    invoice("R1", "INV-3", 10_000_000),
]


@pytest.fixture
def stored_log(database_url: str) -> str:
    """A database holding the six events of LOG at positions 1..6, the registry closed."""
    registry = Registry(database_url)
    try:
        registry.start()
        for position, command in enumerate(LOG, start=1):
            assert registry.submit(STATION, [command]).result(60)["position"] == position
    finally:
        registry.close()
    return database_url


@pytest.fixture
def behind_the_back(stored_log: str) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """Run SQL on the registry's database through a connection of its own, committed at once."""
    engine = create_engine(stored_log)

    def run(statement: str, params: dict[str, Any] | None = None) -> None:
        with engine.begin() as conn:
            conn.execute(text(statement), params or {})

    try:
        yield run
    finally:
        engine.dispose()


def verdict(url: str) -> dict[str, Any]:
    registry = Registry(url)
    try:
        steps = list(registry.verify())
    finally:
        registry.close()
    assert all("ok" not in step for step in steps[:-1])
    return steps[-1]


def state_of(conn: Connection, position: int) -> bytes:
    state = conn.execute(
        text("SELECT state FROM registry_events WHERE id = :id"), {"id": position}
    ).scalar_one()
    return bytes(state)


def set_state(conn: Connection, position: int, state: bytes) -> None:
    conn.execute(
        text("UPDATE registry_events SET state = :state WHERE id = :id"),
        {"state": state, "id": position},
    )


# Each tampering and the first position it breaks.
def raise_an_invoice_amount(url: str) -> int:
    with _connection(url) as conn:
        state = state_of(conn, 2)
        assert b'"amount_fen":60000000' in state
        set_state(conn, 2, state.replace(b'"amount_fen":60000000', b'"amount_fen":90000000'))
    return 2


def change_the_buyer_name(url: str) -> int:
    with _connection(url) as conn:
        state = state_of(conn, 4)
        name = LOCAL_ENTERPRISE["name"].encode()
        assert name in state
        set_state(conn, 4, state.replace(name, "某某有限公司".encode()))
    return 4


def delete_an_event(url: str) -> int:
    with _connection(url) as conn:
        conn.execute(text("DELETE FROM registry_events WHERE id = 3"))
    return 3


def delete_a_chain_entry(url: str) -> int:
    with _connection(url) as conn:
        conn.execute(text("DELETE FROM registry_chain WHERE position = 3"))
    return 3


def overwrite_a_chain_hash(url: str) -> int:
    with _connection(url) as conn:
        conn.execute(
            text("UPDATE registry_chain SET hash = :h WHERE position = 4"), {"h": "a" * 64}
        )
    return 4


def overwrite_a_chain_prev_hash(url: str) -> int:
    with _connection(url) as conn:
        conn.execute(
            text("UPDATE registry_chain SET prev_hash = :h WHERE position = 5"), {"h": "b" * 64}
        )
    return 5


def swap_two_events_states(url: str) -> int:
    with _connection(url) as conn:
        second, fifth = state_of(conn, 2), state_of(conn, 5)
        set_state(conn, 2, fifth)
        set_state(conn, 5, second)
    return 2


def swap_two_events_of_different_types(url: str) -> int:
    with _connection(url) as conn:
        second, third = state_of(conn, 2), state_of(conn, 3)
        set_state(conn, 2, third)
        set_state(conn, 3, second)
    return 2


def move_an_event_to_another_contract(url: str) -> int:
    with _connection(url) as conn:
        r2 = conn.execute(text("SELECT originator_id FROM registry_events WHERE id = 4")).scalar()
        conn.execute(text("UPDATE registry_events SET originator_id = :o WHERE id = 6"), {"o": r2})
    return 6


def change_an_event_type(url: str) -> int:
    with _connection(url) as conn:
        conn.execute(
            text(
                "UPDATE registry_events SET topic = "
                "'services.registry.domain:Contract.TransferProofRecorded' WHERE id = 2"
            )
        )
    return 2


def point_a_registration_at_another_class(url: str) -> int:
    # The created event's originator_topic picks the class replay builds; not in the envelope.
    with _connection(url) as conn:
        state = state_of(conn, 1)
        topic = b'"originator_topic":"services.registry.domain:Contract"'
        assert topic in state
        set_state(conn, 1, state.replace(topic, topic.replace(b"Contract", b"Broker")))
    return 1


def move_an_event_class_to_another_module(url: str) -> int:
    # Same event type name, so the same envelope; but replay resolves the topic's module.
    with _connection(url) as conn:
        conn.execute(
            text("UPDATE registry_events SET topic = :t WHERE id = 2"),
            {"t": "elsewhere:Contract.InvoiceRecorded"},
        )
    return 2


def corrupt_an_event_beyond_decoding(url: str) -> int:
    with _connection(url) as conn:
        set_state(conn, 5, b"{not json")
    return 5


TAMPERINGS: dict[str, Callable[[str], int]] = {
    f.__name__: f
    for f in (
        raise_an_invoice_amount,
        change_the_buyer_name,
        delete_an_event,
        delete_a_chain_entry,
        overwrite_a_chain_hash,
        overwrite_a_chain_prev_hash,
        swap_two_events_states,
        swap_two_events_of_different_types,
        move_an_event_to_another_contract,
        change_an_event_type,
        corrupt_an_event_beyond_decoding,
        point_a_registration_at_another_class,
        move_an_event_class_to_another_module,
    )
}


class _connection:
    """A committed-on-exit connection to the registry's database that bypasses the registry."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url)

    def __enter__(self) -> Connection:
        self._begin = self._engine.begin()
        return self._begin.__enter__()

    def __exit__(self, *exc: Any) -> None:
        try:
            self._begin.__exit__(*exc)
        finally:
            self._engine.dispose()


def run_cli(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["registry", "verify", "--database-url", url])
    return code, capsys.readouterr().out


# -- verify() ---------------------------------------------------------------------------------


def test_an_intact_log_verifies(stored_log: str) -> None:
    result = verdict(stored_log)

    assert result["ok"] is True
    assert result["checked"] == len(LOG)


def test_the_head_hash_verify_reports_is_the_last_entrys_hash(stored_log: str) -> None:
    registry = Registry(stored_log)
    try:
        last = registry.read_log(len(LOG) - 1, 1)["events"][-1]
        result = list(registry.verify())[-1]
    finally:
        registry.close()

    assert result["head_hash"] == last["hash"]


def test_verify_reports_progress_before_its_verdict(stored_log: str) -> None:
    registry = Registry(stored_log)
    try:
        steps = list(registry.verify(batch_size=2))
    finally:
        registry.close()

    assert steps[:-1] == [{"checked": 2}, {"checked": 4}, {"checked": 6}]
    assert steps[-1]["ok"] is True


@pytest.mark.parametrize("tamper", sorted(TAMPERINGS))
def test_tampering_with_the_stored_log_is_found_at_the_first_affected_position(
    stored_log: str, tamper: str
) -> None:
    position = TAMPERINGS[tamper](stored_log)

    result = verdict(stored_log)

    assert result["ok"] is False
    assert result["position"] == position, result
    assert result["checked"] == position - 1
    assert result["problem"]


def test_a_changed_amount_is_reported_as_not_matching_its_hash(stored_log: str) -> None:
    raise_an_invoice_amount(stored_log)

    assert verdict(stored_log)["problem"] == "the stored event does not match its hash"


def test_a_deleted_event_is_reported_as_missing(stored_log: str) -> None:
    delete_an_event(stored_log)

    assert verdict(stored_log)["problem"] == "the chain records an entry whose event is missing"


def test_a_deleted_chain_entry_is_reported_as_missing(stored_log: str) -> None:
    delete_a_chain_entry(stored_log)

    assert verdict(stored_log)["problem"] == "the event has no chain entry"


def test_a_tampered_event_is_still_found_after_the_registry_appends_more(
    stored_log: str,
) -> None:
    raise_an_invoice_amount(stored_log)
    registry = Registry(stored_log)
    try:
        registry.start()
        registry.submit(STATION, [invoice("R2", "INV-9", 1)]).result(60)
        result = list(registry.verify())[-1]
    finally:
        registry.close()

    assert (result["ok"], result["position"]) == (False, 2)


@pytest.mark.parametrize(
    "tamper", ["point_a_registration_at_another_class", "move_an_event_class_to_another_module"]
)
def test_what_replay_reads_outside_the_envelope_is_covered_by_verification(
    stored_log: str, tamper: str
) -> None:
    position = TAMPERINGS[tamper](stored_log)
    registry = Registry(stored_log)
    try:
        with pytest.raises(Exception):  # noqa: B017 - any failure to replay shows the change
            registry.contract("R1", STATION)
    finally:
        registry.close()

    result = verdict(stored_log)

    assert (result["ok"], result["position"]) == (False, position)


def test_verify_closes_its_cursor_when_it_finds_a_break(
    stored_log: str,
) -> None:
    raise_an_invoice_amount(stored_log)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert verdict(stored_log)["ok"] is False
        gc.collect()

    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# -- tcr registry verify ------------------------------------------------------------------------


def test_the_cli_exits_0_on_an_intact_log(
    stored_log: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(stored_log, capsys)

    assert code == 0
    assert "chain intact: 6 entries" in out


@pytest.mark.parametrize(
    "tamper",
    [
        "raise_an_invoice_amount",
        "delete_an_event",
        "delete_a_chain_entry",
        "swap_two_events_states",
    ],
)
def test_the_cli_exits_1_naming_the_first_tampered_position(
    stored_log: str, tamper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    position = TAMPERINGS[tamper](stored_log)

    code, out = run_cli(stored_log, capsys)

    assert code == 1
    assert f"chain BROKEN at position {position}:" in out
