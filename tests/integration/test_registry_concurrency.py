"""Many writers at once, on SQLite and PostgreSQL: nothing lost, no rule broken, one chain.

Two Registry instances on one database stand for two server processes: each has its own
group-commit writer, so they race each other through the database.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text

from services.common.envelope import GENESIS_HASH
from services.registry.application import Registry
from services.registry.commands import Command, Principal
from tests.support.answers import Answer, answered
from tests.support.parties import LOCAL_ENTERPRISE, UNIVERSITY

STATION = Principal("station-s1", "station", "S1")
CONTRACT_FEN = 120_000_000  # 1,200,000.00 yuan
TENTH_FEN = CONTRACT_FEN // 10
ANSWER_TIMEOUT = 120


@contextmanager
def registries(url: str, count: int) -> Iterator[list[Registry]]:
    """``count`` started registries on one database, each with its own writer; all closed after."""
    with ExitStack() as stack:
        opened = []
        for _ in range(count):
            registry = Registry(url)
            stack.callback(registry.close)
            registry.start()
            opened.append(registry)
        yield opened


def register(registry: Registry, registration_no: str) -> None:
    args: dict[str, Any] = {
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
        "contract_amount_fen": CONTRACT_FEN,
        "technology_amount_fen": CONTRACT_FEN,
        "related_party": False,
        "certificate_no": None,
    }
    registry.submit(STATION, [Command("register_contract", args)]).result(ANSWER_TIMEOUT)


def invoice(registration_no: str, invoice_no: str, amount_fen: int = TENTH_FEN) -> Command:
    return Command(
        "record_invoice",
        {
            "registration_no": registration_no,
            "invoice_no": invoice_no,
            "issued_on": "2024-04-01",
            "amount_fen": amount_fen,
            "issuer_credit_code": UNIVERSITY["credit_code"],
            "recipient_credit_code": LOCAL_ENTERPRISE["credit_code"],
        },
    )


def submit_all_at_once(
    targets: list[tuple[Registry, list[Command]]],
) -> list[Answer]:
    """Submit each (registry, commands) from its own thread, all released together."""
    start = threading.Barrier(len(targets))

    def one(target: tuple[Registry, list[Command]]) -> Answer:
        registry, commands = target
        start.wait()
        future = registry.submit(STATION, commands, batch=len(commands) > 1)
        return answered(future, ANSWER_TIMEOUT)

    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(one, targets))


def whole_log(registry: Registry) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = registry.read_log(after, 50)
        events += page["events"]
        if not page["events"]:
            return events
        after = page["next_after"]


def assert_one_intact_chain(registry: Registry, expected_entries: int) -> list[dict[str, Any]]:
    """The log holds exactly the expected entries, in increasing positions, each linked to the
    one before, and verify() agrees."""
    log = whole_log(registry)
    assert len(log) == expected_entries
    positions = [e["position"] for e in log]
    assert all(a < b for a, b in pairwise(positions)), positions
    assert log[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(log))
    verdict = list(registry.verify())[-1]
    assert verdict["ok"] is True, verdict
    assert verdict["checked"] == expected_entries
    assert verdict["head_hash"] == log[-1]["hash"]
    assert registry.head() == positions[-1]
    return log


def assert_every_accepted_event_is_in_the_log(
    answers: list[Answer], log: list[dict[str, Any]]
) -> None:
    by_position = {e["position"]: e for e in log}
    for answer in answers:
        if answer.status == 201:
            entry = by_position[answer.body["position"]]
            assert entry["event_id"] == answer.body["event_id"]
            assert entry["hash"] == answer.body["hash"]


@pytest.mark.parametrize("writers", [1, 2], ids=["one-registry", "two-registries"])
def test_concurrent_invoices_on_one_contract_stop_exactly_at_the_contract_amount(
    database_url: str, writers: int
) -> None:
    with registries(database_url, writers) as regs:
        register(regs[0], "R1")
        targets = [(regs[i % writers], [invoice("R1", f"INV-{i:02d}")]) for i in range(40)]

        answers = submit_all_at_once(targets)

        assert Counter(a.status for a in answers) == {201: 10, 422: 30}, answers
        refused = [a.body for a in answers if a.status == 422]
        assert all(body["field"] == "amount" for body in refused)
        for registry in regs:
            contract = registry.contract("R1", STATION)
            assert contract["invoiced_total"] == "1200000.00"
            assert len(contract["invoices"]) == 10
            assert contract["version"] == 11
        accepted = {
            commands[0].args["invoice_no"]
            for (_, commands), answer in zip(targets, answers, strict=True)
            if answer.status == 201
        }
        assert {i["invoice_no"] for i in regs[0].contract("R1", STATION)["invoices"]} == accepted
        log = assert_one_intact_chain(regs[-1], expected_entries=11)
        assert_every_accepted_event_is_in_the_log(answers, log)


@pytest.mark.parametrize("writers", [1, 2], ids=["one-registry", "two-registries"])
def test_an_invoice_number_posted_concurrently_to_two_contracts_is_stored_once(
    database_url: str, writers: int
) -> None:
    with registries(database_url, writers) as regs:
        register(regs[0], "R1")
        register(regs[-1], "R2")
        rounds = 12
        targets = []
        for n in range(rounds):
            # Each number goes to both contracts, through different writers when there are two.
            targets.append((regs[0], [invoice("R1", f"INV-{n:02d}", 1)]))
            targets.append((regs[-1], [invoice("R2", f"INV-{n:02d}", 1)]))

        answers = submit_all_at_once(targets)

        for n in range(rounds):
            pair = answers[2 * n : 2 * n + 2]
            assert sorted(a.status for a in pair) == [201, 409], (n, pair)
            conflict = next(a for a in pair if a.status == 409)
            assert conflict.body["field"] == "invoice_no"
        invoices = [
            i["invoice_no"]
            for no in ("R1", "R2")
            for i in regs[0].contract(no, STATION)["invoices"]
        ]
        assert sorted(invoices) == [f"INV-{n:02d}" for n in range(rounds)]
        log = assert_one_intact_chain(regs[0], expected_entries=2 + rounds)
        assert_every_accepted_event_is_in_the_log(answers, log)


@pytest.mark.parametrize("writers", [1, 2], ids=["one-registry", "two-registries"])
def test_many_concurrent_writers_leave_one_gapless_chain_in_increasing_positions(
    database_url: str, writers: int
) -> None:
    with registries(database_url, writers) as regs:
        contracts = [f"R{i}" for i in range(4)]
        targets: list[tuple[Registry, list[Command]]] = []
        for i, no in enumerate(contracts):
            register(regs[i % writers], no)
        for k in range(48):
            no = contracts[k % len(contracts)]
            targets.append((regs[k % writers], [invoice(no, f"INV-{k:03d}", 1_000)]))
        # Batches of three events each, stored together or not at all.
        for k in range(8):
            no = contracts[k % len(contracts)]
            batch = [invoice(no, f"BATCH-{k}-{j}", 1_000) for j in range(3)]
            targets.append((regs[(k + 1) % writers], batch))

        answers = submit_all_at_once(targets)

        assert all(a.status == 201 for a in answers), [a for a in answers if a.status != 201]
        assert all(a.body["count"] == 3 for a in answers[48:])
        log = assert_one_intact_chain(regs[0], expected_entries=4 + 48 + 8 * 3)
        assert_every_accepted_event_is_in_the_log(answers[:48], log)
        for registry in regs:
            total = sum(len(registry.contract(no, STATION)["invoices"]) for no in contracts)
            assert total == 48 + 8 * 3


# -- a group that refuses one submission and then loses a race (PostgreSQL) -------------------


def wait_for_the_writer_to_block(watch: Connection, statement: str, timeout: float = 20) -> None:
    """Wait until a session of this database waits on a lock while running ``statement``."""
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE :statement"
    )
    while time.monotonic() < deadline:
        if watch.execute(query, {"statement": f"{statement}%"}).scalar_one():
            return
        time.sleep(0.01)
    raise AssertionError("the registry's writer never blocked")


def test_a_refused_submission_whose_group_then_loses_a_race_is_answered_once(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite writers hold BEGIN IMMEDIATE from the start: no race to lose")
    outside = create_engine(database_url)
    try:
        with registries(database_url, 1) as (registry,):
            register(registry, "R1")
            register(registry, "R2")
            with (
                outside.connect() as other_process,
                outside.connect() as table_lock,
                outside.connect() as watch,
            ):
                watch.execution_options(isolation_level="AUTOCOMMIT")
                # Another server process is about to record INV-X on R2: claimed (under the
                # number's key, inv-x), not committed.
                other_process.execute(
                    text(
                        "INSERT INTO registry_claims (kind, key, registration_no) "
                        "VALUES ('invoice', 'inv-x', 'R2')"
                    )
                )
                # Hold the writer on its first submission so the next two form one group.
                table_lock.execute(text("LOCK TABLE registry_events IN EXCLUSIVE MODE"))
                first = registry.submit(STATION, [invoice("R1", "INV-0")])
                wait_for_the_writer_to_block(watch, "LOCK TABLE registry_events")
                refused = registry.submit(STATION, [invoice("R1", "INV-BIG", CONTRACT_FEN + 1)])
                racing = registry.submit(STATION, [invoice("R1", "INV-X")])
                table_lock.commit()
                first.result(ANSWER_TIMEOUT)
                # The group [refused, racing]: racing blocks on the claim, refused waits for
                # the group's commit to be answered.
                wait_for_the_writer_to_block(watch, "INSERT INTO %registry_claims")
                assert not refused.done()
                other_process.commit()

                outcome = answered(racing, ANSWER_TIMEOUT)
                # The group lost the race; each was run again alone and answered once.
                assert answered(refused, ANSWER_TIMEOUT).status == 422

            assert outcome.status == 409, outcome
            assert outcome.body["field"] == "invoice_no"
            stored = registry.contract("R1", STATION)["invoices"]
            assert [i["invoice_no"] for i in stored] == ["INV-0"]
            assert_one_intact_chain(registry, expected_entries=3)
    finally:
        outside.dispose()
