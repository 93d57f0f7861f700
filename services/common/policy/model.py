"""The facts the money rules read, and the policy that parameterises them: frozen values only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Literal

Category = Literal["absorption", "output", "broker", "one_time"]
# The categories computed by a formula: each has a rate and a cap in the policy file.
CATEGORIES: tuple[Category, ...] = ("absorption", "output", "broker")
# Every category an entitlement, a balance or a payout line may have: the formula ones and
# one-time grants (一次性补助), whose amount is decided, not computed.
ALL_CATEGORIES: tuple[Category, ...] = (*CATEGORIES, "one_time")


@dataclass(frozen=True, slots=True)
class Party:
    credit_code: str
    name: str
    kind: str
    region_code: str


@dataclass(frozen=True, slots=True)
class Invoice:
    invoice_no: str
    issued_on: date
    amount_fen: int
    voided: bool = False


@dataclass(frozen=True, slots=True)
class TransferProof:
    serial_no: str
    paid_on: date
    amount_fen: int
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class Contract:
    registration_no: str
    registered_on: date
    contract_type: str
    seller: Party
    buyer: Party
    brokers: tuple[str, ...]
    contract_amount_fen: int
    technology_amount_fen: int
    related_party: bool
    cancelled: bool = False
    invoices: tuple[Invoice, ...] = ()
    transfer_proofs: tuple[TransferProof, ...] = ()


@dataclass(frozen=True, slots=True)
class Broker:
    broker_id: str
    name: str
    filed_on: date


@dataclass(frozen=True, slots=True)
class Grant:
    """A one-time grant (一次性补助) decided by the bureau."""

    grant_no: str
    credit_code: str
    programme: str  # demonstration_institution | transfer_base | pilot_base
    amount_fen: int
    decided_on: date
    document_no: str


@dataclass(frozen=True, slots=True)
class Institution:
    """A technology-transfer demonstration institution's recognition at one level."""

    credit_code: str
    name: str
    level: str  # national | provincial | municipal
    recognised_on: date
    document_no: str


@dataclass(frozen=True)
class Facts:
    """Everything the money rules need, as known at one log position."""

    contracts: dict[str, Contract] = field(default_factory=dict)
    brokers: dict[str, Broker] = field(default_factory=dict)
    funded: frozenset[tuple[str, int]] = frozenset()  # (credit code, year): 不重复支持
    position: int = 0
    grants: tuple[Grant, ...] = ()  # by grant number
    institutions: tuple[Institution, ...] = ()  # by credit code, then level


@dataclass(frozen=True)
class CategoryRule:
    rate: Fraction
    cap_fen: int


@dataclass(frozen=True)
class Policy:
    """Every policy setting of the plan; loaded from ``schemas/policy/*.toml``."""

    version: str
    city_prefix: str
    first_year: int
    last_year: int
    registration_window_years: int
    eligible_contract_types: frozenset[str]
    evidence_ceiling: Literal["contract_amount", "technology_amount"]
    categories: dict[Category, CategoryRule]

    def in_force(self, year: int) -> bool:
        return self.first_year <= year <= self.last_year

    def is_local(self, party: Party) -> bool:
        return party.region_code.startswith(self.city_prefix)


ExclusionReason = Literal[
    "cancelled",
    "contract_type",
    "outside_window",
    "related_party",
    "seller_local",
    "not_local",
    "provincial_funding",
    "broker_not_filed",
]


@dataclass(frozen=True, slots=True)
class ContractShare:
    registration_no: str
    evidenced: Fraction | int  # fen; a broker's equal share may be a fraction of a fen


@dataclass(frozen=True, slots=True)
class Exclusion:
    registration_no: str
    reason: ExclusionReason


@dataclass(frozen=True)
class Entitlement:
    """One beneficiary's entitlement in one category for one turnover year, explained."""

    beneficiary: str
    name: str
    category: Category
    year: int
    turnover: Fraction | int  # fen, exact
    gross_fen: int
    entitlement_fen: int
    contracts: tuple[ContractShare, ...]
    excluded: tuple[Exclusion, ...]

    @property
    def capped(self) -> bool:
        return self.gross_fen > self.entitlement_fen
