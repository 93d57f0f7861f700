"""The incremental subsidy projection: a run of log entries, in log order, into the facts they
change and the claims, entitlements and totals those facts change, each as a new version.

An entry costs what it touches: an event on a contract recomputes that contract's claims (the
policy engine's ``contract_claims``) and, where a claim changed, that beneficiary's entitlement
from its running turnover; a broker's filing or a funding record recomputes the contracts that
name that broker or seller. Nothing here reads the log or the database: a :class:`StoredState`
answers for what was stored before the run began, and :class:`Projection` collects the rows
the run writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from functools import lru_cache
from typing import Any, NamedTuple, Protocol, cast

from services.common.payloads import current_payload, skipped_as
from services.common.policy.engine import (
    amounts,
    contract_claims,
    evidence_years,
    one_time_amounts,
)
from services.common.policy.model import (
    Broker,
    Category,
    Contract,
    ExclusionReason,
    Invoice,
    Party,
    TransferProof,
)
from services.common.policy.schedule import PolicySchedule
from services.subsidy.tables import ALL_COUNTIES
from services.subsidy.versions import Versions

ClaimKey = tuple[int, str, str, str]  # year, category, beneficiary, registration number
EntitlementKey = tuple[int, str, str]  # year, category, beneficiary
TotalKey = tuple[int, str, str]  # year, category, county
Fen = int | Fraction  # exact amounts of fen: whole ones as int, brokers' split shares as Fraction

CONTRACT_EVENTS = frozenset(
    {
        "ContractRegistered",
        "ContractAmended",
        "ContractCancelled",
        "InvoiceRecorded",
        "InvoiceVoided",
        "TransferProofRecorded",
        "TransferProofWithdrawn",
    }
)
KNOWN_EVENTS = CONTRACT_EVENTS | {
    "BrokerFiled",
    "ProvincialFundingRecorded",
    "PayoutRecorded",
    "OneTimeGrantDecided",
    "DemonstrationInstitutionRecognised",  # known, and changes no entitlement
}
ONE_TIME = "one_time"
_PREFETCHED = CONTRACT_EVENTS | {"BrokerFiled", "ProvincialFundingRecorded"}


class ProjectionError(ValueError):
    """An entry that cannot be applied to the facts (it names what the log never recorded)."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


# The values a run makes by the hundred thousand are named tuples: made and compared in C, where
# a frozen dataclass sets each field through object.__setattr__ and compares by building tuples
# (7 % of a catch-up's computing).


class ClaimValue(NamedTuple):
    name: str
    region_code: str
    share: Fen
    reason: ExclusionReason | None


class EntitlementValue(NamedTuple):
    name: str
    region_code: str
    first_registration_no: str
    claims: int
    turnover: Fen
    gross_fen: int
    entitlement_fen: int


class TotalValue(NamedTuple):
    beneficiaries: int
    turnover: Fen
    gross_fen: int
    entitlement_fen: int

    def plus(self, e: EntitlementValue, sign: int) -> TotalValue:
        turnover = self.turnover + e.turnover if sign > 0 else self.turnover - e.turnover
        return TotalValue(
            self.beneficiaries + sign,
            turnover,
            self.gross_fen + sign * e.gross_fen,
            self.entitlement_fen + sign * e.entitlement_fen,
        )


NO_TOTAL = TotalValue(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class PaidLine:
    """A payout's line, with the name and county its entitlement had when it was applied."""

    category: str
    beneficiary: str
    kind: str  # payment | recovery
    amount_fen: int
    name: str
    region_code: str


@dataclass(frozen=True, slots=True)
class PayoutApplied:
    position: int
    payout_no: str
    year: int
    paid_on: str
    basis_position: int
    lines: tuple[PaidLine, ...]


@dataclass(frozen=True, slots=True)
class GrantFacts:
    """A one-time grant as decided: what explains a one_time entitlement."""

    grant_no: str
    credit_code: str
    year: int
    programme: str
    amount_fen: int
    decided_on: str
    document_no: str


@dataclass(frozen=True, slots=True)
class BrokerFacts:
    name: str
    filed_on: date
    region_code: str  # of the broker's organisation (its credit code's characters 3–8)


class StoredState(Protocol):
    """What the store held before the run: current rows, with the position they hold from."""

    def contracts(self, numbers: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def brokers(self, ids: Iterable[str]) -> dict[str, BrokerFacts]: ...
    def funded(self, credit_codes: Iterable[str]) -> set[tuple[str, int]]: ...
    def roles(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[str]]: ...
    def claims(self, numbers: set[str]) -> dict[ClaimKey, tuple[ClaimValue, int]]: ...
    def first_claims(self, key: EntitlementKey, limit: int) -> list[tuple[str, ClaimValue]]: ...
    def entitlements(
        self, beneficiaries: set[str]
    ) -> dict[EntitlementKey, tuple[EntitlementValue, int]]: ...
    def totals(self, counties: set[str]) -> dict[TotalKey, tuple[TotalValue, int]]: ...


@dataclass
class _Lookup(Mapping[str, Broker]):
    """The brokers a contract names, as the engine reads them, loaded on first use."""

    projection: Projection

    def __getitem__(self, broker_id: str) -> Broker:
        facts = self.projection.broker(broker_id)
        if facts is None:
            raise KeyError(broker_id)
        return Broker(broker_id, facts.name, facts.filed_on)

    def __iter__(self) -> Any:
        raise NotImplementedError("the engine only looks brokers up")

    def __len__(self) -> int:
        raise NotImplementedError("the engine only looks brokers up")


@dataclass
class _Funded:
    projection: Projection

    def __contains__(self, item: object) -> bool:
        code, year = cast(tuple[str, int], item)
        return self.projection.is_funded(code, year)


@dataclass
class Projection:
    """One run of entries over the stored state; read the rows to write when it is done."""

    stored: StoredState
    schedule: PolicySchedule  # each turnover year under its own version
    contracts: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    changed_contracts: set[str] = field(default_factory=set)
    new_brokers: dict[str, BrokerFacts] = field(default_factory=dict)
    new_funding: set[tuple[str, int]] = field(default_factory=set)
    # (party, role) → contract numbers: who is seller or broker where, added by this run.
    new_roles: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)  # types this reader does not know
    payouts: list[PayoutApplied] = field(default_factory=list)
    new_grants: list[GrantFacts] = field(default_factory=list)
    # What the run knows, read or changed (``carried`` reads them once it is done). A broker
    # or contract known to be absent is None.
    brokers_read: dict[str, BrokerFacts | None] = field(default_factory=dict)
    funding_read: set[str] = field(default_factory=set)  # credit codes…
    funded_read: set[tuple[str, int]] = field(default_factory=set)  # …and their years funded
    roles_read: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # as stored
    claims_of: dict[str, dict[EntitlementKey, ClaimValue]] = field(default_factory=dict)
    # The other way round: which of those contracts have a claim on an entitlement.
    claimants: dict[EntitlementKey, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read by contract, by beneficiary and by county.
        self.claims: Versions[ClaimKey, ClaimValue, str] = Versions(
            lambda key: key[3], self.stored.claims
        )
        self.entitlements: Versions[EntitlementKey, EntitlementValue, str] = Versions(
            lambda key: key[2], self.stored.entitlements
        )
        self.totals: Versions[TotalKey, TotalValue, str] = Versions(
            lambda key: key[2], self.stored.totals
        )
        self._years = self.schedule.years

    # -- a run ---------------------------------------------------------------------------------

    def apply_all(self, envelopes: list[dict[str, Any]]) -> Projection:
        """Apply entries in log order, after reading in a few queries what they will touch."""
        self._prefetch(envelopes)
        for envelope in envelopes:
            try:
                self.apply(envelope)
            except ProjectionError as exc:
                exc.position = exc.position or envelope.get("position")
                raise
            except (KeyError, TypeError, ValueError) as exc:  # a payload not as its schema says
                position = envelope.get("position")
                raise ProjectionError(
                    f"position {position}: {envelope.get('type')} cannot be applied "
                    f"({type(exc).__name__}: {exc})",
                    position,
                ) from exc
        return self

    def apply(self, envelope: Mapping[str, Any]) -> None:
        position, kind = int(envelope["position"]), envelope["type"]
        p = current_payload(envelope) if kind in KNOWN_EVENTS else None
        if p is None:  # a type, or a version of one, this reader does not read
            self.skipped[skipped_as(envelope)] += 1
            return
        if kind == "BrokerFiled":
            broker_id = p["broker_id"]
            filed = BrokerFacts(
                p["name"], _day(p["filed_on"]), _region(p.get("organisation_credit_code"))
            )
            self.new_brokers[broker_id] = self.brokers_read[broker_id] = filed
            for no in sorted(self._roles(broker_id, "broker")):
                self._recompute(no, position)
            return
        if kind == "PayoutRecorded":
            self._payout(position, p)
            return
        if kind == "OneTimeGrantDecided":
            self._grant(position, p)
            return
        if kind == "DemonstrationInstitutionRecognised":
            return
        if kind == "ProvincialFundingRecorded":
            code, year = p["credit_code"], int(p["year"])
            if self.is_funded(code, year):  # another programme's funding of the same year
                return
            self.funded_read.add((code, year))
            self.new_funding.add((code, year))
            for no in sorted(self._roles(code, "seller")):
                self._recompute(no, position)
            return
        no = p["registration_no"]
        if kind == "ContractRegistered":
            self._load_contracts([no])
            self.contracts[no] = _registered(p)
            self.claims_of.setdefault(no, {})
            self._add_role(p["seller"]["credit_code"], "seller", no)
            for broker_id in p["brokers"]:
                self._add_role(broker_id, "broker", no)
        else:
            record = self._contract(no, position, kind)
            _change(record, kind, p)
            if kind == "ContractAmended" and "brokers" in p["changes"]:
                for broker_id in p["changes"]["brokers"]:
                    self._add_role(broker_id, "broker", no)
        self.changed_contracts.add(no)
        self._recompute(no, position)

    def _payout(self, position: int, p: Mapping[str, Any]) -> None:
        year = int(p["year"])
        lines = []
        for line in p["lines"]:
            entitled = self.entitlements.get((year, line["category"], line["beneficiary"]))
            lines.append(
                PaidLine(
                    line["category"],
                    line["beneficiary"],
                    line["kind"],
                    int(line["amount_fen"]),
                    entitled.name if entitled else "",
                    entitled.region_code if entitled else "",
                )
            )
        self.payouts.append(
            PayoutApplied(
                position, p["payout_no"], year, p["paid_on"], int(p["basis_position"]), tuple(lines)
            )
        )

    def _grant(self, position: int, p: Mapping[str, Any]) -> None:
        """A grant is one claim of its beneficiary's one_time entitlement of the year decided,
        under its grant number: it recomputes that entitlement alone."""
        grant = GrantFacts(
            p["grant_no"],
            p["credit_code"],
            _day(p["decided_on"]).year,
            p["programme"],
            int(p["amount_fen"]),
            p["decided_on"],
            p["document_no"],
        )
        self.new_grants.append(grant)
        if grant.year not in self._years:
            return
        key: EntitlementKey = (grant.year, ONE_TIME, grant.credit_code)
        claim = ClaimValue("", _region(grant.credit_code), grant.amount_fen, None)
        self.claims.set((*key, grant.grant_no), claim, position)
        self._entitlement_changed(key, grant.grant_no, None, claim, position)

    # -- facts ---------------------------------------------------------------------------------

    def broker(self, broker_id: str) -> BrokerFacts | None:
        if broker_id not in self.brokers_read:
            self.brokers_read.update(self._read_brokers([broker_id]))
        return self.brokers_read[broker_id]

    def is_funded(self, credit_code: str, year: int) -> bool:
        if credit_code not in self.funding_read:
            self._read_funding([credit_code])
        return (credit_code, year) in self.funded_read

    def _read_brokers(self, ids: Iterable[str]) -> dict[str, BrokerFacts | None]:
        wanted = [i for i in ids if i not in self.brokers_read]
        found = self.stored.brokers(wanted) if wanted else {}
        return {i: found.get(i) for i in wanted}

    def _read_funding(self, codes: Iterable[str]) -> None:
        wanted = {c for c in codes if c not in self.funding_read}
        if wanted:
            self.funded_read |= self.stored.funded(wanted)
            self.funding_read |= wanted

    def _roles(self, party: str, role: str) -> set[str]:
        self._read_roles([(party, role)])
        numbers = self.roles_read[(party, role)] | self.new_roles.get((party, role), set())
        self._load_contracts(numbers)
        return numbers

    def _read_roles(self, pairs: Iterable[tuple[str, str]]) -> None:
        wanted = {pair for pair in pairs if pair not in self.roles_read}
        if wanted:
            found = self.stored.roles(wanted)
            self.roles_read.update({pair: found.get(pair, set()) for pair in wanted})

    def _add_role(self, party: str, role: str, no: str) -> None:
        self.new_roles.setdefault((party, role), set()).add(no)

    def _contract(self, no: str, position: int, kind: str) -> dict[str, Any]:
        self._load_contracts([no])
        record = self.contracts[no]
        if record is None:
            raise ProjectionError(
                f"position {position}: {kind} names contract {no}, which the log never registered",
                position,
            )
        return record

    def _load_contracts(self, numbers: Iterable[str]) -> None:
        wanted = [no for no in numbers if no not in self.contracts]
        if not wanted:
            return
        found = self.stored.contracts(wanted)
        for no in wanted:
            self.contracts[no] = found.get(no)
            self.claims_of[no] = {}
        stored = self.stored.claims(set(wanted))
        self.claims.loaded(wanted, stored)
        for key, (value, _) in stored.items():
            self.claims_of[key[3]][key[:3]] = value
            self.claimants.setdefault(key[:3], set()).add(key[3])
        self._read_brokers_of(found.values())

    def _read_brokers_of(self, records: Iterable[Mapping[str, Any]]) -> None:
        ids = {b for r in records for b in r["brokers"]}
        self.brokers_read.update(self._read_brokers(ids))
        self._read_funding(r["seller"]["credit_code"] for r in records)

    def _prefetch(self, envelopes: list[dict[str, Any]]) -> None:
        numbers: set[str] = set()
        registered: list[Mapping[str, Any]] = []
        # Whose contracts a filing or a funding record recomputes: read at once (a query each
        # was an eighth of a catch-up's time).
        pairs: set[tuple[str, str]] = set()
        named: set[str] = set()  # brokers an amendment names
        for e in envelopes:
            kind = e["type"]
            p = current_payload(e) if kind in _PREFETCHED else None
            if p is None:
                continue
            if kind == "BrokerFiled":
                pairs.add((p["broker_id"], "broker"))
            elif kind == "ProvincialFundingRecorded":
                pairs.add((p["credit_code"], "seller"))
            else:
                numbers.add(p["registration_no"])
                if kind == "ContractRegistered":
                    registered.append(p)
                elif kind == "ContractAmended":
                    named.update(p["changes"].get("brokers", ()))
        self._read_roles(pairs)
        numbers.update(*self.roles_read.values())
        self._load_contracts(numbers)
        self._read_brokers_of(registered)  # the stored ones' are read with them
        # Else read one at a time as each amended contract's claims are computed: 3 s of a
        # catch-up of 1M entries waiting for PostgreSQL.
        self.brokers_read.update(self._read_brokers(named))
        records: list[Mapping[str, Any]] = [r for r in self.contracts.values() if r is not None]
        records += registered
        beneficiaries = {b for r in records for b in r["brokers"]}
        beneficiaries |= {r[side]["credit_code"] for r in records for side in ("buyer", "seller")}
        paid = (current_payload(e) for e in envelopes if e["type"] == "PayoutRecorded")
        beneficiaries |= {line["beneficiary"] for p in paid if p is not None for line in p["lines"]}
        granted = (current_payload(e) for e in envelopes if e["type"] == "OneTimeGrantDecided")
        beneficiaries |= {p["credit_code"] for p in granted if p is not None}
        self.entitlements.prefetch(beneficiaries)
        counties = {r[side]["region_code"] for r in records for side in ("buyer", "seller")}
        counties |= {ALL_COUNTIES, ""} | {b.region_code for b in self.brokers_read.values() if b}
        self.totals.prefetch(counties)

    # -- claims, entitlements, totals ------------------------------------------------------------

    def _recompute(self, no: str, position: int) -> None:
        record = self.contracts[no]
        assert record is not None
        if not self.claims_of[no] and all(p[2] for p in record["proofs"].values()):
            # No money paid (a claim needs a transfer proof), and no claim before: nothing
            # changes. Most events come before a contract's first proof (registration,
            # invoices), and building its Contract was 8 % of a catch-up's time.
            return
        contract = contract_of(no, record)
        # Made here, not kept: a projection holding views of itself would be a reference cycle,
        # freed only by the cycle collector, which a catch-up outran (1.7 GB at 1M events).
        brokers, funded = _Lookup(self), _Funded(self)
        new: dict[EntitlementKey, ClaimValue] = {}
        for year in sorted(evidence_years(contract).intersection(self._years)):
            policy = self.schedule.for_year(year)
            for claim in contract_claims(contract, year, brokers, funded, policy):
                if claim.category == "broker":
                    facts = self.broker(claim.beneficiary)
                    region = facts.region_code if facts else ""
                elif claim.category == "absorption":
                    region = contract.buyer.region_code
                else:
                    region = contract.seller.region_code
                new[(year, claim.category, claim.beneficiary)] = ClaimValue(
                    claim.name, region, exact(claim.share), claim.reason
                )
        old = self.claims_of[no]
        for key in old.keys() | new.keys():
            before, after = old.get(key), new.get(key)
            if before != after:
                if after is None:
                    self.claimants[key].discard(no)
                elif before is None:
                    self.claimants.setdefault(key, set()).add(no)
                self.claims.set((*key, no), after, position)
                self._entitlement_changed(key, no, before, after, position)
        self.claims_of[no] = new

    def _entitlement_changed(
        self,
        key: EntitlementKey,
        no: str,
        before: ClaimValue | None,
        after: ClaimValue | None,
        position: int,
    ) -> None:
        old = self.entitlements.get(key)
        turnover = old.turnover if old else 0
        count = old.claims if old else 0
        if before is not None:
            count -= 1
            turnover -= before.share if before.reason is None else 0
        if after is not None:
            count += 1
            turnover += after.share if after.reason is None else 0
        first, name, region = (
            (old.first_registration_no, old.name, old.region_code) if old else ("", "", "")
        )
        if after is not None and (not first or no <= first):
            first, name, region = no, after.name, after.region_code
        elif after is None and no == first and count:
            first, name, region = self._first_claim(key)
        new = None
        if count:
            category: Category = key[1]  # type: ignore[assignment]
            if category == ONE_TIME:
                gross, entitled = one_time_amounts(int(turnover))
            else:
                gross, entitled = amounts(turnover, category, self.schedule.for_year(key[0]))
            new = EntitlementValue(name, region, first, count, turnover, gross, entitled)
        if new != old:
            self.entitlements.set(key, new, position)
            self._totals_changed(key, old, new, position)

    def _first_claim(self, key: EntitlementKey) -> tuple[str, str, str]:
        """The claim in registration order that now names the beneficiary (rarely needed:
        only when the claim that named it is gone)."""
        # By the claimants of the key: scanning every contract of the run was 3 % of a catch-up
        # in runs of 50,000 entries.
        here = [(no, self.claims_of[no][key]) for no in self.claimants.get(key, ())]
        loaded = self.claims_of.keys()  # their claims are known here, whatever is stored
        stored = [
            (no, claim)
            for no, claim in self.stored.first_claims(key, len(loaded) + 1)
            if no not in loaded
        ]
        no, claim = min(here + stored[:1], key=lambda item: item[0])
        return no, claim.name, claim.region_code

    def _totals_changed(
        self,
        key: EntitlementKey,
        old: EntitlementValue | None,
        new: EntitlementValue | None,
        position: int,
    ) -> None:
        year, category, _ = key
        changes: dict[TotalKey, TotalValue] = {}
        for value, sign in ((old, -1), (new, 1)):
            if value is None:
                continue
            for county in (ALL_COUNTIES, value.region_code):
                total_key = (year, category, county)
                total = changes.get(total_key) or self.totals.get(total_key) or NO_TOTAL
                changes[total_key] = total.plus(value, sign)
        for total_key, total in changes.items():
            self.totals.set(total_key, total if total.beneficiaries else None, position)


# -- contract records ---------------------------------------------------------------------------


def _registered(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "registered_on": p["registered_on"],
        "contract_type": p["contract_type"],
        "seller": _party_record(p["seller"]),
        "buyer": _party_record(p["buyer"]),
        "brokers": list(p["brokers"]),
        "contract_amount_fen": p["contract_amount_fen"],
        "technology_amount_fen": p["technology_amount_fen"],
        "related_party": p["related_party"],
        "cancelled": False,
        "invoices": {},
        "proofs": {},
    }


def _party_record(p: Mapping[str, str]) -> dict[str, str]:
    return {k: p[k] for k in ("credit_code", "name", "kind", "region_code")}


def _change(record: dict[str, Any], kind: str, p: Mapping[str, Any]) -> None:
    if kind == "InvoiceRecorded":
        record["invoices"][p["invoice_no"]] = [p["issued_on"], p["amount_fen"], False]
    elif kind == "InvoiceVoided":
        record["invoices"][p["invoice_no"]][2] = True
    elif kind == "TransferProofRecorded":
        record["proofs"][p["serial_no"]] = [p["paid_on"], p["amount_fen"], False]
    elif kind == "TransferProofWithdrawn":
        record["proofs"][p["serial_no"]][2] = True
    elif kind == "ContractAmended":
        for name in ("contract_amount_fen", "technology_amount_fen", "brokers", "related_party"):
            if name in p["changes"]:
                record[name] = p["changes"][name]
    elif kind == "ContractCancelled":
        record["cancelled"] = True


def contract_of(no: str, r: Mapping[str, Any]) -> Contract:
    """The engine's contract from its stored record (``subsidy_contracts.facts``)."""
    seller, buyer = r["seller"], r["buyer"]
    return Contract(
        registration_no=no,
        registered_on=_day(r["registered_on"]),
        contract_type=r["contract_type"],
        seller=_party(seller["credit_code"], seller["name"], seller["kind"], seller["region_code"]),
        buyer=_party(buyer["credit_code"], buyer["name"], buyer["kind"], buyer["region_code"]),
        brokers=tuple(r["brokers"]),
        contract_amount_fen=r["contract_amount_fen"],
        technology_amount_fen=r["technology_amount_fen"],
        related_party=r["related_party"],
        cancelled=r["cancelled"],
        # Tuples made from lists: through a generator, one or two items took twice as long.
        invoices=tuple([_invoice(n, *fields) for n, fields in r["invoices"].items()]),
        transfer_proofs=tuple([_proof(s, *fields) for s, fields in r["proofs"].items()]),
    )


# A contract is made again for each entry about it, and its parties, invoices and proofs are
# mostly the ones it had (frozen dataclasses: each field set through object.__setattr__, and
# the dates parsed again): made once, while recent (the contract was 10 % of a catch-up).
@lru_cache(maxsize=1 << 15)
def _party(credit_code: str, name: str, kind: str, region_code: str) -> Party:
    return Party(credit_code, name, kind, region_code)


@lru_cache(maxsize=1 << 16)
def _invoice(invoice_no: str, issued_on: str, amount_fen: int, voided: bool) -> Invoice:
    return Invoice(invoice_no, _day(issued_on), amount_fen, voided)


@lru_cache(maxsize=1 << 16)
def _proof(serial_no: str, paid_on: str, amount_fen: int, withdrawn: bool) -> TransferProof:
    return TransferProof(serial_no, _day(paid_on), amount_fen, withdrawn)


def exact(amount: Fen) -> Fen:
    """A whole amount as an int (equal to its Fraction, and many times faster to add): only
    brokers' split shares are fractions of a fen."""
    return amount.numerator if amount.denominator == 1 else amount


def _region(credit_code: str | None) -> str:
    """The region of a credit code's holder: its characters 3–8 (GB 32100-2015)."""
    code = credit_code or ""
    return code[2:8] if len(code) == 18 else ""


def _day(text: str) -> date:
    return date.fromisoformat(text)
