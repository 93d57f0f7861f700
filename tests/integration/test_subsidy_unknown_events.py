"""A log entry of an event type the subsidy service does not know (a newer registry's), or of a
version of a type newer than it reads, is skipped and counted where the service says its health,
and the entries around it still apply."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.registry.log import chain_envelopes
from services.subsidy.projector import Projector
from services.subsidy.store import EntryStore
from tests.conftest import Tokens
from tests.integration.test_subsidy_api import finance_client, served
from tests.support.policy_facts import contract, contract_events, numbered
from tests.support.stack import recompute

UNKNOWN = "ContractInspected"  # no registry of today logs it


class LogFeed:
    """The registry feed's answers over a fixed log, pages of ``size`` entries."""

    def __init__(self, envelopes: list[dict[str, Any]], size: int = 3) -> None:
        self._envelopes = envelopes
        self._size = size

    def page(self, after: int, limit: int = 5000) -> dict[str, Any]:
        events = [e for e in self._envelopes if e["position"] > after][: min(limit, self._size)]
        head = self._envelopes[-1]["position"]
        return {
            "events": events,
            "next_after": events[-1]["position"] if events else after,
            "head": head,
        }

    def head(self) -> int:
        return int(self._envelopes[-1]["position"])


def _no_kafka() -> Any:
    raise AssertionError("catching up from the feed needs no Kafka")


def _skipped_metric(kind: str) -> float:
    return REGISTRY.get_sample_value("tcr_consumer_skipped_events_total", {"type": kind}) or 0.0


# (type, version, what the skipped entry is counted as)
UNREAD = {
    "an unknown type": (UNKNOWN, 1, UNKNOWN),
    "a newer version of a known type": ("TransferProofRecorded", 3, "TransferProofRecorded v3"),
}


@pytest.mark.parametrize("unread", list(UNREAD))
def test_an_entry_of_an_unknown_type_or_version_is_skipped_and_counted_while_the_known_ones_apply(
    database_url: str, tokens: Tokens, tmp_path: Path, unread: str
) -> None:
    kind, version, counted_as = UNREAD[unread]
    first = contract(
        "2023410400000001", registered_on=date(2023, 2, 1), settled=[(date(2023, 5, 1), 300_000_00)]
    )
    second = contract(
        "2023410400000002", registered_on=date(2023, 3, 1), settled=[(date(2023, 6, 1), 500_000_00)]
    )
    # Were it read, a payment of 2023 that would change what the first contract earns.
    newer = (kind, {"registration_no": first.registration_no, "serial_no": "BANK-9",
                    "paid_on": "2023-07-01", "amount_fen": 200_000_00})  # fmt: skip
    known = contract_events(first) + contract_events(second)
    log = numbered([*known[:2], newer, *known[2:]])
    log[2]["schema_version"] = version
    log = list(chain_envelopes(log))
    before = _skipped_metric(counted_as)

    store = EntryStore(database_url)
    try:
        projector = Projector(store, LogFeed(log), _no_kafka)  # type: ignore[arg-type]
        assert projector.catch_up() == len(log)
    finally:
        store.close()

    expected = recompute(numbered(known))
    assert expected[2023], "the known entries earn something to compare"
    with finance_client(database_url, tokens) as client:
        health = client.get("/v1/health").json()
        assert (health["applied_position"], health["skipped_events"]) == (len(log), 1)
        for year, entitlements in expected.items():
            params = {"year": year, "include": "claims"}
            response = client.get("/v1/entitlements", params=params)
            assert served(response.json()) == entitlements, year
    assert _skipped_metric(counted_as) == before + 1
