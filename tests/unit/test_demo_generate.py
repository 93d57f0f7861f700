"""The demo history is deterministic, realistic, and valid command by command in file order;
it exercises every op, every exclusion, the caps, year ends, and the plan's turnover."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any, get_args

import pytest

from services.cli import main
from services.common.codes import CREDIT_CODE_CHARSET, credit_code_check_character
from services.common.payloads import read_version
from services.common.policy.engine import entitlements
from services.common.policy.facts import FactsBuilder
from services.common.policy.loader import load_schedule
from services.common.policy.model import Entitlement, ExclusionReason
from services.common.policy.present import entitlement_json
from services.demo.generate import (
    CERTIFICATES_FROM,
    DEFAULT_YEARS,
    generate_history,
    parse_years,
    summarise,
    write_history,
)
from services.demo.payouts import EVENTS
from services.registry.api.batch import batch_args
from services.registry.commands import COMMANDS
from tests.support.policy_facts import PINGDINGSHAN_2020

TODAY = "2026-11-27"
LOCAL_REGIONS = {
    "410402", "410403", "410404", "410411", "410421",
    "410422", "410423", "410425", "410481", "410482",
}  # fmt: skip
KINDS = {"enterprise", "university", "research_institute", "new_rd_institution", "other"}
OPS = {op: declared.event for op, declared in COMMANDS.items()}  # the event each op records
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AMOUNT = re.compile(r"(0|[1-9][0-9]*)\.[0-9]{2}")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")


@pytest.fixture(scope="module")
def history() -> list[dict[str, Any]]:
    """The default demo: 2020–2025, 400 contracts a year."""
    return list(generate_history())


@pytest.fixture(scope="module")
def yearly(history: list[dict[str, Any]]) -> dict[int, list[Entitlement]]:
    """Entitlements of every turnover year, computed from the history alone."""
    builder = FactsBuilder()
    for position, command in enumerate(history, start=1):
        payload = batch_args(command["op"], command["body"])
        kind = OPS[command["op"]]
        version = read_version(kind)  # the arguments are today's: the newest version's payload
        builder.apply(
            {"position": position, "type": kind, "schema_version": version, "payload": payload}
        )
    facts, schedule = builder.facts(), load_schedule()
    return {year: entitlements(facts, year, schedule.for_year(year)) for year in DEFAULT_YEARS}


# -- an independent model of what the registry accepts ----------------------------------------


def _day(text: str) -> str:
    assert _DATE.fullmatch(text), text
    date.fromisoformat(text)
    assert text <= TODAY, f"{text} is in the future"
    return text


def _fen(text: str) -> int:
    assert isinstance(text, str) and _AMOUNT.fullmatch(text), text
    fen = int(text.replace(".", ""))
    assert fen > 0
    return fen


def _key(text: str) -> str:
    assert isinstance(text, str) and _KEY.fullmatch(text), text
    return text


def valid_credit_code(code: str) -> bool:
    return (
        len(code) == 18
        and all(c in CREDIT_CODE_CHARSET for c in code)
        and credit_code_check_character(code[:17]) == code[17]
    )


class RegistryModel:
    """Applies commands one by one, asserting every invariant the registry enforces."""

    def __init__(self) -> None:
        self.contracts: dict[str, dict[str, Any]] = {}
        self.invoice_nos: set[str] = set()
        self.serials: set[str] = set()
        self.brokers: set[str] = set()
        self.funding: set[tuple[str, int, str]] = set()
        self.payout_nos: set[str] = set()
        self.recognised: dict[tuple[str, str], str] = {}  # (code, level) → recognised on
        self.grant_nos: set[str] = set()
        self.demonstration_granted: set[str] = set()
        self.position = 0

    def apply(self, command: dict[str, Any]) -> None:
        assert set(command) == {"op", "body"}
        getattr(self, command["op"])(command["body"])
        self.position += 1

    def _open(self, body: dict[str, Any]) -> dict[str, Any]:
        contract = self.contracts[body["registration_no"]]
        assert not contract["cancelled"], "a command after the cancellation"
        return contract

    @staticmethod
    def _party(party: dict[str, Any]) -> None:
        assert set(party) == {"credit_code", "name", "kind", "region_code"}
        assert valid_credit_code(party["credit_code"]), party
        assert re.fullmatch(r"[0-9]{6}", party["region_code"])
        assert party["kind"] in KINDS and party["name"]

    def register_contract(self, b: dict[str, Any]) -> None:
        no = _key(b["registration_no"])
        assert no not in self.contracts, f"registration number {no} twice"
        _key(b["station_id"])
        signed, registered = _day(b["signed_on"]), _day(b["registered_on"])
        assert signed <= registered
        assert b["contract_type"] in {
            "development", "transfer", "licensing", "consulting", "service",
        }  # fmt: skip
        assert b["title"] and b["domain"] and isinstance(b["related_party"], bool)
        self._party(b["seller"])
        self._party(b["buyer"])
        assert b["seller"]["credit_code"] != b["buyer"]["credit_code"]
        assert len(set(b["brokers"])) == len(b["brokers"]) and all(map(_key, b["brokers"]))
        amount, technology = _fen(b["contract_amount"]), _fen(b["technology_amount"])
        assert technology <= amount
        self.contracts[no] = {
            "signed": signed,
            "registered": registered,
            "amount": amount,
            "technology": technology,
            "seller": b["seller"]["credit_code"],
            "buyer": b["buyer"]["credit_code"],
            "cancelled": False,
            "invoices": {},
            "proofs": {},
        }

    @staticmethod
    def _live(items: dict[str, tuple[str, int, bool]]) -> int:
        return sum(amount for _, amount, gone in items.values() if not gone)

    def amend_contract(self, b: dict[str, Any]) -> None:
        c = self._open(b)
        assert _day(b["amended_on"]) >= max(c["signed"], c["registered"]) and b["reason"]
        changes = set(b) - {"registration_no", "amended_on", "reason"}
        assert changes and changes <= {
            "contract_amount", "technology_amount", "brokers", "related_party", "title",
        }  # fmt: skip
        amount = _fen(b["contract_amount"]) if "contract_amount" in b else c["amount"]
        technology = _fen(b["technology_amount"]) if "technology_amount" in b else c["technology"]
        assert technology <= amount
        evidenced = max(self._live(c["invoices"]), self._live(c["proofs"]))
        assert amount >= evidenced, "an amendment lowers the amount below the evidence"
        if "brokers" in b:
            assert len(set(b["brokers"])) == len(b["brokers"])
        c["amount"], c["technology"] = amount, technology

    def cancel_contract(self, b: dict[str, Any]) -> None:
        c = self._open(b)
        assert _day(b["cancelled_on"]) >= c["registered"] and b["reason"]
        c["cancelled"] = True

    def record_invoice(self, b: dict[str, Any]) -> None:
        c = self._open(b)
        no = _key(b["invoice_no"])
        assert no not in self.invoice_nos, f"invoice {no} twice"
        self.invoice_nos.add(no)
        issued = _day(b["issued_on"])
        assert issued >= c["signed"], "invoice before signing"
        assert b["issuer_credit_code"] == c["seller"]
        assert b["recipient_credit_code"] == c["buyer"]
        amount = _fen(b["amount"])
        assert self._live(c["invoices"]) + amount <= c["amount"], "invoices exceed the amount"
        c["invoices"][no] = (issued, amount, False)

    def void_invoice(self, b: dict[str, Any]) -> None:
        c = self._open(b)
        issued, amount, voided = c["invoices"][b["invoice_no"]]
        assert not voided and _day(b["voided_on"]) >= issued and b["reason"]
        c["invoices"][b["invoice_no"]] = (issued, amount, True)

    def record_transfer_proof(self, b: dict[str, Any]) -> None:
        c = self._open(b)
        serial = _key(b["serial_no"])
        assert serial not in self.serials, f"bank serial {serial} twice"
        self.serials.add(serial)
        paid = _day(b["paid_on"])
        assert paid >= c["signed"], "payment before signing"
        assert b["payer_credit_code"] == c["buyer"]
        assert b["payee_credit_code"] == c["seller"]
        amount = _fen(b["amount"])
        assert self._live(c["proofs"]) + amount <= c["amount"], "payments exceed the amount"
        c["proofs"][serial] = (paid, amount, False)

    def withdraw_transfer_proof(self, b: dict[str, Any]) -> None:
        c = self._open(b)
        paid, amount, withdrawn = c["proofs"][b["serial_no"]]
        assert not withdrawn and _day(b["withdrawn_on"]) >= paid and b["reason"]
        c["proofs"][b["serial_no"]] = (paid, amount, True)

    def file_broker(self, b: dict[str, Any]) -> None:
        broker_id = _key(b["broker_id"])
        assert broker_id not in self.brokers
        self.brokers.add(broker_id)
        assert valid_credit_code(b["organisation_credit_code"]) and b["name"]
        _day(b["filed_on"])

    def record_provincial_funding(self, b: dict[str, Any]) -> None:
        assert valid_credit_code(b["credit_code"])
        assert isinstance(b["year"], int) and 2000 <= b["year"] <= 2100
        key = (b["credit_code"], b["year"], b["programme"])
        assert key not in self.funding
        self.funding.add(key)
        _fen(b["amount"])

    def recognise_institution(self, b: dict[str, Any]) -> None:
        assert valid_credit_code(b["credit_code"]) and b["name"] and b["document_no"]
        key = (b["credit_code"], b["level"])
        assert b["level"] in ("national", "provincial", "municipal")
        assert key not in self.recognised
        self.recognised[key] = _day(b["recognised_on"])

    def decide_grant(self, b: dict[str, Any]) -> None:
        assert _key(b["grant_no"]).casefold() not in self.grant_nos
        self.grant_nos.add(b["grant_no"].casefold())
        assert valid_credit_code(b["credit_code"]) and b["document_no"]
        _fen(b["amount"])
        decided = _day(b["decided_on"])
        assert b["programme"] in ("demonstration_institution", "transfer_base", "pilot_base")
        if b["programme"] == "demonstration_institution":
            assert self.recognised.get((b["credit_code"], "provincial"), "9999") <= decided
            assert b["credit_code"] not in self.demonstration_granted
            self.demonstration_granted.add(b["credit_code"])

    def record_payout(self, b: dict[str, Any]) -> None:
        assert _key(b["payout_no"]) not in self.payout_nos
        self.payout_nos.add(b["payout_no"])
        assert 2020 <= b["year"] <= 2025 and b["year"] < int(_day(b["paid_on"])[:4])
        assert 0 < b["basis_position"] <= self.position, "computed at a position not stored yet"
        keys = [(line["beneficiary"], line["category"]) for line in b["lines"]]
        assert keys and len(set(keys)) == len(keys)
        assert all(_fen(line["amount"]) > 0 for line in b["lines"])
        assert {line["kind"] for line in b["lines"]} <= {"payment", "recovery"}


# -- determinism ------------------------------------------------------------------------------


def test_the_bundled_schedule_leaves_every_entitlement_of_the_demo_as_the_one_policy_gave(
    history: list[dict[str, Any]], yearly: dict[int, list[Entitlement]]
) -> None:
    """The policy file's move into a schedule (``applies_to``) changes no answer: each year,
    computed under its version, is byte for byte what the plan written out by hand gives."""
    builder = FactsBuilder()
    for position, command in enumerate(history, start=1):
        kind, payload = OPS[command["op"]], batch_args(command["op"], command["body"])
        builder.apply(
            {
                "position": position,
                "type": kind,
                "schema_version": read_version(kind),
                "payload": payload,
            }
        )
    facts = builder.facts()

    for year in DEFAULT_YEARS:
        before = [entitlement_json(e) for e in entitlements(facts, year, PINGDINGSHAN_2020)]
        assert before, year
        assert json.dumps([entitlement_json(e) for e in yearly[year]]) == json.dumps(before)


def test_the_same_arguments_write_byte_identical_files(tmp_path: Path) -> None:
    years = range(2022, 2025)
    write_history(tmp_path / "a.jsonl", years, 60, seed=11)
    write_history(tmp_path / "b.jsonl", years, 60, seed=11)
    write_history(tmp_path / "c.jsonl", years, 60, seed=12)
    first = (tmp_path / "a.jsonl").read_bytes()
    assert first == (tmp_path / "b.jsonl").read_bytes()
    assert first != (tmp_path / "c.jsonl").read_bytes()


def test_tcr_demo_generate_writes_the_generated_history(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    argv = ["demo", "generate", "--years", "2024-2025", "--contracts-per-year", "30"]
    assert main([*argv, "--seed", "5", "--out", str(out)]) == 0
    write_history(tmp_path / "direct.jsonl", range(2024, 2026), 30, seed=5)
    assert out.read_bytes() == (tmp_path / "direct.jsonl").read_bytes()


def test_years_are_written_as_a_range_or_one_year() -> None:
    assert parse_years("2020-2025") == range(2020, 2026)
    assert parse_years("2024") == range(2024, 2025)
    for bad in ("2025-2020", "20x0", "2020-2030"):
        with pytest.raises(ValueError):
            parse_years(bad)


# -- validity ---------------------------------------------------------------------------------


def test_every_command_is_valid_when_applied_in_file_order(history: list[dict[str, Any]]) -> None:
    model = RegistryModel()
    for command in history:
        model.apply(command)
    assert len(model.contracts) == 2400


def test_every_body_is_what_the_registry_batch_accepts(history: list[dict[str, Any]]) -> None:
    for command in history:
        batch_args(command["op"], command["body"])  # the registry's own parsing, or raises


def test_a_small_history_is_valid_too() -> None:
    model = RegistryModel()
    for command in generate_history(range(2025, 2027), 7, seed=3):
        model.apply(command)
    assert all(c["registered"] <= TODAY for c in model.contracts.values())


def test_every_credit_code_passes_the_gb_32100_check(history: list[dict[str, Any]]) -> None:
    codes = set()
    for command in history:
        body = command["body"]
        for party in ("seller", "buyer"):
            if party in body:
                codes.add(body[party]["credit_code"])
        for name, value in body.items():
            if name.endswith("credit_code"):
                codes.add(value)
    assert len(codes) > 300
    assert all(valid_credit_code(code) for code in codes)


# -- realism ----------------------------------------------------------------------------------


def _parties(history: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    found = {}
    for command in history:
        if command["op"] == "register_contract":
            for role in ("seller", "buyer"):
                party = command["body"][role]
                found[party["credit_code"]] = party
    return found


def test_parties_come_from_every_county_and_from_other_provinces(
    history: list[dict[str, Any]],
) -> None:
    parties = _parties(history).values()
    regions = {p["region_code"] for p in parties}
    assert regions >= LOCAL_REGIONS
    assert {"110108", "310115", "440305", "410105"} <= regions  # Zhengzhou: Henan, not local
    kinds = Counter(p["kind"] for p in parties)
    assert set(kinds) == KINDS
    assert kinds["enterprise"] > 0.8 * sum(kinds.values())
    names = {p["name"] for p in parties}
    assert {"平顶山学院", "河南城建学院", "中国平煤神马集团技术中心"} <= names


def test_every_op_appears(history: list[dict[str, Any]]) -> None:
    assert set(summarise(history).ops) == set(OPS)


def test_registrations_carry_a_certificate_number_from_the_year_stations_give_one(
    history: list[dict[str, Any]],
) -> None:
    registrations = [c["body"] for c in history if c["op"] == "register_contract"]
    for body in registrations:
        given = int(body["registered_on"][:4]) >= CERTIFICATES_FROM
        assert ("certificate_no" in body) == given, body["registration_no"]
        if given:
            args = batch_args("register_contract", body)  # the rule of the API
            assert args["certificate_no"] == body["certificate_no"]


def test_corrections_come_in_realistic_proportions(history: list[dict[str, Any]]) -> None:
    registrations = [c["body"] for c in history if c["op"] == "register_contract"]
    related = sum(b["related_party"] for b in registrations) / len(registrations)
    amended = len({c["body"]["registration_no"] for c in history if c["op"] == "amend_contract"})
    ops = summarise(history).ops
    assert 0.03 <= related <= 0.07
    assert 0.02 <= ops["cancel_contract"] / len(registrations) <= 0.04
    assert 0.03 <= amended / len(registrations) <= 0.07
    assert ops["void_invoice"] > 20 and ops["withdraw_transfer_proof"] > 20
    types = Counter(b["contract_type"] for b in registrations)
    assert len(types) == 5 and types["development"] > types["licensing"]


def test_yearly_turnover_grows_toward_the_plans_billion(history: list[dict[str, Any]]) -> None:
    summary = summarise(history)
    turnover = [summary.turnover[year] for year in DEFAULT_YEARS]
    assert 700_000_000_00 <= turnover[0] <= 800_000_000_00  # 2020: the reported 7.54亿
    assert turnover[2] >= 700_000_000_00  # the plan's 2022 target
    assert turnover[-1] >= 1_000_000_000_00  # and its 2025 target
    assert turnover[-1] > turnover[0]
    filed_by_2022 = sum(n for year, n in summary.brokers_filed.items() if year <= 2022)
    assert filed_by_2022 >= 100  # the plan's brokers target


def test_amounts_range_from_fifty_thousand_to_fifty_million(
    history: list[dict[str, Any]],
) -> None:
    amounts = [
        float(c["body"]["contract_amount"]) for c in history if c["op"] == "register_contract"
    ]
    assert min(amounts) >= 50_000 and max(amounts) <= 50_000_000 * 1.5  # flagships, amended
    amounts.sort()
    assert 200_000 <= amounts[len(amounts) // 2] <= 2_000_000  # the median contract
    assert sum(a >= 10_000_000 for a in amounts) >= 30  # and a few very large ones


def test_payments_cross_year_ends_and_some_are_invoiced_later(
    history: list[dict[str, Any]],
) -> None:
    paid: dict[str, set[str]] = defaultdict(set)
    first_paid: dict[str, str] = {}
    invoiced_later = set()
    for command in history:
        body = command["body"]
        if command["op"] == "record_transfer_proof":
            paid[body["registration_no"]].add(body["paid_on"][:4])
            first_paid.setdefault(body["registration_no"], body["paid_on"])
        elif command["op"] == "record_invoice":
            first = first_paid.get(body["registration_no"])
            if first is not None and body["issued_on"][:4] > first[:4]:
                invoiced_later.add(body["registration_no"])
    across = [no for no, years in paid.items() if len(years) > 1]
    assert len(across) > 100
    assert len(invoiced_later) > 30


def test_some_brokers_are_filed_late_and_some_never(history: list[dict[str, Any]]) -> None:
    filed = {
        c["body"]["broker_id"]: c["body"]["filed_on"] for c in history if c["op"] == "file_broker"
    }
    named: dict[str, str] = {}
    for command in history:
        if command["op"] == "register_contract":
            for broker in command["body"]["brokers"]:
                named.setdefault(broker, command["body"]["registered_on"])
    never = [b for b in named if b not in filed]
    late = [b for b, first in named.items() if b in filed and filed[b][:4] > first[:4]]
    assert never and late
    # most brokers are filed before the first contract naming them
    early = [b for b, first in named.items() if b in filed and filed[b] <= first]
    assert len(early) > 3 * (len(never) + len(late))


# -- the money rules it exercises ----------------------------------------------------------------


def test_beneficiaries_reach_the_cap_in_every_category(
    yearly: dict[int, list[Entitlement]],
) -> None:
    capped = {(e.category, e.year) for es in yearly.values() for e in es if e.capped}
    assert {category for category, _ in capped} == {"absorption", "output", "broker"}
    for year in DEFAULT_YEARS:  # the very large contracts of every year
        assert ("absorption", year) in capped and ("output", year) in capped


def test_every_exclusion_reason_occurs(yearly: dict[int, list[Entitlement]]) -> None:
    reasons = {x.reason for es in yearly.values() for e in es for x in e.excluded}
    assert reasons == set(get_args(ExclusionReason))


def test_entitlements_are_paid_in_every_year(yearly: dict[int, list[Entitlement]]) -> None:
    for year, found in yearly.items():
        paid = {e.category for e in found if e.entitlement_fen > 0}
        assert paid == {"absorption", "output", "broker"}, year


# -- payouts ----------------------------------------------------------------------------------


def test_the_demo_names_each_ops_event_as_the_command_table_does() -> None:
    assert {op: event for op, event in OPS.items() if op != "record_payout"} == EVENTS


def _net_paid(history: list[dict[str, Any]]) -> Counter[tuple[int, str, str]]:
    net: Counter[tuple[int, str, str]] = Counter()
    for command in history:
        if command["op"] == "record_payout":
            for line in command["body"]["lines"]:
                sign = 1 if line["kind"] == "payment" else -1
                key = (command["body"]["year"], line["category"], line["beneficiary"])
                net[key] += sign * _fen(line["amount"])
    return net


def test_finance_pays_each_year_2020_to_2024_in_the_next_june(
    history: list[dict[str, Any]],
) -> None:
    first = {
        c["body"]["year"]: c["body"]["paid_on"]
        for c in history
        if c["op"] == "record_payout" and c["body"]["payout_no"].endswith("-1")
    }
    assert first == {year: f"{year + 1}-06-30" for year in range(2020, 2025)}


def test_cancellations_after_the_payouts_leave_amounts_to_recover_and_nothing_owed(
    history: list[dict[str, Any]], yearly: dict[int, list[Entitlement]]
) -> None:
    net = _net_paid(history)
    entitled = {
        (y, e.category, e.beneficiary): e.entitlement_fen for y in yearly for e in yearly[y]
    }
    outstanding = {
        key: entitled.get(key, 0) - paid
        for key, paid in net.items()
        if entitled.get(key, 0) != paid
    }
    assert outstanding, "every payout settled: the demo shows no recovery"
    assert all(amount < 0 for amount in outstanding.values())
    recovered = [
        line
        for c in history
        if c["op"] == "record_payout"
        for line in c["body"]["lines"]
        if line["kind"] == "recovery"
    ]
    assert recovered, "no payout recovered anything"


def test_the_demo_recognises_institutions_and_grants_each_programme_paying_them(
    history: list[dict[str, Any]],
) -> None:
    recognised = [c["body"] for c in history if c["op"] == "recognise_institution"]
    provincial = sorted(b["recognised_on"][:4] for b in recognised if b["level"] == "provincial")
    assert len(provincial) >= 2 and provincial[0] >= "2020" and provincial[-1] <= "2023"
    assert {b["level"] for b in recognised} == {"national", "provincial", "municipal"}
    grants = [c["body"] for c in history if c["op"] == "decide_grant"]
    assert {g["programme"] for g in grants} == {
        "demonstration_institution",
        "transfer_base",
        "pilot_base",
    }
    paid = {
        (line["beneficiary"], c["body"]["year"])
        for c in history
        if c["op"] == "record_payout"
        for line in c["body"]["lines"]
        if line["category"] == "one_time"
    }
    assert paid and paid <= {(g["credit_code"], int(g["decided_on"][:4])) for g in grants}


def test_a_round_larger_than_a_payout_may_hold_is_paid_in_several(
    history: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.demo import payouts
    from services.registry.api.models import PayoutCreate

    largest = max(len(c["body"]["lines"]) for c in history if c["op"] == "record_payout")
    assert PayoutCreate.model_fields["lines"].metadata[-1].max_length == payouts.MAX_PAYOUT_LINES
    monkeypatch.setattr(payouts, "MAX_PAYOUT_LINES", largest // 2)

    split = list(generate_history())

    recorded = [c["body"] for c in split if c["op"] == "record_payout"]
    assert max(len(b["lines"]) for b in recorded) <= largest // 2
    assert len({b["payout_no"] for b in recorded}) == len(recorded)
    assert len(recorded) > sum(1 for c in history if c["op"] == "record_payout")
    assert _net_paid(split) == _net_paid(history)  # the same money, in more payouts
