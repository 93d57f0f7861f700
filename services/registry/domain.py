"""Aggregates of the registry: each public method checks its invariants, then triggers one event.

Dates are ISO ``YYYY-MM-DD`` strings (they order correctly as text); amounts are integer fen.
Checks against the clock ("not in the future") belong to the API edge, never here, so that
replaying history always reproduces the same state.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.common.money import format_fen
from services.registry.errors import Conflict, InvalidCommand, NotFound

_NAMESPACE = uuid5(NAMESPACE_URL, "https://tcr.example/registry")

Party = dict[str, str]

# The currencies an amount may be in: fen of renminbi, which every money rule counts in.
CURRENCIES = frozenset({"CNY"})


def number_key(number: str) -> str:
    """The form in which registration, invoice and serial numbers are unique: NFKC-normalised,
    case-folded and trimmed, so "INV-1", "inv-1" and "ＩＮＶ－１ " are one number.

    Only uniqueness uses it: a contract's aggregate id is derived from its registration number
    exactly as written, as it always was, so stored logs replay to the same ids."""
    return unicodedata.normalize("NFKC", number).casefold().strip()


@lru_cache(maxsize=65536)  # asked for by every command on a contract, several times
def contract_aggregate_id(registration_no: str) -> UUID:
    """The aggregate id of the contract with this registration number."""
    return uuid5(_NAMESPACE, f"contract/{registration_no}")


def broker_aggregate_id(broker_id: str) -> UUID:
    """The aggregate id of the filed broker with this broker id."""
    return uuid5(_NAMESPACE, f"broker/{broker_id}")


def funding_aggregate_id(credit_code: str, year: int, programme: str) -> UUID:
    """The aggregate id of one provincial funding record."""
    return uuid5(_NAMESPACE, f"funding/{credit_code}/{year}/{programme}")


def payout_aggregate_id(payout_no: str) -> UUID:
    """The aggregate id of the payout with this number, as written."""
    return uuid5(_NAMESPACE, f"payout/{payout_no}")


def institution_aggregate_id(credit_code: str, level: str) -> UUID:
    """The aggregate id of an institution's recognition at one level (national, provincial,
    municipal): recognised once per level."""
    return uuid5(_NAMESPACE, f"institution/{credit_code}/{level}")


def grant_aggregate_id(grant_no: str) -> UUID:
    """The aggregate id of the one-time grant with this number, as written."""
    return uuid5(_NAMESPACE, f"grant/{grant_no}")


class Contract(Aggregate):
    """A registered technology contract with its invoices and bank transfer proofs."""

    # Version 2 holds each contract's certificate_no and each transfer proof's currency. Events
    # stored as version 1 are never rewritten: the library upcasts them as it reads them
    # (``upcast_v1_v2``), and so does a snapshot of a version 1 contract.
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["certificate_no"] = None
        for proof in state["transfer_proofs"].values():
            proof["currency"] = "CNY"

    @staticmethod
    def create_id(registration_no: str, **_: Any) -> UUID:
        return contract_aggregate_id(registration_no)

    class ContractRegistered(Aggregate.Created):
        """v2: with the registration certificate's number (登记证明编号), or None."""

        class_version = 2

        principal: str
        registration_no: str
        station_id: str
        registered_on: str
        signed_on: str
        title: str
        contract_type: str
        domain: str
        seller: Party
        buyer: Party
        brokers: list[str]
        contract_amount_fen: int
        technology_amount_fen: int
        related_party: bool
        certificate_no: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["certificate_no"] = None  # v1 knew no certificate numbers

    @event(ContractRegistered)
    def __init__(
        self,
        *,
        principal: str,
        registration_no: str,
        station_id: str,
        registered_on: str,
        signed_on: str,
        title: str,
        contract_type: str,
        domain: str,
        seller: Party,
        buyer: Party,
        brokers: list[str],
        contract_amount_fen: int,
        technology_amount_fen: int,
        related_party: bool,
        certificate_no: str | None,
    ) -> None:
        _check_amounts(contract_amount_fen, technology_amount_fen)
        if signed_on > registered_on:
            raise InvalidCommand(
                "signed_on", "must not be after registered_on", "签订日期不得晚于登记日期"
            )
        if seller["credit_code"] == buyer["credit_code"]:
            raise InvalidCommand(
                "buyer.credit_code", "must differ from the seller's", "买方不得与卖方为同一主体"
            )
        if len(set(brokers)) != len(brokers):
            raise _broker_twice()
        self.registration_no = registration_no
        self.station_id = station_id
        self.registered_on = registered_on
        self.signed_on = signed_on
        self.title = title
        self.contract_type = contract_type
        self.domain = domain
        self.seller = seller
        self.buyer = buyer
        self.brokers = brokers
        self.contract_amount_fen = contract_amount_fen
        self.technology_amount_fen = technology_amount_fen
        self.related_party = related_party
        self.certificate_no = certificate_no
        self.cancelled: dict[str, str] | None = None
        self.invoices: dict[str, dict[str, Any]] = {}
        self.transfer_proofs: dict[str, dict[str, Any]] = {}

    # -- derived figures -------------------------------------------------------------------

    @property
    def invoiced_fen(self) -> int:
        """Sum of the invoices not voided."""
        return sum(i["amount_fen"] for i in self.invoices.values() if i["voided"] is None)

    @property
    def paid_fen(self) -> int:
        """Sum of the transfer proofs not withdrawn."""
        return sum(p["amount_fen"] for p in self.transfer_proofs.values() if p["withdrawn"] is None)

    def check_open(self) -> None:
        """Nothing is recorded against a cancelled contract."""
        if self.cancelled is not None:
            on = self.cancelled["cancelled_on"]
            raise Conflict(
                "registration_no",
                f"contract {self.registration_no} was cancelled on {on}",
                f"合同 {self.registration_no} 已于 {on} 注销",
            )

    def _check_not_before_signing(self, field: str, day: str) -> None:
        if day < self.signed_on:
            raise InvalidCommand(
                field,
                f"must not be before the contract was signed ({self.signed_on})",
                f"不得早于合同签订日期（{self.signed_on}）",
            )

    def _check_not_before_registration(self, field: str, day: str) -> None:
        if day < self.registered_on:
            raise InvalidCommand(
                field,
                f"must not be before the registration ({self.registered_on})",
                f"不得早于登记日期（{self.registered_on}）",
                rule="not_before_registration",
            )

    # -- corrections ------------------------------------------------------------------------

    @event("ContractAmended")
    def amend(
        self,
        *,
        principal: str,
        registration_no: str,
        amended_on: str,
        reason: str,
        changes: dict[str, Any],
    ) -> None:
        self.check_open()
        if not changes:
            raise InvalidCommand(
                None,
                "an amendment must change at least one of contract_amount, technology_amount, "
                "brokers, related_party, title",
                "变更登记须至少变更合同成交额、技术交易额、技术经纪人、关联交易或合同名称之一",
            )
        self._check_not_before_registration("amended_on", amended_on)
        contract_fen = changes.get("contract_amount_fen", self.contract_amount_fen)
        technology_fen = changes.get("technology_amount_fen", self.technology_amount_fen)
        _check_amounts(contract_fen, technology_fen)
        evidenced = max(self.invoiced_fen, self.paid_fen)
        if contract_fen < evidenced:
            raise InvalidCommand(
                "contract_amount",
                f"must not be below the evidence already recorded ({format_fen(evidenced)} yuan)",
                f"不得低于已登记的票据金额（{format_fen(evidenced)} 元）",
            )
        if "brokers" in changes and len(set(changes["brokers"])) != len(changes["brokers"]):
            raise _broker_twice()
        self.contract_amount_fen = contract_fen
        self.technology_amount_fen = technology_fen
        self.brokers = changes.get("brokers", self.brokers)
        self.related_party = changes.get("related_party", self.related_party)
        self.title = changes.get("title", self.title)

    @event("ContractCancelled")
    def cancel(
        self, *, principal: str, registration_no: str, cancelled_on: str, reason: str
    ) -> None:
        self.check_open()
        self._check_not_before_registration("cancelled_on", cancelled_on)
        self.cancelled = {"cancelled_on": cancelled_on, "reason": reason}

    # -- invoices ---------------------------------------------------------------------------

    @event("InvoiceRecorded")
    def record_invoice(
        self,
        *,
        principal: str,
        registration_no: str,
        invoice_no: str,
        issued_on: str,
        amount_fen: int,
        issuer_credit_code: str,
        recipient_credit_code: str,
    ) -> None:
        self.check_open()
        if invoice_no in self.invoices:
            raise Conflict(
                "invoice_no",
                f"invoice {invoice_no} is already recorded on this contract",
                f"发票 {invoice_no} 已登记在本合同上",
            )
        self._check_not_before_signing("issued_on", issued_on)
        if issuer_credit_code != self.seller["credit_code"]:
            raise InvalidCommand(
                "issuer_credit_code", "must be the contract's seller", "开票方须为本合同的卖方"
            )
        if recipient_credit_code != self.buyer["credit_code"]:
            raise InvalidCommand(
                "recipient_credit_code", "must be the contract's buyer", "受票方须为本合同的买方"
            )
        if self.invoiced_fen + amount_fen > self.contract_amount_fen:
            raise InvalidCommand(
                "amount",
                "invoices not voided would total more than the contract amount "
                f"({format_fen(self.invoiced_fen + amount_fen)} yuan against "
                f"{format_fen(self.contract_amount_fen)} yuan; amend the contract first)",
                f"未红冲发票合计将达 {format_fen(self.invoiced_fen + amount_fen)} 元，超过合同"
                f"成交额 {format_fen(self.contract_amount_fen)} 元（请先办理变更登记）",
            )
        self.invoices[invoice_no] = {
            "invoice_no": invoice_no,
            "issued_on": issued_on,
            "amount_fen": amount_fen,
            "voided": None,
        }

    @event("InvoiceVoided")
    def void_invoice(
        self, *, principal: str, registration_no: str, invoice_no: str, voided_on: str, reason: str
    ) -> None:
        self.check_open()
        invoice = self.invoices.get(invoice_no)
        if invoice is None:
            raise NotFound(
                "invoice_no",
                f"no invoice {invoice_no} on contract {registration_no}",
                f"合同 {registration_no} 上没有发票 {invoice_no}",
            )
        if invoice["voided"] is not None:
            raise Conflict(
                "invoice_no", f"invoice {invoice_no} is already voided", f"发票 {invoice_no} 已红冲"
            )
        if voided_on < invoice["issued_on"]:
            raise InvalidCommand(
                "voided_on", "must not be before the invoice was issued", "红冲日期不得早于开票日期"
            )
        invoice["voided"] = {"voided_on": voided_on, "reason": reason}

    # -- transfer proofs ----------------------------------------------------------------------

    class TransferProofRecorded(Aggregate.Event):
        """v2: with the currency of the amount, which is CNY."""

        class_version = 2

        principal: str
        registration_no: str
        serial_no: str
        paid_on: str
        amount_fen: int
        payer_credit_code: str
        payee_credit_code: str
        bank: str | None
        currency: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["currency"] = "CNY"  # v1 amounts were in fen of CNY, unsaid

    @event(TransferProofRecorded)
    def record_transfer_proof(
        self,
        *,
        principal: str,
        registration_no: str,
        serial_no: str,
        paid_on: str,
        amount_fen: int,
        payer_credit_code: str,
        payee_credit_code: str,
        bank: str | None,
        currency: str,
    ) -> None:
        self.check_open()
        if currency not in CURRENCIES:
            raise InvalidCommand(
                "currency", "must be CNY: amounts are fen of renminbi", "币种须为人民币（CNY）"
            )
        if serial_no in self.transfer_proofs:
            raise Conflict(
                "serial_no",
                f"transfer proof {serial_no} is already recorded",
                f"转账凭证 {serial_no} 已登记",
            )
        self._check_not_before_signing("paid_on", paid_on)
        if payer_credit_code != self.buyer["credit_code"]:
            raise InvalidCommand(
                "payer_credit_code", "must be the contract's buyer", "付款方须为本合同的买方"
            )
        if payee_credit_code != self.seller["credit_code"]:
            raise InvalidCommand(
                "payee_credit_code", "must be the contract's seller", "收款方须为本合同的卖方"
            )
        if self.paid_fen + amount_fen > self.contract_amount_fen:
            raise InvalidCommand(
                "amount",
                "transfer proofs not withdrawn would total more than the contract amount "
                f"({format_fen(self.paid_fen + amount_fen)} yuan against "
                f"{format_fen(self.contract_amount_fen)} yuan; amend the contract first)",
                f"未撤回转账凭证合计将达 {format_fen(self.paid_fen + amount_fen)} 元，超过合同"
                f"成交额 {format_fen(self.contract_amount_fen)} 元（请先办理变更登记）",
            )
        self.transfer_proofs[serial_no] = {
            "serial_no": serial_no,
            "paid_on": paid_on,
            "amount_fen": amount_fen,
            "bank": bank,
            "currency": currency,
            "withdrawn": None,
        }

    @event("TransferProofWithdrawn")
    def withdraw_transfer_proof(
        self,
        *,
        principal: str,
        registration_no: str,
        serial_no: str,
        withdrawn_on: str,
        reason: str,
    ) -> None:
        self.check_open()
        proof = self.transfer_proofs.get(serial_no)
        if proof is None:
            raise NotFound(
                "serial_no",
                f"no transfer proof {serial_no} on contract {registration_no}",
                f"合同 {registration_no} 上没有转账凭证 {serial_no}",
            )
        if proof["withdrawn"] is not None:
            raise Conflict(
                "serial_no",
                f"transfer proof {serial_no} is already withdrawn",
                f"转账凭证 {serial_no} 已撤回",
            )
        if withdrawn_on < proof["paid_on"]:
            raise InvalidCommand(
                "withdrawn_on",
                "must not be before the payment was made",
                "撤回日期不得早于付款日期",
            )
        proof["withdrawn"] = {"withdrawn_on": withdrawn_on, "reason": reason}


class Broker(Aggregate):
    """A technology broker filed with the science bureau (技术经纪人备案)."""

    @staticmethod
    def create_id(broker_id: str, **_: Any) -> UUID:
        return broker_aggregate_id(broker_id)

    @event("BrokerFiled")
    def __init__(
        self,
        *,
        principal: str,
        broker_id: str,
        name: str,
        organisation_credit_code: str,
        filed_on: str,
    ) -> None:
        self.broker_id = broker_id
        self.name = name
        self.organisation_credit_code = organisation_credit_code
        self.filed_on = filed_on


class ProvincialFunding(Aggregate):
    """Provincial funding already granted to a party for a year (不重复支持)."""

    @staticmethod
    def create_id(credit_code: str, year: int, programme: str, **_: Any) -> UUID:
        return funding_aggregate_id(credit_code, year, programme)

    @event("ProvincialFundingRecorded")
    def __init__(
        self, *, principal: str, credit_code: str, year: int, programme: str, amount_fen: int
    ) -> None:
        self.credit_code = credit_code
        self.year = year
        self.programme = programme
        self.amount_fen = amount_fen


class Payout(Aggregate):
    """A payout of one turnover year's subsidies by finance (兑付), recorded as paid: lines
    per beneficiary and category, each a payment or a recovery (追回)."""

    @staticmethod
    def create_id(payout_no: str, **_: Any) -> UUID:
        return payout_aggregate_id(payout_no)

    @event("PayoutRecorded")
    def __init__(
        self,
        *,
        principal: str,
        payout_no: str,
        year: int,
        paid_on: str,
        basis_position: int,
        lines: list[dict[str, Any]],
    ) -> None:
        if not lines:
            raise InvalidCommand("lines", "must hold at least one line", "须至少有一条明细")
        seen: set[tuple[str, str]] = set()
        for index, line in enumerate(lines):
            key = (line["beneficiary"], line["category"])
            if key in seen:
                raise InvalidCommand(
                    f"lines.{index}",
                    f"pays {key[0]} in category {key[1]} a second time: one line per "
                    "beneficiary and category",
                    f"重复拨付 {key[0]} 的 {key[1]} 类别：每个受益方每个类别只能有一条明细",
                )
            if line["amount_fen"] <= 0:
                raise InvalidCommand(f"lines.{index}.amount", "must be positive", "金额须大于零")
            seen.add(key)
        self.payout_no = payout_no
        self.year = year
        self.paid_on = paid_on
        self.basis_position = basis_position
        self.lines = lines


class DemonstrationInstitution(Aggregate):
    """An institution recognised as a technology-transfer demonstration institution
    (技术转移示范机构) at one level, by a document (plan §四(五))."""

    @staticmethod
    def create_id(credit_code: str, level: str, **_: Any) -> UUID:
        return institution_aggregate_id(credit_code, level)

    @event("DemonstrationInstitutionRecognised")
    def __init__(
        self,
        *,
        principal: str,
        credit_code: str,
        name: str,
        level: str,
        recognised_on: str,
        document_no: str,
    ) -> None:
        self.credit_code = credit_code
        self.name = name
        self.level = level
        self.recognised_on = recognised_on
        self.document_no = document_no

    def check_recognised_by(self, day: str) -> None:
        """A demonstration grant is decided only once the institution is recognised."""
        if day < self.recognised_on:
            raise InvalidCommand(
                "decided_on",
                f"must not be before {self.credit_code} was recognised at {self.level} level "
                f"({self.recognised_on})",
                f"决定日期不得早于 {self.credit_code} 获认定为示范机构的日期"
                f"（{self.recognised_on}）",
            )


class OneTimeGrant(Aggregate):
    """A one-time grant (一次性补助) decided by the bureau: to a newly recognised provincial
    demonstration institution, or to a transfer or pilot base with outstanding results (plan
    §四(四)(五), §五(二十)). Not computed: the decided amount is the entitlement."""

    @staticmethod
    def create_id(grant_no: str, **_: Any) -> UUID:
        return grant_aggregate_id(grant_no)

    @event("OneTimeGrantDecided")
    def __init__(
        self,
        *,
        principal: str,
        grant_no: str,
        credit_code: str,
        programme: str,
        amount_fen: int,
        decided_on: str,
        document_no: str,
    ) -> None:
        if amount_fen <= 0:
            raise InvalidCommand("amount", "must be positive", "金额必须大于零")
        self.grant_no = grant_no
        self.credit_code = credit_code
        self.programme = programme
        self.amount_fen = amount_fen
        self.decided_on = decided_on
        self.document_no = document_no


def _check_amounts(contract_fen: int, technology_fen: int) -> None:
    if technology_fen > contract_fen:
        raise InvalidCommand(
            "technology_amount",
            f"must not exceed contract_amount ({format_fen(technology_fen)} yuan is more than "
            f"{format_fen(contract_fen)} yuan)",
            f"技术交易额（{format_fen(technology_fen)} 元）不得超过合同成交额"
            f"（{format_fen(contract_fen)} 元）",
        )


def _broker_twice() -> InvalidCommand:
    return InvalidCommand("brokers", "must not name a broker twice", "同一技术经纪人不得重复列出")
