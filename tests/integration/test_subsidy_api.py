"""The finance API in-process over a subsidy store filled with a real registry's log, and the
store's own rules: each position once, and an applied head that never passes a hole."""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from services.common.envelope import GENESIS_HASH, entry_hash
from services.common.policy.present import REASON_ZH
from services.registry.application import Registry
from services.subsidy.api.models import RevisionsPublic
from services.subsidy.store import EntryStore
from services.subsidy.tables import head as head_table
from services.subsidy.tables import log as applied_log
from tests.conftest import Tokens, make_tokens
from tests.support.databases import fresh_postgres_database
from tests.support.finance import finance_client
from tests.support.policy_facts import LOCAL_NEW_RD, OTHER_LOCAL_FIRM
from tests.support.stack import (
    contract_commands,
    correction_commands,
    open_at_once,
    read_all,
    recompute,
    registration_no,
    setup_commands,
    submit,
)

LATE_INVOICED = 3  # contract TC000003: its January 2023 payment is invoiced only in phase two
CANCELLED = 4  # contract TC000004: an output contract of 2023, cancelled in phase two
YEAR = 2023


@dataclass
class History:
    envelopes: list[dict[str, Any]]
    first_phase_end: dict[str, Any]  # the last envelope recorded before the corrections

    @property
    def head(self) -> int:
        return int(self.envelopes[-1]["position"])

    def known_at(self, recorded_at: str) -> list[dict[str, Any]]:
        return [e for e in self.envelopes if e["recorded_at"] <= recorded_at]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """A registry's log: contracts with evidence, then a late invoice and a cancellation."""
    registry = Registry(f"sqlite:///{tmp_path_factory.mktemp('registry') / 'registry.db'}")
    registry.start()
    try:
        submit(registry, setup_commands() + contract_commands(0, 21))
        first_phase_end = read_all(registry)[-1]
        time.sleep(0.01)  # the corrections are recorded strictly later
        submit(registry, correction_commands([LATE_INVOICED, CANCELLED]))
        return History(read_all(registry), first_phase_end)
    finally:
        registry.close()


@pytest.fixture(scope="module")
def module_tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    return make_tokens(tmp_path_factory.mktemp("tokens"))


@pytest.fixture(scope="module")
def client(
    history: History, module_tokens: Tokens, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The finance API over a store holding the whole history, as finance."""
    url = f"sqlite:///{tmp_path_factory.mktemp('subsidy') / 'subsidy.db'}"
    store = EntryStore(url)
    try:
        store.add(history.envelopes)
    finally:
        store.close()
    with finance_client(url, module_tokens) as test_client:
        yield test_client


def served(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (e["category"], e["beneficiary"]): {
            "turnover": e["turnover"],
            "gross": e["gross"],
            "entitlement": e["entitlement"],
            "contracts": sorted(c["registration_no"] for c in e["contracts"]),
            "excluded": sorted((x["registration_no"], x["reason"]) for x in e["excluded"]),
        }
        for e in body["entitlements"]
    }


# -- who may read ------------------------------------------------------------------------------


def test_entitlements_need_a_bearer_token(client: TestClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer not-a-token"}):
        response = client.get("/v1/entitlements", params={"year": YEAR}, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("role", ["station", "bureau"])
@pytest.mark.parametrize(
    "path", ["/v1/entitlements", "/v1/entitlements.csv", "/v1/revisions", "/v1/entitlements/X"]
)
def test_stations_and_the_bureau_may_not_read_entitlements(
    client: TestClient, module_tokens: Tokens, role: str, path: str
) -> None:
    params = {"year": YEAR, "since": "2025-01-01T00:00:00Z"}
    response = client.get(path, params=params, headers=module_tokens.header(role))
    assert response.status_code == 403, response.text


def test_auditors_read_what_finance_reads(client: TestClient, module_tokens: Tokens) -> None:
    as_finance = client.get("/v1/entitlements", params={"year": YEAR})
    as_auditor = client.get(
        "/v1/entitlements", params={"year": YEAR}, headers=module_tokens.header("auditor")
    )
    assert as_auditor.status_code == 200
    assert as_auditor.json() == as_finance.json()


# -- answers -----------------------------------------------------------------------------------


def test_every_year_in_force_serves_what_the_log_entitles(
    client: TestClient, history: History
) -> None:
    expected = recompute(history.envelopes)
    for year in range(2020, 2026):
        response = client.get("/v1/entitlements", params={"year": year, "include": "claims"})
        assert response.status_code == 200, response.text
        assert response.json()["position"] == history.head
        assert served(response.json()) == expected[year]
    assert any(expected.values()), "the history entitles nobody: the test proves nothing"


def test_one_category_lists_only_its_entitlements(client: TestClient, history: History) -> None:
    expected = recompute(history.envelopes)[YEAR]
    for category in ("absorption", "output", "broker"):
        params = {"year": YEAR, "category": category, "include": "claims"}
        body = client.get("/v1/entitlements", params=params).json()
        assert served(body) == {k: v for k, v in expected.items() if k[0] == category}


@pytest.mark.parametrize("year", [2019, 2026, 1999])
def test_a_year_outside_the_policy_is_not_found(client: TestClient, year: int) -> None:
    response = client.get("/v1/entitlements", params={"year": year})
    assert response.status_code == 404, response.text
    assert response.json()["field"] == "year"
    assert client.get("/v1/entitlements.csv", params={"year": year}).status_code == 404


def test_a_year_in_force_with_nothing_recorded_is_an_empty_list(
    module_tokens: Tokens, tmp_path: Path
) -> None:
    with finance_client(f"sqlite:///{tmp_path / 'empty.db'}", module_tokens) as empty:
        response = empty.get("/v1/entitlements", params={"year": 2020})
    assert response.status_code == 200, response.text
    assert response.json()["entitlements"] == []
    assert response.json()["position"] == 0


def test_one_beneficiary_reads_its_own_entitlements(client: TestClient, history: History) -> None:
    expected = recompute(history.envelopes)[YEAR]
    code = OTHER_LOCAL_FIRM.credit_code
    response = client.get(f"/v1/entitlements/{code}", params={"year": YEAR})
    assert response.status_code == 200, response.text
    assert served(response.json()) == {k: v for k, v in expected.items() if k[1] == code}
    assert served(response.json())


def test_an_unknown_beneficiary_is_not_found(client: TestClient) -> None:
    response = client.get("/v1/entitlements/91110000MA0000999X", params={"year": YEAR})
    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"year": "twenty"},
        {"year": 1800},
        {"year": YEAR, "category": "bonus"},
        {"year": YEAR, "as_of": "yesterday"},
        {"year": YEAR, "as_of": "2025-03-31T00:00:00"},
        {"year": YEAR, "as_of": "2025-02-30"},
        {"year": YEAR, "limit": 0},
        {"year": YEAR, "limit": 10_001},
        {"year": YEAR, "cursor": "not-a-cursor"},
        {"year": YEAR, "county": "4104"},
        {"year": YEAR, "min_amount": "-5"},
        {"year": YEAR, "position": -1},
        {"year": YEAR, "position": 2**63},
        {"year": YEAR, "sort": "name"},
        {"year": YEAR, "include": "contracts"},
        {"year": YEAR, "before": "not-a-cursor"},
        {"year": YEAR, "sort": "-entitlement", "cursor": "WyJhYnNvcnB0aW9uIiwiYSJd"},
        {"year": YEAR, "cursor": "WyJhYnNvcnB0aW9uIiwiYSJd", "before": "WyJhYnNvcnB0aW9uIiwiYSJd"},
    ],
    ids=[
        "no-year",
        "word",
        "year-1800",
        "category",
        "as-of-word",
        "as-of-naive",
        "as-of-no-such-day",
        "limit-0",
        "limit-too-big",
        "cursor",
        "county",
        "min-amount",
        "position-negative",
        "position-too-big",
        "sort",
        "include",
        "before",
        "cursor-of-another-order",
        "cursor-and-before",
    ],
)
def test_bad_parameters_are_refused_with_422(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get("/v1/entitlements", params=params)
    assert response.status_code == 422, response.text


def test_revisions_refuse_an_instant_without_a_time_zone(client: TestClient) -> None:
    response = client.get("/v1/revisions", params={"year": YEAR, "since": "2025-03-31T00:00:00"})
    assert response.status_code == 422, response.text
    assert client.get("/v1/revisions", params={"year": YEAR}).status_code == 422


def test_as_of_answers_with_only_the_events_recorded_by_then(
    client: TestClient, history: History
) -> None:
    cut = history.first_phase_end["recorded_at"]  # exactly the instant of an event: included
    known = history.known_at(cut)
    assert len(known) < len(history.envelopes)

    for as_of in (cut, cut.replace("Z", "+00:00"), _in_beijing(cut)):
        params = {"year": YEAR, "as_of": as_of, "include": "claims"}
        body = client.get("/v1/entitlements", params=params).json()
        assert body["position"] == history.first_phase_end["position"]
        assert served(body) == recompute(known)[YEAR]
    assert recompute(known)[YEAR] != recompute(history.envelopes)[YEAR]


def test_as_of_before_the_first_event_knows_nothing(client: TestClient) -> None:
    body = client.get(
        "/v1/entitlements", params={"year": YEAR, "as_of": "2000-01-01T00:00:00Z"}
    ).json()
    assert body["entitlements"] == []
    assert body["position"] == 0


def test_revisions_show_before_after_and_the_late_invoice_and_cancellation_behind_them(
    client: TestClient, history: History
) -> None:
    since = history.first_phase_end["recorded_at"]
    params = {"year": YEAR, "since": since, "include": "claims"}
    response = client.get("/v1/revisions", params=params)
    assert response.status_code == 200, response.text
    body = response.json()

    before, after = recompute(history.known_at(since))[YEAR], recompute(history.envelopes)[YEAR]
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    revisions = {(r["category"], r["beneficiary"]): r for r in body["revisions"]}
    assert set(revisions) == changed
    assert body["position_before"] == history.first_phase_end["position"]
    assert body["position"] == history.head
    for key, revision in revisions.items():
        assert (served_one(revision["before"]), served_one(revision["after"])) == (
            before.get(key),
            after.get(key),
        )

    late = revisions[("absorption", OTHER_LOCAL_FIRM.credit_code)]
    assert [(e["type"], e["subject"]) for e in late["events"]] == [
        ("InvoiceRecorded", registration_no(LATE_INVOICED))
    ]
    cancelled = revisions[("output", LOCAL_NEW_RD.credit_code)]
    assert [(e["type"], e["subject"]) for e in cancelled["events"]] == [
        ("ContractCancelled", registration_no(CANCELLED))
    ]
    assert (registration_no(CANCELLED), "cancelled") in served_one(cancelled["after"])["excluded"]


def test_revisions_without_claims_give_the_same_figures_and_only_the_contracts_that_moved(
    client: TestClient, history: History
) -> None:
    since = history.first_phase_end["recorded_at"]
    full = client.get("/v1/revisions", params={"year": YEAR, "since": since, "include": "claims"})
    lean = client.get("/v1/revisions", params={"year": YEAR, "since": since})
    assert lean.status_code == 200, lean.text
    full_revisions, lean_revisions = full.json()["revisions"], lean.json()["revisions"]
    for answer in (full.json(), lean.json()):  # as documented, field for field
        assert RevisionsPublic.model_validate(answer).model_dump(mode="json") == answer

    def figures(side: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if side is None else {k: v for k, v in side.items() if k not in LISTS}

    assert [(r["category"], r["beneficiary"]) for r in lean_revisions] == [
        (r["category"], r["beneficiary"]) for r in full_revisions
    ]
    for lean_one, full_one in zip(lean_revisions, full_revisions, strict=True):
        assert figures(lean_one["before"]) == figures(full_one["before"])
        assert figures(lean_one["after"]) == figures(full_one["after"])
        assert lean_one["before"] is None or lean_one["before"]["contracts"] is None
        assert lean_one["contracts"] == full_one["contracts"]
        assert lean_one["events"] == full_one["events"]
        # Each contract named as moved differs between the two full lists, and only those.
        assert {c["registration_no"] for c in full_one["contracts"]} == _moved(full_one)

    cancelled = next(
        r
        for r in lean_revisions
        if (r["category"], r["beneficiary"]) == ("output", LOCAL_NEW_RD.credit_code)
    )
    [part] = [
        c for c in cancelled["contracts"] if c["registration_no"] == registration_no(CANCELLED)
    ]
    assert part["before"]["reason"] is None
    assert (part["after"]["reason"], part["after"]["reason_zh"]) == (
        "cancelled",
        REASON_ZH["cancelled"],
    )


LISTS = ("contracts", "excluded")


def _moved(revision: dict[str, Any]) -> set[str]:
    def parts(side: dict[str, Any] | None) -> dict[str, tuple[str, str | None]]:
        if side is None:
            return {}
        found = {c["registration_no"]: (c["evidenced"], None) for c in side["contracts"]}
        found |= {x["registration_no"]: ("", x["reason"]) for x in side["excluded"]}
        return found

    was, now = parts(revision["before"]), parts(revision["after"])
    return {no for no in was.keys() | now.keys() if was.get(no) != now.get(no)}


def served_one(entitlement: dict[str, Any] | None) -> dict[str, Any] | None:
    if entitlement is None:
        return None
    return served({"entitlements": [entitlement]})[
        (entitlement["category"], entitlement["beneficiary"])
    ]


def test_revisions_since_now_are_empty(client: TestClient, history: History) -> None:
    since = history.envelopes[-1]["recorded_at"]
    body = client.get("/v1/revisions", params={"year": YEAR, "since": since}).json()
    assert body["revisions"] == []


def test_health_needs_no_token_and_says_how_far_the_store_reaches(
    client: TestClient, history: History
) -> None:
    response = client.get("/v1/health", headers={"Authorization": ""})
    assert response.status_code == 200, response.text
    assert response.json()["applied_position"] == history.head
    assert response.json()["registry_head"] is None  # no registry to ask


# -- the store ---------------------------------------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[EntryStore]:
    """An empty subsidy store on a SQLite file or a fresh PostgreSQL database."""
    opened = EntryStore(database_url)
    try:
        yield opened
    finally:
        opened.close()


def stored_count(store: EntryStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(applied_log)).scalar_one())


def applied(store: EntryStore) -> list[int]:
    """The positions applied, in the order the store holds them."""
    with store.engine.connect() as conn:
        query = select(applied_log.c.position).order_by(applied_log.c.position)
        return [int(p) for p in conn.execute(query).scalars()]


def test_the_store_keeps_each_position_once_whatever_is_delivered_again(
    store: EntryStore, history: History
) -> None:
    log = history.envelopes
    assert store.add(log[:20]).position == 20
    assert store.add(log[:20]).position == 20
    assert store.add(log[10:30]).position == 30
    assert store.add(log[25:30] + log[25:30]).position == 30
    assert stored_count(store) == 30
    assert applied(store) == list(range(1, 31))
    assert store.head().hash == log[29]["hash"]


def test_the_applied_head_waits_at_a_hole_until_it_is_filled(
    store: EntryStore, history: History
) -> None:
    log = history.envelopes
    assert store.add(log[:10]).position == 10
    assert store.add(log[15:25]).position == 10  # positions 11-15 are missing
    assert store.highest_stored() == 25
    assert applied(store) == list(range(1, 11))
    assert store.add(log[10:14]).position == 14
    assert store.add(log[14:15]).position == 25
    assert store.head().hash == log[24]["hash"]


def test_a_store_made_before_its_head_row_came_with_it_applies_from_position_1(
    store: EntryStore, history: History
) -> None:
    # Stores were once made without the head's row (it was added by the first batch).
    with store.engine.begin() as conn:
        conn.execute(delete(head_table))
    log = history.envelopes
    assert store.head().position == 0
    assert store.add(log[5:10]).position == 0  # waits beyond the hole at 1-5
    assert store.add(log[:5]).position == 10
    assert applied(store) == list(range(1, 11))


def test_entries_delivered_out_of_order_are_applied_in_log_order(
    store: EntryStore, history: History
) -> None:
    shuffled = list(history.envelopes)
    random.Random(7).shuffle(shuffled)
    for start in range(0, len(shuffled), 17):
        store.add(shuffled[start : start + 17])
    assert store.head().position == history.head
    assert applied(store) == [e["position"] for e in history.envelopes]
    assert recompute_from_store(store) == recompute(history.envelopes)


def test_a_position_the_registry_never_used_is_not_a_hole(store: EntryStore) -> None:
    # A rolled-back insert leaves a gap in the registry's positions; the chain skips it.
    chain = rechained([1, 2, 5, 6])
    assert store.add(chain[:2]).position == 2
    assert store.add(chain[2:]).position == 6


def test_an_entry_that_does_not_chain_onto_the_head_is_not_applied(store: EntryStore) -> None:
    chain = rechained([1, 2, 3])
    forged = {**chain[1], "prev_hash": "f" * 64}
    assert store.add([chain[0], forged, chain[2]]).position == 1


@pytest.mark.filterwarnings("ignore:.*deleted while still open:ResourceWarning")
def test_processes_opening_a_new_postgresql_store_at_once_all_start() -> None:
    failures = []
    for _ in range(3):  # the race is lost nearly every time; three tries make it certain
        with fresh_postgres_database() as url:
            failures += open_at_once(lambda url=url: EntryStore(url).close())  # type: ignore[misc]
    gc.collect()  # the engines of stores that failed to open, while their warnings are expected
    assert failures == []


def test_processes_opening_a_new_sqlite_store_at_once_all_start(tmp_path: Path) -> None:
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'subsidy-{attempt}.db'}"
        assert open_at_once(lambda url=url: EntryStore(url).close()) == []  # type: ignore[misc]


def recompute_from_store(store: EntryStore) -> dict[int, dict[tuple[str, str], dict[str, Any]]]:
    """Every year's entitlements as the store's projection serves them, keyed as recompute."""
    from services.subsidy.application import Subsidy

    subsidy = Subsidy(store, store.schedule)
    return {
        year: served({"entitlements": list(subsidy.all_entitlements(year))})
        for year in range(2020, 2026)
    }


def rechained(positions: list[int]) -> list[dict[str, Any]]:
    """Envelopes at these positions, each hash-chained onto the one before."""
    envelopes, prev = [], GENESIS_HASH
    for position in positions:
        envelope: dict[str, Any] = {
            "position": position,
            "event_id": f"00000000-0000-0000-0000-{position:012d}",
            "type": "BrokerFiled",
            "schema_version": 1,
            "recorded_at": f"2026-11-02T08:00:{position:02d}.000000Z",
            "principal": "bureau",
            "subject": f"B-{position}",
            "payload": {
                "broker_id": f"B-{position}",
                "name": "经纪人",
                "organisation_credit_code": OTHER_LOCAL_FIRM.credit_code,
                "filed_on": "2024-01-15",
            },
            "prev_hash": prev,
        }
        envelope["hash"] = prev = entry_hash(prev, envelope)
        envelopes.append(envelope)
    return envelopes


def _in_beijing(instant: str) -> str:
    """The same instant written in UTC+08:00."""
    from datetime import timedelta, timezone

    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return moment.astimezone(timezone(timedelta(hours=8))).isoformat()


def test_as_of_a_date_is_the_end_of_that_day_in_beijing(client: TestClient) -> None:
    by_date = client.get("/v1/entitlements", params={"year": YEAR, "as_of": "2025-03-31"})
    by_instant = client.get(
        "/v1/entitlements", params={"year": YEAR, "as_of": "2025-03-31T23:59:59.999999+08:00"}
    )
    assert by_date.status_code == 200, by_date.text
    assert by_date.json() == by_instant.json()


def test_a_position_beyond_what_is_applied_is_refused(client: TestClient, history: History) -> None:
    response = client.get("/v1/entitlements", params={"year": YEAR, "position": history.head + 1})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "position"


def test_pages_follow_one_another_and_cover_the_year_once(
    client: TestClient, history: History
) -> None:
    expected = recompute(history.envelopes)[YEAR]
    rows, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"year": YEAR, "limit": 1, "include": "claims"}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/v1/entitlements", params=params).json()
        rows += body["entitlements"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages > 2, "too few entitlements to page"
    assert served({"entitlements": rows}) == expected
    assert len(rows) == len(expected)


def test_a_list_carries_each_entitlements_claim_count_and_its_contracts_only_on_request(
    client: TestClient, history: History
) -> None:
    plain = client.get("/v1/entitlements", params={"year": YEAR}).json()["entitlements"]
    params = {"year": YEAR, "include": "claims"}
    full = client.get("/v1/entitlements", params=params).json()["entitlements"]
    assert plain and all(e["contracts"] is None and e["excluded"] is None for e in plain)
    assert [e["claims"] for e in plain] == [len(e["contracts"]) + len(e["excluded"]) for e in full]
    without = ("contracts", "excluded")
    assert [{k: v for k, v in e.items() if k not in without} for e in full] == [
        {k: v for k, v in e.items() if k not in without} for e in plain
    ]
    assert any(e["excluded"] for e in full), "nothing excluded: the test proves nothing"


SORTED_BY = {
    "category": lambda e: (e["category"], e["beneficiary"]),
    "-entitlement": lambda e: (-Decimal(e["entitlement"]), e["category"], e["beneficiary"]),
    "entitlement": lambda e: (Decimal(e["entitlement"]), e["category"], e["beneficiary"]),
    "county": lambda e: (e["county"], e["category"], e["beneficiary"]),
}


def _ordered(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    if sort != "-entitlement":
        return sorted(rows, key=SORTED_BY[sort])
    # Largest first, ties in reverse key order, as an index read backward gives them.
    return sorted(
        rows, key=lambda e: (Decimal(e["entitlement"]), e["category"], e["beneficiary"]),
        reverse=True,
    )  # fmt: skip


@pytest.mark.parametrize("sort", list(SORTED_BY))
def test_each_order_is_applied_before_paging_and_pages_forward_and_back_cover_the_year_once(
    client: TestClient, sort: str
) -> None:
    whole = client.get("/v1/entitlements", params={"year": YEAR, "limit": 10_000}).json()
    expected = [e["beneficiary"] + e["category"] for e in _ordered(whole["entitlements"], sort)]
    assert len(set(e["entitlement"] for e in whole["entitlements"])) > 2, "too few amounts"
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"year": YEAR, "limit": 1, "sort": sort}
    body = client.get("/v1/entitlements", params=params).json()
    assert body["previous_cursor"] is None
    pages.append(body)
    while pages[-1]["next_cursor"]:
        cursor = pages[-1]["next_cursor"]
        pages.append(client.get("/v1/entitlements", params={**params, "cursor": cursor}).json())
    forward = [e["beneficiary"] + e["category"] for p in pages for e in p["entitlements"]]
    assert forward == expected
    assert len(pages) > 2, "too few pages"
    # Back from the last page by previous_cursor: the same pages, in reverse.
    back = [pages[-1]]
    while back[-1]["previous_cursor"]:
        before = back[-1]["previous_cursor"]
        back.append(client.get("/v1/entitlements", params={**params, "before": before}).json())
    assert [p["entitlements"] for p in reversed(back)] == [p["entitlements"] for p in pages]


def test_totals_add_up_the_year_and_the_county_whatever_the_page(
    client: TestClient, history: History
) -> None:
    whole = client.get("/v1/entitlements", params={"year": YEAR, "limit": 10_000}).json()
    first = client.get("/v1/entitlements", params={"year": YEAR, "limit": 1}).json()
    assert first["totals"] == whole["totals"]
    for category, total in whole["totals"].items():
        rows = [e for e in whole["entitlements"] if e["category"] == category]
        assert total["beneficiaries"] == len(rows)
        assert total["entitlement"] == _sum_yuan(e["entitlement"] for e in rows)
    county = OTHER_LOCAL_FIRM.region_code
    local = client.get("/v1/entitlements", params={"year": YEAR, "county": county}).json()
    assert local["entitlements"] and all(e["county"] == county for e in local["entitlements"])
    assert local["totals"]["absorption"]["entitlement"] == _sum_yuan(
        e["entitlement"] for e in local["entitlements"] if e["category"] == "absorption"
    )


def test_county_totals_are_each_countys_own_and_add_up_to_the_year(client: TestClient) -> None:
    by_county = client.app.state.subsidy.county_totals(YEAR)["counties"]  # type: ignore[attr-defined]
    whole = client.get("/v1/entitlements", params={"year": YEAR}).json()["totals"]

    assert len(by_county) > 1, "one county: the test proves nothing"
    for county, totals in by_county.items():
        params = {"year": YEAR, "county": county, "limit": 1}
        assert totals == client.get("/v1/entitlements", params=params).json()["totals"]
    for category, total in whole.items():
        assert total["entitlement"] == _sum_yuan(
            t[category]["entitlement"] for t in by_county.values()
        )
        assert total["beneficiaries"] == sum(
            t[category]["beneficiaries"] for t in by_county.values()
        )


def test_min_amount_leaves_out_smaller_entitlements(client: TestClient) -> None:
    body = client.get("/v1/entitlements", params={"year": YEAR, "min_amount": "10000.00"}).json()
    whole = client.get("/v1/entitlements", params={"year": YEAR}).json()
    kept = [e for e in whole["entitlements"] if float(e["entitlement"]) >= 10000]
    assert [e["beneficiary"] for e in body["entitlements"]] == [e["beneficiary"] for e in kept]
    assert len(kept) < len(whole["entitlements"]), "nothing left out: the test proves nothing"


def _sum_yuan(amounts: Any) -> str:
    from decimal import Decimal

    return f"{sum((Decimal(a) for a in amounts), Decimal(0)):.2f}"


def test_revisions_page_and_the_pages_hold_every_revision_once(
    client: TestClient, history: History
) -> None:
    since = history.first_phase_end["recorded_at"]
    whole = client.get("/v1/revisions", params={"year": YEAR, "since": since}).json()
    assert whole["next_cursor"] is None
    assert len(whole["revisions"]) >= 2, "too few revisions to page"
    paged, cursor = [], None
    while True:
        params: dict[str, Any] = {"year": YEAR, "since": since, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/v1/revisions", params=params).json()
        paged += body["revisions"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert paged == whole["revisions"]


def test_an_export_reads_every_page_at_the_position_of_its_first(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.subsidy import application
    from services.subsidy.application import Subsidy

    monkeypatch.setattr(application, "MAX_LIMIT", 1)  # a page per entitlement
    cut = history.envelopes.index(history.first_phase_end) + 1
    store = EntryStore(f"sqlite:///{tmp_path / 'subsidy.db'}")
    try:
        store.add(history.envelopes[:cut])
        pages = Subsidy(store, store.schedule).all_entitlements(YEAR)
        store.add(history.envelopes[cut : cut + 1])  # the late invoice arrives, then
        exported = [next(pages)]
        store.add(history.envelopes[cut + 1 :])  # the cancellation
        exported += list(pages)
    finally:
        store.close()
    assert served({"entitlements": exported}) == recompute(history.envelopes[:cut])[YEAR]
    assert recompute(history.envelopes[:cut])[YEAR] != recompute(history.envelopes)[YEAR]


def test_a_store_made_before_an_index_was_added_gains_it_when_opened(
    history: History, tmp_path: Path
) -> None:
    from sqlalchemy import inspect, text

    url = f"sqlite:///{tmp_path / 'subsidy.db'}"
    store = EntryStore(url)
    store.add(history.envelopes)
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX subsidy_entitlements_by_amount"))
    store.close()

    reopened = EntryStore(url)
    try:
        names = {i["name"] for i in inspect(reopened.engine).get_indexes("subsidy_entitlements")}
        assert "subsidy_entitlements_by_amount" in names
        assert reopened.head().position == history.head, "kept, not rebuilt"
    finally:
        reopened.close()
