"""FactsBuilder: log envelopes, in log order, folded into the facts the money rules read."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from services.common.policy.facts import FactsBuilder
from services.common.policy.model import Broker, Contract, Facts, Invoice, TransferProof
from tests.support.policy_facts import (
    LOCAL_FIRM,
    LOCAL_UNIVERSITY,
    OUTSIDE_FIRM,
    YUAN,
    Event,
    amended,
    broker,
    broker_filed,
    cancelled,
    contract,
    contract_events,
    funding_recorded,
    invoice_recorded,
    invoice_voided,
    numbered,
    proof_recorded,
    proof_withdrawn,
    registered,
)

C = contract(
    "2024410400000001",
    seller=LOCAL_UNIVERSITY,
    buyer=LOCAL_FIRM,
    registered_on=date(2024, 3, 1),
    contract_type="transfer",
    brokers=["B1", "B2"],
    amount_fen=1_200_000 * YUAN,
    technology_fen=1_000_000 * YUAN,
)
INVOICE = Invoice("INV-1", date(2024, 4, 1), 600_000 * YUAN)
PROOF = TransferProof("BANK-1", date(2024, 4, 15), 600_000 * YUAN)


def fold(*events: Event) -> Facts:
    return FactsBuilder().apply_all(numbered(events)).facts()


def test_contract_registered_adds_the_contract_as_registered() -> None:
    f = fold(registered(C))

    assert f.contracts == {C.registration_no: C}
    assert f.contracts[C.registration_no].seller == LOCAL_UNIVERSITY
    assert f.contracts[C.registration_no].brokers == ("B1", "B2")
    assert not f.contracts[C.registration_no].cancelled
    assert f.position == 1


def test_contract_amended_replaces_the_changed_fields_only() -> None:
    f = fold(
        registered(C),
        amended(C.registration_no, contract_amount_fen=900_000 * YUAN, related_party=True),
    )

    assert f.contracts[C.registration_no] == dataclasses.replace(
        C, contract_amount_fen=900_000 * YUAN, related_party=True
    )


def test_contract_amended_can_replace_the_brokers_and_the_technology_amount() -> None:
    f = fold(
        registered(C),
        amended(C.registration_no, brokers=["B3"], technology_amount_fen=500_000 * YUAN),
    )

    assert f.contracts[C.registration_no] == dataclasses.replace(
        C, brokers=("B3",), technology_amount_fen=500_000 * YUAN
    )


def test_contract_amended_in_title_only_changes_no_fact() -> None:
    f = fold(registered(C), amended(C.registration_no, title="新标题"))

    assert f.contracts[C.registration_no] == C


def test_contract_cancelled_marks_the_contract_cancelled_keeping_its_evidence() -> None:
    f = fold(registered(C), invoice_recorded(C, INVOICE), cancelled(C.registration_no))

    assert f.contracts[C.registration_no] == dataclasses.replace(
        C, cancelled=True, invoices=(INVOICE,)
    )


def test_invoice_recorded_is_added_to_its_contract() -> None:
    other = dataclasses.replace(INVOICE, invoice_no="INV-2", issued_on=date(2025, 1, 2))

    f = fold(registered(C), invoice_recorded(C, INVOICE), invoice_recorded(C, other))

    assert f.contracts[C.registration_no].invoices == (INVOICE, other)
    assert f.contracts[C.registration_no].transfer_proofs == ()


def test_invoice_voided_voids_that_invoice_only() -> None:
    other = dataclasses.replace(INVOICE, invoice_no="INV-2")

    f = fold(
        registered(C),
        invoice_recorded(C, INVOICE),
        invoice_recorded(C, other),
        invoice_voided(C.registration_no, "INV-1"),
    )

    assert f.contracts[C.registration_no].invoices == (
        dataclasses.replace(INVOICE, voided=True),
        other,
    )


def test_transfer_proof_recorded_is_added_to_its_contract() -> None:
    f = fold(registered(C), proof_recorded(C, PROOF))

    assert f.contracts[C.registration_no].transfer_proofs == (PROOF,)
    assert f.contracts[C.registration_no].invoices == ()


def test_transfer_proof_withdrawn_withdraws_that_proof_only() -> None:
    other = dataclasses.replace(PROOF, serial_no="BANK-2")

    f = fold(
        registered(C),
        proof_recorded(C, PROOF),
        proof_recorded(C, other),
        proof_withdrawn(C.registration_no, "BANK-2"),
    )

    assert f.contracts[C.registration_no].transfer_proofs == (
        PROOF,
        dataclasses.replace(other, withdrawn=True),
    )


def test_evidence_goes_to_its_own_contract() -> None:
    d = contract("2024410400000002", seller=OUTSIDE_FIRM, buyer=LOCAL_FIRM)

    f = fold(registered(C), registered(d), invoice_recorded(d, INVOICE), proof_recorded(C, PROOF))

    assert f.contracts[C.registration_no] == dataclasses.replace(C, transfer_proofs=(PROOF,))
    assert f.contracts[d.registration_no] == dataclasses.replace(d, invoices=(INVOICE,))


def test_broker_filed_adds_the_broker_with_its_filing_day() -> None:
    f = fold(broker_filed(broker("B1", date(2024, 5, 6))))

    assert f.brokers == {"B1": Broker("B1", "经纪人 B1", date(2024, 5, 6))}
    assert f.contracts == {}


def test_provincial_funding_recorded_adds_the_credit_code_and_year() -> None:
    f = fold(
        funding_recorded(LOCAL_UNIVERSITY.credit_code, 2024),
        funding_recorded(LOCAL_UNIVERSITY.credit_code, 2025),
    )

    assert f.funded == {(LOCAL_UNIVERSITY.credit_code, 2024), (LOCAL_UNIVERSITY.credit_code, 2025)}


def test_facts_carry_the_position_of_the_last_applied_envelope() -> None:
    builder = FactsBuilder()
    assert builder.facts() == Facts()

    builder.apply_all(numbered([registered(C), invoice_recorded(C, INVOICE)], start=41))

    assert builder.position == 42
    assert builder.facts().position == 42


def test_an_event_of_a_type_this_reader_does_not_know_is_skipped_and_counted() -> None:
    inspected = ("ContractInspected", {"registration_no": C.registration_no})
    envelopes = numbered([registered(C), inspected, invoice_recorded(C, INVOICE), inspected])

    builder = FactsBuilder().apply_all(envelopes)

    assert builder.skipped == {"ContractInspected": 2}
    assert builder.position == 4
    assert builder.facts().contracts[C.registration_no].invoices == (INVOICE,)


def test_duplicate_delivery_changes_nothing() -> None:
    envelopes = numbered(contract_events(dataclasses.replace(C, invoices=(INVOICE,))))
    builder = FactsBuilder().apply_all(envelopes)
    once = builder.facts()

    builder.apply_all(envelopes)  # the relay published everything again
    builder.apply(envelopes[-1])

    assert builder.facts() == once
    assert once.contracts[C.registration_no].invoices == (INVOICE,)  # not twice


def test_envelope_below_the_last_position_is_ignored_whatever_it_holds() -> None:
    builder = FactsBuilder().apply_all(numbered([registered(C), invoice_recorded(C, INVOICE)]))
    before = builder.facts()
    stale: dict[str, Any] = {
        **numbered([cancelled(C.registration_no)])[0],
        "position": 1,
    }

    builder.apply(stale)
    builder.apply({**stale, "position": 2})  # at the last position: also already applied

    assert builder.facts() == before
    assert not builder.facts().contracts[C.registration_no].cancelled


def test_facts_are_a_snapshot_unaffected_by_later_envelopes() -> None:
    envelopes = numbered(
        [registered(C), broker_filed(broker("B1", date(2024, 1, 1))), cancelled(C.registration_no)]
    )
    builder = FactsBuilder()
    builder.apply_all(envelopes[:2])
    snapshot = builder.facts()

    builder.apply(envelopes[2])

    assert snapshot.contracts[C.registration_no] == C
    assert snapshot.position == 2
    assert builder.facts().contracts[C.registration_no].cancelled


def test_contract_events_fold_back_into_the_contract() -> None:
    full: Contract = dataclasses.replace(
        C,
        cancelled=True,
        invoices=(dataclasses.replace(INVOICE, voided=True),),
        transfer_proofs=(PROOF,),
    )

    f = fold(*contract_events(full, contract_amount_fen=2_000_000 * YUAN, brokers=[]))

    assert f.contracts == {C.registration_no: full}
