"""Folding log envelopes, in log order, into the facts the money rules read."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from services.common.payloads import current_payload, skipped_as
from services.common.policy.model import (
    Broker,
    Contract,
    Facts,
    Grant,
    Institution,
    Invoice,
    Party,
    TransferProof,
)

# Types this reader knows that say nothing the money rules read (payouts are read by finance's
# balances and the audit's findings): neither applied nor counted as skipped.
_NOT_FACTS = frozenset({"PayoutRecorded"})


class FactsBuilder:
    """Applies envelopes in log order; an envelope at or below the last position is ignored,
    and one of a type this reader does not know, or of a version of its type newer than it
    reads, is skipped and counted in :attr:`skipped` (a newer registry's event must not stop an
    older reader; the count says to upgrade it). Older versions are read upcast
    (:mod:`services.common.payloads`).

    Mutable for speed over millions of events: a contract's evidence is kept in dicts while
    folding, and :meth:`facts` builds the immutable view once.
    """

    def __init__(self) -> None:
        self._contracts: dict[str, Contract] = {}  # without evidence: that is kept below
        self._invoices: dict[str, dict[str, Invoice]] = {}
        self._proofs: dict[str, dict[str, TransferProof]] = {}
        self._brokers: dict[str, Broker] = {}
        self._funded: set[tuple[str, int]] = set()
        self._grants: dict[str, Grant] = {}
        self._institutions: dict[tuple[str, str], Institution] = {}
        self._parties: dict[tuple[str, ...], Party] = {}  # one object per distinct party
        self.position = 0
        self.skipped: Counter[str] = Counter()  # type (and version) → entries skipped

    def apply_all(self, envelopes: Iterable[Mapping[str, Any]]) -> FactsBuilder:
        # The facts hold no reference cycles, yet millions of new objects keep triggering the
        # cycle collector: measured, it took two thirds of a replay. Paused while folding.
        enabled = gc.isenabled()
        gc.disable()
        try:
            for envelope in envelopes:
                self.apply(envelope)
        finally:
            if enabled:
                gc.enable()
        return self

    def apply(self, envelope: Mapping[str, Any]) -> None:
        position = int(envelope["position"])
        if position <= self.position:
            return
        self.position = position
        kind, p = envelope["type"], current_payload(envelope)
        if p is None:  # a version of its type newer than this reader reads
            self.skipped[skipped_as(envelope)] += 1
        elif kind == "InvoiceRecorded":
            invoice = Invoice(p["invoice_no"], _day(p["issued_on"]), p["amount_fen"])
            self._invoices[p["registration_no"]][invoice.invoice_no] = invoice
        elif kind == "TransferProofRecorded":
            proof = TransferProof(p["serial_no"], _day(p["paid_on"]), p["amount_fen"])
            self._proofs[p["registration_no"]][proof.serial_no] = proof
        elif kind == "InvoiceVoided":
            invoices = self._invoices[p["registration_no"]]
            invoices[p["invoice_no"]] = replace(invoices[p["invoice_no"]], voided=True)
        elif kind == "TransferProofWithdrawn":
            proofs = self._proofs[p["registration_no"]]
            proofs[p["serial_no"]] = replace(proofs[p["serial_no"]], withdrawn=True)
        elif kind == "ContractRegistered":
            no = p["registration_no"]
            self._contracts[no] = Contract(
                registration_no=no,
                registered_on=_day(p["registered_on"]),
                contract_type=p["contract_type"],
                seller=self._party(p["seller"]),
                buyer=self._party(p["buyer"]),
                brokers=tuple(p["brokers"]),
                contract_amount_fen=p["contract_amount_fen"],
                technology_amount_fen=p["technology_amount_fen"],
                related_party=p["related_party"],
            )
            self._invoices[no], self._proofs[no] = {}, {}
        elif kind == "ContractAmended":
            c, ch = self._contracts[p["registration_no"]], p["changes"]
            self._contracts[c.registration_no] = replace(
                c,
                contract_amount_fen=ch.get("contract_amount_fen", c.contract_amount_fen),
                technology_amount_fen=ch.get("technology_amount_fen", c.technology_amount_fen),
                brokers=tuple(ch.get("brokers", c.brokers)),
                related_party=ch.get("related_party", c.related_party),
            )
        elif kind == "ContractCancelled":
            c = self._contracts[p["registration_no"]]
            self._contracts[c.registration_no] = replace(c, cancelled=True)
        elif kind == "BrokerFiled":
            self._brokers[p["broker_id"]] = Broker(p["broker_id"], p["name"], _day(p["filed_on"]))
        elif kind == "ProvincialFundingRecorded":
            self._funded.add((p["credit_code"], int(p["year"])))
        elif kind == "OneTimeGrantDecided":
            self._grants[p["grant_no"]] = Grant(
                p["grant_no"],
                p["credit_code"],
                p["programme"],
                p["amount_fen"],
                _day(p["decided_on"]),
                p["document_no"],
            )
        elif kind == "DemonstrationInstitutionRecognised":
            self._institutions[(p["credit_code"], p["level"])] = Institution(
                p["credit_code"],
                p["name"],
                p["level"],
                _day(p["recognised_on"]),
                p["document_no"],
            )
        elif kind in _NOT_FACTS:
            pass
        else:
            self.skipped[kind] += 1

    def _party(self, p: Mapping[str, str]) -> Party:
        key = (p["credit_code"], p["name"], p["kind"], p["region_code"])
        party = self._parties.get(key)
        if party is None:
            party = self._parties[key] = Party(*key)
        return party

    def facts(self) -> Facts:
        return Facts(
            contracts={
                no: replace(
                    c,
                    invoices=tuple(self._invoices[no].values()),
                    transfer_proofs=tuple(self._proofs[no].values()),
                )
                for no, c in self._contracts.items()
            },
            brokers=dict(self._brokers),
            funded=frozenset(self._funded),
            position=self.position,
            grants=tuple(self._grants[no] for no in sorted(self._grants)),
            institutions=tuple(self._institutions[k] for k in sorted(self._institutions)),
        )


def _day(text: str) -> date:
    return date.fromisoformat(text)
