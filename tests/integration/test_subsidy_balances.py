"""Balances (余额) and the payout draft, through both APIs on real SQLite and PostgreSQL: the
registry records contracts, evidence and payouts; the subsidy store applies its log; finance
reads what each beneficiary is owed (补拨) or must repay (追回), and the events behind it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import delete

from services.subsidy import tables as t
from services.subsidy.store import EntryStore
from tests.conftest import Tokens
from tests.integration.test_subsidy_api import finance_client
from tests.support.databases import fresh_postgres_database
from tests.support.parties import (
    LOCAL_ENTERPRISE,
    OUTSIDE_ENTERPRISE,
    UNIVERSITY,
    cancellation_body,
    contract_body,
    invoice_body,
    transfer_body,
)

YEAR = 2024
OUTPUT_NO = "2024410400000001"  # the university sells to a local firm: output for the seller
ABSORPTION_NO = "2024410400000002"  # an outside firm sells to a local one: absorption


class System:
    """The registry's API, a subsidy store fed from its log, and the finance API over it."""

    def __init__(
        self, registry: TestClient, store: EntryStore, finance: TestClient, tokens: Tokens
    ) -> None:
        self.registry = registry
        self.store = store
        self.finance = finance
        self.tokens = tokens

    def catch_up(self) -> int:
        after = self.store.head().position
        while True:
            page = self.registry.get(
                "/v1/events", params={"after": after}, headers=self.tokens.header("service")
            ).json()
            if not page["events"]:
                return after
            self.store.add(page["events"])
            after = page["next_after"]

    def post(self, path: str, body: dict[str, Any], who: str = "station") -> dict[str, Any]:
        response = self.registry.post(path, json=body, headers=self.tokens.header(who))
        assert response.status_code == 201, response.text
        receipt: dict[str, Any] = response.json()
        return receipt

    def balances(self, **params: Any) -> dict[str, Any]:
        self.catch_up()
        response = self.finance.get("/v1/balances", params={"year": YEAR, **params})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def draft(self) -> dict[str, Any]:
        self.catch_up()
        response = self.finance.get("/v1/payouts/draft", params={"year": YEAR})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def approve(self, draft: dict[str, Any], payout_no: str) -> dict[str, Any]:
        """What the finance page does: post the draft's lines as a payout, as finance."""
        lines = [{k: line[k] for k in ("beneficiary", "category", "amount", "kind")}
                 for line in draft["lines"]]  # fmt: skip
        body = {"payout_no": payout_no, "year": draft["year"], "paid_on": "2025-06-30",
                "basis_position": draft["basis_position"], "lines": lines}  # fmt: skip
        return self.post("/v1/payouts", body, who="finance")


@pytest.fixture
def system(
    client: TestClient, tokens: Tokens, database_url: str, tmp_path: Path
) -> Iterator[System]:
    with _subsidy_url(database_url, tmp_path) as url:
        store = EntryStore(url)
        try:
            with finance_client(url, tokens) as finance:
                yield System(client, store, finance, tokens)
        finally:
            store.close()


def _subsidy_url(database_url: str, tmp_path: Path) -> AbstractContextManager[str]:
    """The subsidy store beside the registry's: a SQLite file, or another fresh database."""
    if database_url.startswith("sqlite"):
        return nullcontext(f"sqlite:///{tmp_path / 'subsidy.db'}")
    return fresh_postgres_database()


def _register_output_contract(system: System) -> None:
    system.post("/v1/contracts", contract_body(OUTPUT_NO))
    system.post(f"/v1/contracts/{OUTPUT_NO}/invoices", invoice_body())
    system.post(f"/v1/contracts/{OUTPUT_NO}/transfer-proofs", transfer_body())


def _register_absorption_contract(system: System, invoiced: str) -> None:
    seller, buyer = OUTSIDE_ENTERPRISE["credit_code"], LOCAL_ENTERPRISE["credit_code"]
    system.post("/v1/contracts", contract_body(ABSORPTION_NO, seller=OUTSIDE_ENTERPRISE))
    system.post(
        f"/v1/contracts/{ABSORPTION_NO}/invoices",
        invoice_body("INV-A1", invoiced, issuer_credit_code=seller),
    )
    system.post(
        f"/v1/contracts/{ABSORPTION_NO}/transfer-proofs",
        transfer_body("BANK-A1", payee_credit_code=seller, payer_credit_code=buyer),
    )


def _by_key(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(b["category"], b["beneficiary"]): b for b in body["balances"]}


def test_a_payout_then_a_cancellation_leaves_the_amount_to_recover_with_its_event(
    system: System,
) -> None:
    _register_output_contract(system)
    key = ("output", UNIVERSITY["credit_code"])
    draft = system.draft()
    assert [(x["category"], x["beneficiary"], x["amount"], x["kind"]) for x in draft["lines"]] == [
        (*key, "60000.00", "payment")
    ]
    paid = system.approve(draft, "ZF-2025-001")

    settled = _by_key(system.balances())[key]
    assert (settled["entitled"], settled["paid"], settled["outstanding"]) == (
        "60000.00", "60000.00", "0.00",
    )  # fmt: skip
    assert [(p["payout_no"], p["position"], p["basis_position"]) for p in settled["payouts"]] == [
        ("ZF-2025-001", paid["position"], draft["basis_position"])
    ]
    assert settled["revisions_since_payout"] == []

    cancelled = system.post(f"/v1/contracts/{OUTPUT_NO}/cancellation", cancellation_body())
    after = _by_key(system.balances())[key]

    assert (after["entitled"], after["paid"], after["outstanding"]) == (
        "0.00", "60000.00", "-60000.00",
    )  # fmt: skip
    assert after["name"] == UNIVERSITY["name"] and after["county"] == "410402"
    assert [(e["position"], e["type"], e["subject"]) for e in after["revisions_since_payout"]] == [
        (cancelled["position"], "ContractCancelled", OUTPUT_NO)
    ]
    recovery = system.draft()
    assert [(x["amount"], x["kind"]) for x in recovery["lines"]] == [("60000.00", "recovery")]
    assert recovery["totals"] == {"payment": "0.00", "recovery": "60000.00"}


def test_a_late_invoice_after_a_payout_leaves_an_amount_owed(system: System) -> None:
    _register_absorption_contract(system, invoiced="300000.00")
    key = ("absorption", LOCAL_ENTERPRISE["credit_code"])
    system.approve(system.draft(), "ZF-2025-001")
    assert _by_key(system.balances())[key]["outstanding"] == "0.00"

    late = system.post(
        f"/v1/contracts/{ABSORPTION_NO}/invoices",
        invoice_body("INV-A2", "300000.00", issued_on="2025-02-01",
                     issuer_credit_code=OUTSIDE_ENTERPRISE["credit_code"]),
    )  # fmt: skip
    owed = _by_key(system.balances())[key]

    assert (owed["entitled"], owed["paid"], owed["outstanding"]) == (
        "60000.00", "30000.00", "30000.00",
    )  # fmt: skip
    assert [e["position"] for e in owed["revisions_since_payout"]] == [late["position"]]


def test_approving_the_draft_settles_every_outstanding_amount(system: System) -> None:
    _register_output_contract(system)
    _register_absorption_contract(system, invoiced="300000.00")
    system.approve(system.draft(), "ZF-2025-001")
    system.post(f"/v1/contracts/{OUTPUT_NO}/cancellation", cancellation_body())
    system.post(
        f"/v1/contracts/{ABSORPTION_NO}/invoices",
        invoice_body("INV-A2", "300000.00", issued_on="2025-02-01",
                     issuer_credit_code=OUTSIDE_ENTERPRISE["credit_code"]),
    )  # fmt: skip
    before = system.balances()
    draft = system.draft()

    assert {
        (x["category"], x["beneficiary"]): (x["amount"], x["kind"]) for x in draft["lines"]
    } == {
        k: (
            b["outstanding"].removeprefix("-"),
            "recovery" if b["outstanding"][0] == "-" else "payment",
        )
        for k, b in _by_key(before).items()
        if b["outstanding"] != "0.00"
    }
    assert draft["totals"] == {"payment": "30000.00", "recovery": "60000.00"}
    system.approve(draft, "ZF-2025-002")

    after = system.balances()
    assert {b["outstanding"] for b in after["balances"]} == {"0.00"}
    assert {t["outstanding"] for t in after["totals"].values()} == {"0.00"}
    assert system.draft()["lines"] == []
    recorded = system.finance.get("/v1/payouts", params={"year": YEAR}).json()["payouts"]
    assert [p["payout_no"] for p in recorded] == ["ZF-2025-001", "ZF-2025-002"]
    assert len(recorded[1]["lines"]) == 2


def test_totals_and_filters_agree_with_the_rows(system: System) -> None:
    _register_output_contract(system)
    _register_absorption_contract(system, invoiced="600000.00")
    system.approve(system.draft(), "ZF-2025-001")
    system.post(f"/v1/contracts/{OUTPUT_NO}/cancellation", cancellation_body())

    whole = system.balances()
    assert whole["totals"]["output"] == {
        "entitled": "0.00", "paid": "60000.00", "recovered": "0.00", "outstanding": "-60000.00",
    }  # fmt: skip
    assert whole["totals"]["absorption"]["outstanding"] == "0.00"
    in_county = system.balances(county="410402")
    assert [b["beneficiary"] for b in in_county["balances"]] == [UNIVERSITY["credit_code"]]
    assert in_county["totals"]["output"] == whole["totals"]["output"]
    one = system.balances(beneficiary=LOCAL_ENTERPRISE["credit_code"])
    assert [b["category"] for b in one["balances"]] == ["absorption"]
    assert one["totals"]["absorption"]["paid"] == "60000.00"
    first = system.balances(limit=1)
    second = system.balances(limit=1, cursor=first["next_cursor"])
    assert first["balances"] + second["balances"] == whole["balances"]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("path", ["/v1/balances", "/v1/payouts/draft", "/v1/payouts"])
def test_stations_may_not_read_balances_and_other_years_are_not_found(
    system: System, path: str
) -> None:
    as_station = system.finance.get(
        path, params={"year": YEAR}, headers=system.tokens.header("station")
    )
    assert as_station.status_code == 403
    outside = system.finance.get(path, params={"year": 2019})
    assert outside.status_code == 404 and outside.json()["field"] == "year"


def test_a_store_that_skipped_payouts_before_it_knew_them_is_rebuilt_at_start(
    system: System, tmp_path: Path
) -> None:
    _register_output_contract(system)
    system.approve(system.draft(), "ZF-2025-001")
    url = f"sqlite:///{tmp_path / 'older.db'}"
    older = EntryStore(url)
    try:
        older.add(
            system.registry.get("/v1/events", headers=system.tokens.header("service")).json()[
                "events"
            ]
        )
        with older.engine.begin() as conn:  # as a consumer that knew no payout left it
            conn.execute(delete(t.payouts))
            conn.execute(
                t.skipped.insert().values(type="PayoutRecorded", entries=1, last_position=4)
            )
    finally:
        older.close()

    reopened = EntryStore(url)
    try:
        assert reopened.head().position == 0  # to be applied again from the feed
        assert reopened.skipped_events() == 0
    finally:
        reopened.close()


# -- the balances for Excel ----------------------------------------------------------------------

FORMULA_NAME = '=HYPERLINK("http://example.invalid","点击")'
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _recovery_to_export(system: System) -> tuple[dict[str, Any], dict[str, Any]]:
    """A university whose name would start a formula is paid, then its contract cancelled; a
    local firm is owed a late invoice. The balances then, and the payout's receipt."""
    seller = {**UNIVERSITY, "name": FORMULA_NAME}
    system.post("/v1/contracts", contract_body(OUTPUT_NO, seller=seller))
    system.post(f"/v1/contracts/{OUTPUT_NO}/invoices", invoice_body())
    system.post(f"/v1/contracts/{OUTPUT_NO}/transfer-proofs", transfer_body())
    paid = system.approve(system.draft(), "ZF-2025-001")
    system.post(f"/v1/contracts/{OUTPUT_NO}/cancellation", cancellation_body())
    _register_absorption_contract(system, invoiced="300000.00")
    return system.balances(), paid


def _sheets(system: System) -> tuple[Any, Any]:
    response = system.finance.get("/v1/balances.xlsx", params={"year": YEAR})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX_TYPE
    assert "balances-2024.xlsx" in response.headers["content-disposition"]
    balances, payouts = load_workbook(io.BytesIO(response.content)).worksheets
    return balances, payouts


def _yuan(cell: Any) -> str:
    assert cell.data_type == "n" and cell.number_format == "#,##0.00", cell
    return f"{Decimal(str(cell.value)):.2f}"


def test_the_balances_workbook_has_a_row_per_balance_its_payout_lines_and_the_totals(
    system: System,
) -> None:
    answer, paid = _recovery_to_export(system)
    sheet, lines = _sheets(system)
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["年度", "受益人统一社会信用代码", "名称", "类别"]
    assert [c.value for c in sheet[2]][6:10] == ["entitled", "paid", "recovered", "outstanding"]
    body = [row for row in sheet.iter_rows(min_row=3) if row[1].value not in (None,)]
    rows = {str(r[1].value): r for r in body if not str(r[1].value).startswith(("合计", "总计"))}
    assert set(rows) == {b["beneficiary"] for b in answer["balances"]}
    for b in answer["balances"]:
        row = rows[b["beneficiary"]]
        assert row[1].data_type == "s" and row[1].number_format == "@"  # a code stays text
        assert [_yuan(c) for c in row[6:10]] == [
            b["entitled"],
            b["paid"],
            b["recovered"],
            b["outstanding"],
        ]
        assert row[12].value == answer["position"]
    university = rows[UNIVERSITY["credit_code"]]
    assert university[2].value == "'" + FORMULA_NAME  # neutralised: shown as text
    assert (university[9].value, university[10].value) == (-60000, "待追回")
    assert rows[LOCAL_ENTERPRISE["credit_code"]][10].value == "待补拨"
    grand = next(r for r in body if r[1].value == "总计")
    assert [_yuan(c) for c in grand[6:10]] == [
        f"{sum(Decimal(t[k]) for t in answer['totals'].values()):.2f}"
        for k in ("entitled", "paid", "recovered", "outstanding")
    ]
    payout_rows = [[c.value for c in r] for r in lines.iter_rows(min_row=3)]
    assert payout_rows == [
        [YEAR, UNIVERSITY["credit_code"], "'" + FORMULA_NAME, "技术输出", "ZF-2025-001",
         "2025-06-30", "补拨", 60000, paid["position"], paid["position"] - 1]
    ]  # fmt: skip


def test_the_balances_csv_has_the_same_rows_with_a_bom(system: System) -> None:
    answer, _ = _recovery_to_export(system)
    response = system.finance.get("/v1/balances.csv", params={"year": YEAR})
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["年度", "受益人统一社会信用代码"] and rows[1][1] == "beneficiary"
    by_code = {r[1]: r for r in rows[2:]}
    for b in answer["balances"]:
        assert by_code[b["beneficiary"]][6:10] == [
            b["entitled"],
            b["paid"],
            b["recovered"],
            b["outstanding"],
        ]
    assert by_code[UNIVERSITY["credit_code"]][2] == "'" + FORMULA_NAME
    assert rows[-1][1] == "总计"
    payouts = system.finance.get("/v1/balances.csv", params={"year": YEAR, "sheet": "payouts"})
    assert [r[4] for r in csv.reader(io.StringIO(payouts.text.lstrip("\ufeff")))][2:] == [
        "ZF-2025-001"
    ]


# -- as known at an earlier instant or position ------------------------------------------------


def _paid_then_cancelled(system: System) -> dict[str, dict[str, Any]]:
    """The university's output contract evidenced (60,000.00 entitled), paid by the draft,
    then cancelled: the receipts of each step."""
    system.post("/v1/contracts", contract_body(OUTPUT_NO))
    system.post(f"/v1/contracts/{OUTPUT_NO}/invoices", invoice_body())
    evidenced = system.post(f"/v1/contracts/{OUTPUT_NO}/transfer-proofs", transfer_body())
    paid = system.approve(system.draft(), "ZF-2025-001")
    cancelled = system.post(f"/v1/contracts/{OUTPUT_NO}/cancellation", cancellation_body())
    return {"evidenced": evidenced, "paid": paid, "cancelled": cancelled}


def _amounts(balance: dict[str, Any]) -> tuple[str, str, str, str]:
    return (balance["entitled"], balance["paid"], balance["recovered"], balance["outstanding"])


def test_balances_as_of_before_a_payout_show_nothing_paid_and_after_it_nothing_outstanding(
    system: System,
) -> None:
    steps = _paid_then_cancelled(system)
    key = ("output", UNIVERSITY["credit_code"])

    before = system.balances(as_of=steps["evidenced"]["recorded_at"])
    assert before["position"] == steps["evidenced"]["position"]
    assert _amounts(_by_key(before)[key]) == ("60000.00", "0.00", "0.00", "60000.00")
    assert _by_key(before)[key]["payouts"] == []
    assert before["totals"]["output"] == {
        "entitled": "60000.00", "paid": "0.00", "recovered": "0.00", "outstanding": "60000.00",
    }  # fmt: skip

    between = system.balances(as_of=steps["paid"]["recorded_at"])
    assert between["position"] == steps["paid"]["position"]
    settled = _by_key(between)[key]
    assert _amounts(settled) == ("60000.00", "60000.00", "0.00", "0.00")
    assert [(p["payout_no"], p["position"]) for p in settled["payouts"]] == [
        ("ZF-2025-001", steps["paid"]["position"])
    ]
    assert settled["revisions_since_payout"] == []  # the cancellation came after
    assert between["totals"]["output"]["outstanding"] == "0.00"
    assert system.balances(position=steps["paid"]["position"]) == between

    now = system.balances()
    assert _amounts(_by_key(now)[key]) == ("0.00", "60000.00", "0.00", "-60000.00")
    assert now["totals"]["output"]["outstanding"] == "-60000.00"


def test_a_balance_known_only_by_its_payout_is_listed_filtered_and_paged_as_of_then(
    system: System,
) -> None:
    steps = _paid_then_cancelled(system)
    _register_absorption_contract(system, invoiced="300000.00")
    at = {"position": system.catch_up()}
    system.approve(system.draft(), "ZF-2025-002")  # recovers and pays, after the position
    university = ("output", UNIVERSITY["credit_code"])
    firm = ("absorption", LOCAL_ENTERPRISE["credit_code"])

    then = system.balances(**at)
    assert list(_by_key(then)) == [firm, university]
    assert _amounts(_by_key(then)[firm]) == ("30000.00", "0.00", "0.00", "30000.00")
    owed = _by_key(then)[university]  # entitled to nothing then: known by its payout alone
    assert _amounts(owed) == ("0.00", "60000.00", "0.00", "-60000.00")
    assert (owed["name"], owed["county"]) == (UNIVERSITY["name"], "410402")
    assert [p["payout_no"] for p in owed["payouts"]] == ["ZF-2025-001"]
    assert [(e["position"], e["type"]) for e in owed["revisions_since_payout"]] == [
        (steps["cancelled"]["position"], "ContractCancelled")
    ]
    assert then["totals"]["output"] == {
        "entitled": "0.00", "paid": "60000.00", "recovered": "0.00", "outstanding": "-60000.00",
    }  # fmt: skip
    assert then["totals"]["absorption"]["outstanding"] == "30000.00"

    in_county = system.balances(county="410402", **at)
    assert in_county["balances"] == [owed]
    assert in_county["totals"]["output"] == then["totals"]["output"]
    assert in_county["totals"]["absorption"]["entitled"] == "0.00"
    one = system.balances(beneficiary=UNIVERSITY["credit_code"], **at)
    assert one["balances"] == [owed] and one["totals"]["output"] == then["totals"]["output"]
    first = system.balances(limit=1, **at)
    second = system.balances(limit=1, cursor=first["next_cursor"], **at)
    assert first["balances"] + second["balances"] == then["balances"]
    assert second["next_cursor"] is None

    now = _by_key(system.balances())
    assert _amounts(now[university]) == ("0.00", "60000.00", "60000.00", "0.00")
    assert _amounts(now[firm]) == ("30000.00", "30000.00", "0.00", "0.00")


def _workbook(system: System, **params: Any) -> tuple[Any, Any]:
    system.catch_up()
    response = system.finance.get("/v1/balances.xlsx", params={"year": YEAR, **params})
    assert response.status_code == 200, response.text
    balances, payouts = load_workbook(io.BytesIO(response.content)).worksheets
    return balances, payouts


def _named_rows(sheet: Any) -> dict[str, list[Any]]:
    return {str(r[1]): list(r) for r in sheet.iter_rows(min_row=3, values_only=True)}


def test_the_balances_workbook_as_of_then_states_its_position_and_the_amounts_then(
    system: System,
) -> None:
    steps = _paid_then_cancelled(system)
    code = UNIVERSITY["credit_code"]

    sheet, lines = _workbook(system, as_of=steps["evidenced"]["recorded_at"])
    rows = _named_rows(sheet)
    assert rows[code][6:10] == [60000, 0, 0, 60000]
    assert (rows[code][10], rows[code][12]) == ("待补拨", steps["evidenced"]["position"])
    assert rows["总计"][6:10] == [60000, 0, 0, 60000]
    assert rows["总计"][12] == steps["evidenced"]["position"]
    assert list(lines.iter_rows(min_row=3, values_only=True)) == []

    sheet, lines = _workbook(system, as_of=steps["paid"]["recorded_at"])
    rows = _named_rows(sheet)
    assert rows[code][6:10] == [60000, 60000, 0, 0]
    assert (rows[code][10], rows[code][12]) == ("已结清", steps["paid"]["position"])
    assert [r[4] for r in lines.iter_rows(min_row=3, values_only=True)] == ["ZF-2025-001"]

    sheet, _ = _workbook(system)
    assert _named_rows(sheet)[code][9] == -60000


def test_the_balances_csv_as_of_then_has_the_amounts_then(system: System) -> None:
    steps = _paid_then_cancelled(system)
    system.catch_up()
    params = {"year": YEAR, "as_of": steps["paid"]["recorded_at"]}
    response = system.finance.get("/v1/balances.csv", params=params)
    assert response.status_code == 200, response.text
    rows = {r[1]: r for r in csv.reader(io.StringIO(response.content.decode("utf-8-sig")))}
    assert rows[UNIVERSITY["credit_code"]][6:10] == ["60000.00", "60000.00", "0.00", "0.00"]
    assert rows[UNIVERSITY["credit_code"]][12] == str(steps["paid"]["position"])
    before = {**params, "as_of": steps["evidenced"]["recorded_at"], "sheet": "payouts"}
    payouts = system.finance.get("/v1/balances.csv", params=before)
    assert payouts.status_code == 200, payouts.text
    assert len(list(csv.reader(io.StringIO(payouts.text.lstrip("\ufeff"))))) == 2  # headers


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/balances", {"as_of": "2025-02-30"}, "as_of"),
        ("/v1/balances.xlsx", {"as_of": "yesterday"}, "as_of"),
        ("/v1/balances.csv", {"as_of": "2025-03-31T00:00:00"}, "as_of"),
        ("/v1/balances.xlsx", {"as_of": "2025-03-31", "position": 1}, "position"),
        ("/v1/balances", {"position": 1000}, "position"),
        ("/v1/balances.csv", {"position": 1000}, "position"),
    ],
    ids=["no-such-day", "word", "no-zone", "both", "beyond", "csv-beyond"],
)
def test_an_unusable_as_of_or_position_is_refused_naming_it_in_chinese_and_english(
    system: System, path: str, params: dict[str, Any], field: str
) -> None:
    _register_output_contract(system)
    system.catch_up()
    response = system.finance.get(path, params={"year": YEAR, **params})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["field"] == field
    assert body["message"] and body["message_zh"] and not body["message_zh"].isascii()
