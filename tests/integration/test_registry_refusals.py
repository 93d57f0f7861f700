"""A refusal inside the writer costs only the refused submission (PostgreSQL).

The writer runs a group of submissions against one unit of work. A submission that breaks a
rule is undone in memory; the rest of the group is neither run again nor read again from the
store, and sees exactly the state the accepted submissions made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from services.registry import commands
from services.registry.application import Registry
from services.registry.commands import Command
from tests.integration.test_registry_concurrency import (
    ANSWER_TIMEOUT,
    CONTRACT_FEN,
    STATION,
    assert_one_intact_chain,
    invoice,
    register,
    registries,
    wait_for_the_writer_to_block,
)
from tests.support.answers import Answer, answered
from tests.support.databases import fresh_postgres_database
from tests.support.parties import LOCAL_ENTERPRISE, UNIVERSITY

Submit = Callable[[list[Command]], "Future[dict[str, Any]]"]


@pytest.fixture
def database_url() -> Iterator[str]:
    """PostgreSQL only: the writer is held on its table lock to make one group."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    with registries(database_url, 1) as (started,):
        register(started, "R1")
        yield started


def one_group(
    registry: Registry, database_url: str, submissions: list[list[Command]]
) -> list[Answer]:
    """Submit ``submissions`` so that the writer runs them as one group, and their answers."""
    outside = create_engine(database_url)
    try:
        with outside.connect() as table_lock, outside.connect() as watch:
            watch.execution_options(isolation_level="AUTOCOMMIT")
            table_lock.execute(text("LOCK TABLE registry_events IN EXCLUSIVE MODE"))
            first = registry.submit(STATION, [invoice("R1", "INV-HOLD")])
            wait_for_the_writer_to_block(watch, "LOCK TABLE registry_events")
            futures = [registry.submit(STATION, cmds, batch=len(cmds) > 1) for cmds in submissions]
            table_lock.commit()
            first.result(ANSWER_TIMEOUT)
            return [answered(f, ANSWER_TIMEOUT) for f in futures]
    finally:
        outside.dispose()


def amend_title(registration_no: str, title: str) -> Command:
    return Command(
        "amend_contract",
        {
            "registration_no": registration_no,
            "amended_on": "2024-05-01",
            "reason": "补充协议",
            "changes": {"title": title},
        },
    )


def registration(registration_no: str) -> Command:
    args: dict[str, Any] = {
        "registration_no": registration_no,
        "station_id": "S1",
        "registered_on": "2024-03-01",
        "signed_on": "2024-02-01",
        "title": "尼龙66改性材料技术转让",
        "contract_type": "transfer",
        "domain": "new materials",
        "seller": UNIVERSITY,
        "buyer": LOCAL_ENTERPRISE,
        "brokers": [],
        "contract_amount_fen": CONTRACT_FEN,
        "technology_amount_fen": CONTRACT_FEN,
        "related_party": False,
        "certificate_no": None,
    }
    return Command("register_contract", args)


def test_refused_neighbours_cost_a_group_nothing_each_accepted_command_runs_once(
    registry: Registry, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: Counter[str] = Counter()
    record_invoice = commands.HANDLERS["record_invoice"]

    def counted(uow: Any, who: Any, args: dict[str, Any]) -> Any:
        runs[args["invoice_no"]] += 1
        return record_invoice(uow, who, args)

    monkeypatch.setitem(commands.HANDLERS, "record_invoice", counted)
    group: list[list[Command]] = []
    for i in range(8):
        group.append([invoice("R1", f"INV-{i}", CONTRACT_FEN // 100)])
        group.append([invoice(f"UNKNOWN-{i}", f"NOPE-{i}")])  # 404
    group.append([invoice("R1", "INV-0", CONTRACT_FEN // 100)])  # 409: in this group already
    group.append([invoice("R1", "INV-TOO-BIG", CONTRACT_FEN)])  # 422: over the contract amount

    answers = one_group(registry, database_url, group)

    assert [a.status for a in answers] == [201, 404] * 8 + [409, 422]
    # Every submission's command ran once: none again for its neighbours' refusals.
    del runs["INV-HOLD"]  # the submission that holds the writer, before the group
    assert runs == Counter(cmd.args["invoice_no"] for cmds in group for cmd in cmds)
    accepted = {f"INV-{i}" for i in range(8)}
    invoices = [i["invoice_no"] for i in registry.contract("R1", STATION)["invoices"]]
    assert invoices == ["INV-HOLD", *sorted(accepted)]
    assert_one_intact_chain(registry, expected_entries=1 + 1 + 8)


def test_a_refused_batch_is_undone_alone_and_its_neighbours_changes_to_the_contract_stand(
    registry: Registry, database_url: str
) -> None:
    answers = one_group(
        registry,
        database_url,
        [
            [amend_title("R1", "巡检机器人(补充)")],
            # Accepted first command on R1, then a refusal: the whole batch is undone.
            [invoice("R1", "INV-B1"), invoice("UNKNOWN", "INV-B2")],
            [invoice("R1", "INV-C")],
            # A contract registered and refused within one batch is forgotten.
            [registration("R2"), invoice("R2", "INV-R2", CONTRACT_FEN + 1)],
            [invoice("R2", "INV-R2-LATER")],
        ],
    )

    assert [a.status for a in answers] == [201, 404, 201, 422, 404]
    assert answers[1].body["index"] == 1
    assert answers[3].body["index"] == 1
    contract = registry.contract("R1", STATION)
    assert contract["title"] == "巡检机器人(补充)"
    assert [i["invoice_no"] for i in contract["invoices"]] == ["INV-HOLD", "INV-C"]
    assert contract["version"] == 4  # registered, INV-HOLD, amended, INV-C
    log = assert_one_intact_chain(registry, expected_entries=4)
    assert [e["type"] for e in log[-2:]] == ["ContractAmended", "InvoiceRecorded"]
    # The undone batch claimed nothing, and R2 was never registered.
    assert answered(registry.submit(STATION, [invoice("R1", "INV-B1")])).status == 201
    assert answered(registry.submit(STATION, [registration("R2")])).status == 201
