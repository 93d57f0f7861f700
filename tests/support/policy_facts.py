"""Builders for the policy engine's inputs: parties, contracts, facts, policies, log envelopes.

Values mirror what the registry accepts (valid credit codes, GB/T 2260 region codes, integer
fen); envelopes have the shape of ``services/registry/log.py`` and ``schemas/events/*.json``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from fractions import Fraction
from typing import Any

from services.common.envelope import GENESIS_HASH, entry_hash
from services.common.policy.model import (
    Broker,
    CategoryRule,
    Contract,
    Entitlement,
    Facts,
    Grant,
    Invoice,
    Party,
    Policy,
    TransferProof,
)
from tests.support.parties import credit_code

YUAN = 100  # fen per yuan

# The bundled schemas/policy/pingdingshan-2020.toml, written out by hand.
PINGDINGSHAN_2020 = Policy(
    version="pingdingshan-2020.1",
    city_prefix="4104",
    first_year=2020,
    last_year=2025,
    registration_window_years=2,
    eligible_contract_types=frozenset({"development", "transfer", "licensing"}),
    evidence_ceiling="contract_amount",
    categories={
        "absorption": CategoryRule(rate=Fraction(1, 10), cap_fen=500_000 * YUAN),
        "output": CategoryRule(rate=Fraction(1, 10), cap_fen=500_000 * YUAN),
        "broker": CategoryRule(rate=Fraction(1, 100), cap_fen=200_000 * YUAN),
    },
)
TECHNOLOGY_CEILING = dataclasses.replace(PINGDINGSHAN_2020, evidence_ceiling="technology_amount")

LOCAL_REGIONS = ("410402", "410403", "410404", "410411", "410421", "410422", "410482")
OUTSIDE_REGIONS = ("110108", "310115")

_CODE_PREFIX = {
    "enterprise": "91",
    "university": "12",
    "research_institute": "12",
    "new_rd_institution": "52",
    "other": "93",
}


def party(kind: str, region_code: str, serial: int, name: str | None = None) -> Party:
    """A party with a valid credit code derived from its kind, region and a serial number."""
    first17 = f"{_CODE_PREFIX[kind]}{region_code}MA{serial:07d}"
    return Party(credit_code(first17), name or f"{kind}-{region_code}-{serial}", kind, region_code)


LOCAL_FIRM = party("enterprise", "410403", 1, "平顶山煤矿机械有限公司")
OTHER_LOCAL_FIRM = party("enterprise", "410482", 2, "汝州新材料有限公司")
LOCAL_OTHER = party("other", "410411", 3, "湛河区技术服务中心")
LOCAL_UNIVERSITY = party("university", "410402", 4, "平顶山学院")
LOCAL_INSTITUTE = party("research_institute", "410404", 5, "平顶山煤炭研究所")
LOCAL_NEW_RD = party("new_rd_institution", "410421", 6, "宝丰新型研发中心")
OUTSIDE_FIRM = party("enterprise", "110108", 7, "北京智造科技有限公司")
OUTSIDE_FIRM_SH = party("enterprise", "310115", 8, "上海浦东软件有限公司")
OUTSIDE_UNIVERSITY = party("university", "110108", 9, "北京理工示例大学")


def contract(
    registration_no: str = "2024410400000001",
    *,
    seller: Party = OUTSIDE_FIRM,
    buyer: Party = LOCAL_FIRM,
    registered_on: date = date(2024, 3, 1),
    contract_type: str = "development",
    brokers: Sequence[str] = (),
    amount_fen: int = 1_200_000 * YUAN,
    technology_fen: int | None = None,
    related_party: bool = False,
    cancelled: bool = False,
    invoices: Sequence[tuple[date, int]] = (),
    proofs: Sequence[tuple[date, int]] = (),
    settled: Sequence[tuple[date, int]] = (),
) -> Contract:
    """A registered contract; ``settled`` adds an invoice and a transfer proof per (day, fen)."""
    all_invoices = [*invoices, *settled]
    all_proofs = [*proofs, *settled]
    return Contract(
        registration_no=registration_no,
        registered_on=registered_on,
        contract_type=contract_type,
        seller=seller,
        buyer=buyer,
        brokers=tuple(brokers),
        contract_amount_fen=amount_fen,
        technology_amount_fen=amount_fen if technology_fen is None else technology_fen,
        related_party=related_party,
        cancelled=cancelled,
        invoices=tuple(
            Invoice(f"INV-{registration_no}-{i}", day, fen)
            for i, (day, fen) in enumerate(all_invoices, 1)
        ),
        transfer_proofs=tuple(
            TransferProof(f"BANK-{registration_no}-{i}", day, fen)
            for i, (day, fen) in enumerate(all_proofs, 1)
        ),
    )


def broker(broker_id: str, filed_on: date) -> Broker:
    return Broker(broker_id, f"经纪人 {broker_id}", filed_on)


def facts(
    *contracts: Contract,
    brokers: Iterable[Broker] = (),
    funded: Iterable[tuple[str, int]] = (),
    position: int = 0,
) -> Facts:
    """Facts holding exactly these contracts, filed brokers and provincial fundings."""
    return Facts(
        contracts={c.registration_no: c for c in contracts},
        brokers={b.broker_id: b for b in brokers},
        funded=frozenset(funded),
        position=position,
    )


def by_key(result: Iterable[Entitlement]) -> dict[tuple[str, str], Entitlement]:
    """Entitlements keyed by (category, beneficiary)."""
    return {(e.category, e.beneficiary): e for e in result}


# --- log envelopes -------------------------------------------------------------------------

Event = tuple[str, dict[str, Any]]  # (type, payload) before the registry numbers it

_SUBJECT = {
    "BrokerFiled": "broker_id",
    "ProvincialFundingRecorded": "credit_code",
    "OneTimeGrantDecided": "grant_no",
}
_NAMESPACE = uuid.UUID("0b8f4f4e-6a55-4d1c-9a43-7d0c1f1b2e10")


def numbered(
    events: Iterable[Event],
    start: int = 1,
    *,
    after: dict[str, Any] | None = None,
    recorded_at: str = "2026-11-02T08:00:00.000000Z",
) -> list[dict[str, Any]]:
    """Envelopes for ``events`` in the order given, at positions from ``start`` (or following
    the envelope ``after``, chained onto it), hash-chained, each recorded at ``recorded_at``."""
    envelopes = []
    prev_hash = GENESIS_HASH if after is None else after["hash"]
    start = start if after is None else int(after["position"]) + 1
    for position, (kind, payload) in enumerate(events, start):
        subject = payload[_SUBJECT.get(kind, "registration_no")]
        envelope: dict[str, Any] = {
            "position": position,
            "event_id": str(uuid.uuid5(_NAMESPACE, f"{subject}/{position}")),
            "type": kind,
            "schema_version": 1,  # the payloads below are as version 1 of each type says
            "recorded_at": recorded_at,
            "principal": "bureau" if kind in _SUBJECT else "station-s1",
            "subject": subject,
            "payload": payload,
            "prev_hash": prev_hash,
        }
        envelope["hash"] = prev_hash = entry_hash(prev_hash, envelope)
        envelopes.append(envelope)
    return envelopes


def _party_payload(p: Party) -> dict[str, str]:
    return {
        "credit_code": p.credit_code,
        "name": p.name,
        "kind": p.kind,
        "region_code": p.region_code,
    }


def registered(c: Contract, **overrides: Any) -> Event:
    """ContractRegistered for ``c`` (its amounts, brokers and flag, unless overridden)."""
    payload: dict[str, Any] = {
        "registration_no": c.registration_no,
        "station_id": "S1",
        "registered_on": c.registered_on.isoformat(),
        "signed_on": c.registered_on.replace(day=1).isoformat(),
        "title": f"技术合同 {c.registration_no}",
        "contract_type": c.contract_type,
        "domain": "advanced manufacturing",
        "seller": _party_payload(c.seller),
        "buyer": _party_payload(c.buyer),
        "brokers": list(c.brokers),
        "contract_amount_fen": c.contract_amount_fen,
        "technology_amount_fen": c.technology_amount_fen,
        "related_party": c.related_party,
    }
    payload.update(overrides)
    return "ContractRegistered", payload


def amended(registration_no: str, **changes: Any) -> Event:
    return "ContractAmended", {
        "registration_no": registration_no,
        "amended_on": "2025-06-01",
        "reason": "变更登记",
        "changes": changes,
    }


def cancelled(registration_no: str) -> Event:
    return "ContractCancelled", {
        "registration_no": registration_no,
        "cancelled_on": "2025-06-01",
        "reason": "注销登记",
    }


def invoice_recorded(c: Contract, invoice: Invoice) -> Event:
    return "InvoiceRecorded", {
        "registration_no": c.registration_no,
        "invoice_no": invoice.invoice_no,
        "issued_on": invoice.issued_on.isoformat(),
        "amount_fen": invoice.amount_fen,
        "issuer_credit_code": c.seller.credit_code,
        "recipient_credit_code": c.buyer.credit_code,
    }


def invoice_voided(registration_no: str, invoice_no: str) -> Event:
    return "InvoiceVoided", {
        "registration_no": registration_no,
        "invoice_no": invoice_no,
        "voided_on": "2025-06-01",
        "reason": "红冲",
    }


def proof_recorded(c: Contract, proof: TransferProof) -> Event:
    return "TransferProofRecorded", {
        "registration_no": c.registration_no,
        "serial_no": proof.serial_no,
        "paid_on": proof.paid_on.isoformat(),
        "amount_fen": proof.amount_fen,
        "payer_credit_code": c.buyer.credit_code,
        "payee_credit_code": c.seller.credit_code,
        "bank": "中国银行平顶山分行",
    }


def proof_withdrawn(registration_no: str, serial_no: str) -> Event:
    return "TransferProofWithdrawn", {
        "registration_no": registration_no,
        "serial_no": serial_no,
        "withdrawn_on": "2025-06-01",
        "reason": "凭证有误",
    }


def broker_filed(b: Broker) -> Event:
    return "BrokerFiled", {
        "broker_id": b.broker_id,
        "name": b.name,
        "organisation_credit_code": LOCAL_OTHER.credit_code,
        "filed_on": b.filed_on.isoformat(),
    }


def funding_recorded(credit_code: str, year: int, amount_fen: int = 100_000 * YUAN) -> Event:
    return "ProvincialFundingRecorded", {
        "credit_code": credit_code,
        "year": year,
        "programme": "河南省技术转移奖补",
        "amount_fen": amount_fen,
    }


def grant_decided(g: Grant) -> Event:
    return "OneTimeGrantDecided", {
        "grant_no": g.grant_no,
        "credit_code": g.credit_code,
        "programme": g.programme,
        "amount_fen": g.amount_fen,
        "decided_on": g.decided_on.isoformat(),
        "document_no": g.document_no,
    }


def contract_events(c: Contract, **registered_as: Any) -> list[Event]:
    """The events a registry logs for ``c``, in an order it could have logged them.

    ``registered_as`` registers with other amounts, brokers or related-party flag, then amends
    them to ``c``'s; evidence is recorded, then voided or withdrawn, then the contract cancelled.
    Folded through a FactsBuilder, the events give back ``c``.
    """
    events = [registered(c, **registered_as)]
    events += [invoice_recorded(c, i) for i in c.invoices]
    events += [proof_recorded(c, p) for p in c.transfer_proofs]
    if registered_as:
        current = {
            "contract_amount_fen": c.contract_amount_fen,
            "technology_amount_fen": c.technology_amount_fen,
            "brokers": list(c.brokers),
            "related_party": c.related_party,
        }
        events.append(amended(c.registration_no, **{k: current[k] for k in registered_as}))
    events += [invoice_voided(c.registration_no, i.invoice_no) for i in c.invoices if i.voided]
    events += [
        proof_withdrawn(c.registration_no, p.serial_no) for p in c.transfer_proofs if p.withdrawn
    ]
    if c.cancelled:
        events.append(cancelled(c.registration_no))
    return events


def with_invoices_voided(c: Contract, *invoice_nos: str) -> Contract:
    """``c`` after the named invoices were voided (红冲); all of them when none is named."""
    chosen = set(invoice_nos) or {i.invoice_no for i in c.invoices}
    invoices = tuple(
        dataclasses.replace(i, voided=True) if i.invoice_no in chosen else i for i in c.invoices
    )
    return dataclasses.replace(c, invoices=invoices)


def with_proofs_withdrawn(c: Contract, *serial_nos: str) -> Contract:
    """``c`` after the named transfer proofs were withdrawn; all of them when none is named."""
    chosen = set(serial_nos) or {p.serial_no for p in c.transfer_proofs}
    proofs = tuple(
        dataclasses.replace(p, withdrawn=True) if p.serial_no in chosen else p
        for p in c.transfer_proofs
    )
    return dataclasses.replace(c, transfer_proofs=proofs)
