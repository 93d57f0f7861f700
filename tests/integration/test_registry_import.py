"""Spreadsheet import (issue 13): a dry run names every planted error by sheet, row and
column, with the API's own rules and the registry's real state; a commit stores the whole file
in order, each entry marked with the file's hash, or nothing."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook

from services.common.schemas import envelope_validator
from services.registry.application import Registry
from tests.conftest import Tokens
from tests.support.parties import (
    LOCAL_ENTERPRISE,
    UNIVERSITY,
    broker_body,
    contract_body,
    invoice_body,
)
from tests.support.workbooks import (
    CONTRACT_HEADERS,
    INVOICE_HEADERS,
    TRANSFER_HEADERS,
    contract_row,
    csv_bytes,
    filled_template,
    invoice_row,
    transfer_row,
    workbook,
)

EXISTING = "2024410400000001"  # in the registry before each import, with invoice INV-OLD
TOMORROW = date.today() + timedelta(days=2)

# (sheet, row, column, rule) of every error planted in the workbook below.
PLANTED = {
    ("合同", 3, "卖方统一社会信用代码", "check_character"),
    ("合同", 4, "登记号", "duplicate_in_file"),
    ("合同", 5, "登记号", "duplicate_in_registry"),
    ("合同", 6, "合同类型", "one_of"),
    ("合同", 6, "买方地区代码", "region_code"),
    ("合同", 7, "合同成交额（元）", "amount_precision"),
    ("合同", 8, "登记机构", "own_station"),
    ("合同", 9, "签订日期", "signed_before_registered"),
    ("合同", 10, "登记号", "exact_number"),
    ("合同", 11, "技术交易额（元）", "technology_within_contract"),
    ("合同", 12, "登记日期", "date_format"),
    ("合同", 13, "签订日期", "not_future"),
    ("合同", 14, "买方名称", "required"),
    ("发票", 3, "金额（元）", "evidence_over_contract_amount"),
    ("发票", 4, "发票号码", "duplicate_in_registry"),
    ("发票", 5, "发票号码", "duplicate_in_file"),
    ("发票", 6, "登记号", "contract_unknown"),
    ("发票", 7, "开票方统一社会信用代码", "party_match"),
    ("转账凭证", 3, "付款日期", "not_before_signing"),
    ("转账凭证", 4, "收款方统一社会信用代码", "party_match"),
}


def contract_rows(*, planted: bool) -> list[list[Any]]:
    """Contract R-1 good; with ``planted``, a mistake of each kind in the rows after it."""
    rows = [contract_row("R-1", 技术经纪人="B-1、B-2")]
    if not planted:
        return rows + [contract_row(f"R-{n}") for n in range(2, 14)]
    return [
        *rows,
        contract_row("R-2", 卖方统一社会信用代码="12410400MB0000001X"),
        contract_row("R-1"),
        contract_row(EXISTING),
        contract_row("R-3", 合同类型="技术合作", 买方地区代码=4104),
        contract_row("R-4", **{"合同成交额（元）": 1200000.001}),
        contract_row("R-5", 登记机构="S2"),
        contract_row("R-6", 签订日期="2024-03-02"),
        contract_row(2024410400000009, 登记机构="S1"),
        contract_row("R-8", **{"技术交易额（元）": "1200000.01"}),
        contract_row("R-9", 登记日期="2024/03/01"),
        contract_row("R-10", 签订日期=TOMORROW.isoformat()),
        contract_row("R-11", 买方名称=None),
    ]


def invoice_rows(*, planted: bool) -> list[list[Any]]:
    if not planted:
        return [invoice_row("R-1", "INV-1"), invoice_row("R-2", "INV-2", "600000.00")]
    return [
        invoice_row("R-1", "INV-1"),
        invoice_row("R-1", "INV-2", 700000),  # with INV-1: over the contract's 1,200,000.00
        invoice_row("R-1", "INV-OLD"),
        invoice_row("R-1", "INV-1"),
        invoice_row("NO-SUCH", "INV-4"),
        invoice_row("R-1", "INV-5", 1, 开票方统一社会信用代码=LOCAL_ENTERPRISE["credit_code"]),
    ]


def transfer_rows(*, planted: bool) -> list[list[Any]]:
    rows = [transfer_row("R-1", "BANK-1")]
    if not planted:
        return rows
    return [
        *rows,
        transfer_row("R-1", "BANK-2", 1, 付款日期=date(2024, 1, 31)),
        transfer_row("R-1", "BANK-3", 1, 收款方统一社会信用代码=LOCAL_ENTERPRISE["credit_code"]),
    ]


def station_workbook(*, planted: bool) -> bytes:
    return workbook(
        {
            "合同": (CONTRACT_HEADERS, contract_rows(planted=planted)),
            "发票": (INVOICE_HEADERS, invoice_rows(planted=planted)),
            "转账凭证": (TRANSFER_HEADERS, transfer_rows(planted=planted)),
        }
    )


@pytest.fixture
def existing(client: TestClient) -> None:
    client.post("/v1/contracts", json=contract_body(EXISTING)).raise_for_status()
    client.post(
        f"/v1/contracts/{EXISTING}/invoices", json=invoice_body("INV-OLD")
    ).raise_for_status()


def upload(
    client: TestClient, data: bytes, name: str = "登记.xlsx", **params: Any
) -> dict[str, Any]:
    response = client.post("/v1/imports", params=params, files={"file": (name, data)})
    expected = 201 if params.get("dry_run") == "false" else 200
    assert response.status_code == expected, response.text
    body: dict[str, Any] = response.json()
    return body


def found(report: dict[str, Any]) -> set[tuple[str, int, str, str]]:
    return {(e["sheet"], e["row"], e["column"], e["rule"]) for e in report["errors"]}


def head(client: TestClient) -> int:
    return int(client.get("/v1/health").json()["head"])


def entries(client: TestClient, after: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = client.get("/v1/events", params={"after": after}).json()[
        "events"
    ]
    return events


def test_a_dry_run_names_every_planted_error_by_sheet_row_and_column_and_stores_nothing(
    client: TestClient, existing: None
) -> None:
    before = head(client)
    data = station_workbook(planted=True)

    report = upload(client, data)

    assert found(report) == PLANTED
    assert report["rows"] == 13 + 6 + 3
    assert report["valid"] == 22 - len({(s, r) for s, r, _, _ in PLANTED})
    assert report["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert not report["stored"] and report["events"] == 0
    for error in report["errors"]:
        assert error["message"] and error["message_zh"] and error["field"]
    duplicate = next(e for e in report["errors"] if e["rule"] == "duplicate_in_file")
    assert (duplicate["field"], "row 2") == ("registration_no", duplicate["message"][-5:])
    assert head(client) == before

    refused = client.post("/v1/imports?dry_run=false", files={"file": ("登记.xlsx", data)})

    assert refused.status_code == 422
    body = refused.json()
    assert (body["error"], body["field"]) == ("invalid_import", "file")
    assert found(body) == PLANTED and body["message_zh"]
    assert head(client) == before


def test_a_row_breaking_several_state_rules_is_named_for_each_of_them(
    client: TestClient, existing: None
) -> None:
    seller, buyer = UNIVERSITY["credit_code"], LOCAL_ENTERPRISE["credit_code"]
    data = workbook(
        {
            "合同": (
                CONTRACT_HEADERS,
                [
                    contract_row("R-1"),
                    # signed after its registration, technology over the contract amount, and
                    # bought by its own seller
                    contract_row(
                        "R-2",
                        签订日期="2024-03-02",
                        买方统一社会信用代码=seller,
                        **{"技术交易额（元）": "1200000.01"},
                    ),
                ],
            ),
            "发票": (
                INVOICE_HEADERS,
                [
                    # a number the registry holds, issued before signing, by the buyer
                    invoice_row(
                        "R-1",
                        "INV-OLD",
                        1,
                        开票日期=date(2024, 1, 31),
                        开票方统一社会信用代码=buyer,
                    ),
                    # no such contract: nothing else can be judged
                    invoice_row("NO-SUCH", "INV-9", 1, 开票方统一社会信用代码=buyer),
                    invoice_row("R-1", "INV-1", 1),
                    # the number of the row above, and issued by the buyer
                    invoice_row("R-1", "INV-1", 1, 开票方统一社会信用代码=buyer),
                ],
            ),
            "转账凭证": (
                TRANSFER_HEADERS,
                # paid by the seller, and more than the contract amount
                [transfer_row("R-1", "BANK-9", 1_200_000.01, 付款方统一社会信用代码=seller)],
            ),
        }
    )

    report = upload(client, data)

    assert found(report) == {
        ("合同", 3, "技术交易额（元）", "technology_within_contract"),
        ("合同", 3, "签订日期", "signed_before_registered"),
        ("合同", 3, "买方统一社会信用代码", "parties_differ"),
        ("发票", 2, "发票号码", "duplicate_in_registry"),
        ("发票", 2, "开票日期", "not_before_signing"),
        ("发票", 2, "开票方统一社会信用代码", "party_match"),
        ("发票", 3, "登记号", "contract_unknown"),
        ("发票", 5, "发票号码", "duplicate_in_file"),
        ("发票", 5, "开票方统一社会信用代码", "party_match"),
        ("转账凭证", 2, "付款方统一社会信用代码", "party_match"),
        ("转账凭证", 2, "金额（元）", "evidence_over_contract_amount"),
    }
    assert len(report["errors"]) == 11  # each once
    assert report["valid"] == 2  # R-1 and its invoice INV-1


def test_the_corrected_file_stores_every_row_in_order_marked_with_the_files_hash(
    client: TestClient, reader: TestClient, tokens: Tokens, existing: None
) -> None:
    bureau = tokens.header("bureau")
    client.post("/v1/brokers", json=broker_body("B-1"), headers=bureau).raise_for_status()
    before = head(client)
    data = station_workbook(planted=False)

    report = upload(client, data, dry_run="false")

    assert report["errors"] == [] and report["stored"] is True
    # R-1 names B-1, filed, and B-2, not filed yet: accepted, with a warning.
    [warning] = report["warnings"]
    assert (warning["sheet"], warning["row"], warning["column"], warning["rule"]) == (
        "合同",
        2,
        "技术经纪人",
        "broker_not_filed",
    )
    assert "B-2" in warning["message"] and warning["message_zh"]
    assert report["events"] == report["rows"] == 13 + 2 + 1
    assert (report["first_position"], report["last_position"]) == (before + 1, before + 16)
    stored = entries(reader, before)
    assert [(e["type"], e["subject"]) for e in stored] == (
        [("ContractRegistered", f"R-{n}") for n in range(1, 14)]
        + [("InvoiceRecorded", "R-1"), ("InvoiceRecorded", "R-2")]
        + [("TransferProofRecorded", "R-1")]
    )
    digest = hashlib.sha256(data).hexdigest()
    assert {e["import_sha256"] for e in stored} == {digest}
    assert all("intake" not in e for e in stored)
    validator = envelope_validator()
    for envelope in entries(reader, 0):
        validator.validate(envelope)
    registered = stored[0]["payload"]
    assert registered["brokers"] == ["B-1", "B-2"]
    assert registered["registered_on"] == "2024-03-01"
    assert registered["seller"]["region_code"] == "410402"  # typed as a number, exact
    assert stored[-1]["payload"]["amount_fen"] == 60_000_050  # 600000.5 yuan
    registry: Registry = client.app.state.registry  # type: ignore[attr-defined]
    assert list(registry.verify())[-1]["ok"] is True  # old and new entries chain and verify

    again = upload(client, data)  # everything is in the registry now
    assert {e["rule"] for e in again["errors"]} == {"duplicate_in_registry"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sheets_in_any_order_are_judged_and_stored_contracts_first(
    client: TestClient, reader: TestClient
) -> None:
    data = workbook(
        {
            "转账凭证": (TRANSFER_HEADERS, transfer_rows(planted=False)),
            "发票": (INVOICE_HEADERS, invoice_rows(planted=False)),
            "合同": (CONTRACT_HEADERS, contract_rows(planted=False)),
        }
    )

    assert upload(client, data)["errors"] == []
    upload(client, data, dry_run="false")

    types = [e["type"] for e in entries(reader, 0)]
    assert types == ["ContractRegistered"] * 13 + ["InvoiceRecorded"] * 2 + [
        "TransferProofRecorded"
    ]


def test_a_backlog_is_marked_in_every_entry(client: TestClient, reader: TestClient) -> None:
    data = workbook({"合同": (CONTRACT_HEADERS, [contract_row("R-1")])})

    upload(client, data, dry_run="false", intake="backlog")

    [entry] = entries(reader, 0)
    assert entry["intake"] == "backlog"
    assert entry["import_sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_downloaded_template_filled_in_is_checked_and_stored(
    client: TestClient, existing: None
) -> None:
    template = client.get("/v1/imports/template.xlsx")
    assert template.status_code == 200
    book = load_workbook(io.BytesIO(template.content))
    assert book.sheetnames == ["合同", "发票", "转账凭证", "说明"]
    assert [c.value for c in book["合同"][1]] == CONTRACT_HEADERS

    planted = filled_template(
        template.content,
        {
            "合同": contract_rows(planted=True),
            "发票": invoice_rows(planted=True),
            "转账凭证": transfer_rows(planted=True),
        },
    )
    assert found(upload(client, planted)) == PLANTED
    assert head(client) == 2

    good = filled_template(template.content, {"合同": [contract_row("R-1")]})
    assert upload(client, good, dry_run="false")["events"] == 1
    assert head(client) == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_csv_holds_one_sheet_named_or_told_by_its_columns(
    client: TestClient, reader: TestClient
) -> None:
    contracts = csv_bytes(CONTRACT_HEADERS, [contract_row("R-1", 登记日期="2024-03-01")])
    invoices = csv_bytes(INVOICE_HEADERS, [invoice_row("R-1", "INV-1", 开票日期="2024-04-01")])
    invoices_in_english = csv_bytes(
        ["registration_no", "invoice_no", "issued_on", "amount", "issuer_credit_code",
         "recipient_credit_code"],
        [invoice_row("R-1", "INV-2", 1, 开票日期="2024-04-02")],
    )  # fmt: skip

    assert upload(client, contracts, "合同.csv", sheet="合同", dry_run="false")["events"] == 1
    assert upload(client, invoices, "发票.csv", dry_run="false")["events"] == 1
    assert upload(client, invoices_in_english, "i.csv", dry_run="false")["events"] == 1
    assert [e["payload"].get("invoice_no") for e in entries(reader, 1)] == ["INV-1", "INV-2"]

    unknown = client.post("/v1/imports?sheet=发货单", files={"file": ("x.csv", invoices)})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "sheet")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_amounts_in_wan_yuan_are_converted_exactly_to_the_fen(
    client: TestClient, reader: TestClient
) -> None:
    headers = [h.replace("（元）", "（万元）") for h in CONTRACT_HEADERS]
    rows = [
        contract_row("R-1", **{"合同成交额（元）": 120.0001, "技术交易额（元）": "100"}),
        contract_row("R-2", **{"合同成交额（元）": 123.45678, "技术交易额（元）": 0.01}),
        contract_row("R-3", **{"合同成交额（元）": 120.0000001, "技术交易额（元）": 100}),
    ]
    data = workbook({"合同": (headers, rows)})

    assert found(upload(client, data)) == {("合同", 4, "合同成交额（万元）", "amount_precision")}

    upload(client, workbook({"合同": (headers, rows[:2])}), dry_run="false")
    stored = [e["payload"] for e in entries(reader, 0)]
    assert [(p["contract_amount_fen"], p["technology_amount_fen"]) for p in stored] == [
        (120_000_100, 100_000_000),  # 1,200,001.00 and 1,000,000.00 yuan
        (123_456_780, 10_000),  # 1,234,567.80 and 100.00 yuan
    ]


def numbers_only(sheets: dict[str, int]) -> bytes:
    """A workbook whose sheets hold only a 登记号 column, with this many rows each: read and
    counted, every row then lacking the columns the sheet's header lacks (one problem each)."""
    book = Workbook(write_only=True)
    for title, count in sheets.items():
        sheet = book.create_sheet(title)
        sheet.append(["登记号"])
        for n in range(count):
            sheet.append([f"R-{n}"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_sheet_of_more_than_50000_rows_is_too_large_naming_the_sheet(
    client: TestClient,
) -> None:
    row = ",".join(str(v) for v in invoice_row("R-1", "I", 1, 开票日期="2024-04-01"))
    rows = csv_bytes(INVOICE_HEADERS, []) + ((row + "\r\n") * 50_001).encode()
    over_rows = client.post("/v1/imports", files={"file": ("i.csv", rows)})
    assert over_rows.status_code == 413
    body = over_rows.json()
    assert body["error"] == "too_large"
    assert "“发票”" in body["message_zh"] and "50,000" in body["message_zh"]
    assert "sheet 发票 (invoices)" in body["message"] and "50,000" in body["message"]

    data = numbers_only({"合同": 50_000, "转账凭证": 50_001})
    over_one_sheet = client.post("/v1/imports", files={"file": ("a.xlsx", data)})
    assert over_one_sheet.status_code == 413
    assert "“转账凭证”" in over_one_sheet.json()["message_zh"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_file_of_60000_rows_across_three_sheets_is_taken_whole(client: TestClient) -> None:
    data = numbers_only({"合同": 20_000, "发票": 20_000, "转账凭证": 20_000})

    report = upload(client, data, name="a.xlsx")

    assert report["rows"] == 60_000
    assert {e["rule"] for e in report["errors"]} == {"missing_column"}  # read, every row


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_files_over_20_mib_are_too_large(client: TestClient) -> None:
    just_over = b"x" * (20 * 1024 * 1024 + 1)
    over_size = client.post("/v1/imports", files={"file": ("big.csv", just_over)})
    assert over_size.status_code == 413
    assert over_size.json()["message_zh"]  # the file's own limit, worded for the clerk

    far_over = client.post("/v1/imports", files={"file": ("big.csv", just_over * 2)})
    assert far_over.status_code == 413  # refused before it is read


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_errors_workbook_marks_each_bad_cell_with_a_comment(
    client: TestClient, tokens: Tokens
) -> None:
    data = workbook({"合同": (CONTRACT_HEADERS, contract_rows(planted=True)[:3])})

    marked = client.post("/v1/imports?errors=xlsx", files={"file": ("a.xlsx", data)})

    assert marked.status_code == 200
    sheet = load_workbook(io.BytesIO(marked.content))["合同"]
    seller_code = sheet.cell(row=3, column=CONTRACT_HEADERS.index("卖方统一社会信用代码") + 1)
    assert seller_code.fill.start_color.rgb.endswith("FFC7CE")
    assert seller_code.comment is not None and "check_character" in seller_code.comment.text
    assert sheet.cell(row=2, column=1).comment is None  # the good row is left alone
    assert sheet.cell(row=4, column=1).comment is not None  # the duplicate number

    headers = [h for h in CONTRACT_HEADERS if h != "买方名称"]
    rows = [[v for h, v in zip(CONTRACT_HEADERS, r, strict=True) if h != "买方名称"]
            for r in contract_rows(planted=True)[:2]]  # fmt: skip
    marked_csv = client.post(
        "/v1/imports?errors=xlsx&sheet=合同", files={"file": ("a.csv", csv_bytes(headers, rows))}
    )
    csv_sheet = load_workbook(io.BytesIO(marked_csv.content))["合同"]
    assert "missing_column" in csv_sheet.cell(row=1, column=1).comment.text
    seller_code = csv_sheet.cell(row=3, column=headers.index("卖方统一社会信用代码") + 1)
    assert "check_character" in seller_code.comment.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_errors_workbook_of_a_csv_with_control_characters_shows_them_replaced(
    client: TestClient,
) -> None:
    # A worksheet cannot hold most control characters (the schemathesis run found a 500).
    data = "登记号,合同名称\r\nR-\x01,名称\x0b\r\n".encode()

    marked = client.post("/v1/imports?errors=xlsx&sheet=合同", files={"file": ("a.csv", data)})

    assert marked.status_code == 200, marked.text
    sheet = load_workbook(io.BytesIO(marked.content))["合同"]
    assert (sheet.cell(row=2, column=1).value, sheet.cell(row=2, column=2).value) == (
        "R-\ufffd",
        "名称\ufffd",
    )
    assert sheet.cell(row=1, column=1).comment is not None  # the columns the sheet lacks


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_stations_and_the_bureau_import(client: TestClient, tokens: Tokens) -> None:
    data = workbook({"合同": (CONTRACT_HEADERS, [contract_row("R-1")])})
    refused = client.post(
        "/v1/imports", files={"file": ("a.xlsx", data)}, headers=tokens.header("auditor")
    )
    assert refused.status_code == 403
    bureau = client.post(
        "/v1/imports", files={"file": ("a.xlsx", data)}, headers=tokens.header("bureau")
    )
    assert bureau.status_code == 200 and bureau.json()["errors"] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_file_that_is_no_spreadsheet_is_refused_naming_the_file(client: TestClient) -> None:
    refused = client.post("/v1/imports", files={"file": ("a.xlsx", b"PK\x03\x04 broken")})
    assert refused.status_code == 422
    assert refused.json()["field"] == "file" and refused.json()["message_zh"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_dry_run_on_sqlite_reads_without_holding_writes_back(
    client: TestClient, database_url: str
) -> None:
    data = workbook({"合同": (CONTRACT_HEADERS, [contract_row("R-1", 技术经纪人="B-9")])})
    writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0.5)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another writer holds the write lock meanwhile

        report = upload(client, data)

        assert report["valid"] == 1 and report["warnings"][0]["rule"] == "broker_not_filed"
    finally:
        writer.rollback()
        writer.close()
