"""HTTP bodies of the registry, named by direction; each incoming model turns itself into
the domain's arguments (ISO date strings, integer fen)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

from services.common.codes import credit_code_problem, region_code_problem
from services.common.money import parse_yuan
from services.common.text import text_problem

_CHINA = ZoneInfo("Asia/Shanghai")  # "the future" is judged by the programme's calendar
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _credit_code(value: str) -> str:
    problem = credit_code_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _region_code(value: str) -> str:
    problem = region_code_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _one_line(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _paragraph(value: str) -> str:
    problem = text_problem(value, multiline=True)
    if problem:
        raise ValueError(problem)
    return value


def _no_slash(value: str) -> str:
    if "/" in value:
        raise ValueError('must not contain "/": the number names its record in URL paths')
    return value


def _fen(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError('must be a decimal string in yuan, e.g. "1200000.00", not a number')
    return parse_yuan(value)  # AmountError is a ValueError: pydantic reports it on the field


def _date_string(value: object) -> object:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


def _not_future(value: date) -> date:
    if value > datetime.now(_CHINA).date():
        raise ValueError("must not be in the future")
    return value


CreditCode = Annotated[StrictStr, AfterValidator(_credit_code)]
RegionCode = Annotated[StrictStr, AfterValidator(_region_code)]
# A yuan string on the wire, integer fen once parsed.
Yuan = Annotated[
    int,
    BeforeValidator(_fen),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$", "examples": ["1200000.00"]}
    ),
]
Day = Annotated[date, BeforeValidator(_date_string), AfterValidator(_not_future)]
Key = Annotated[
    StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
]
# Registration, invoice and serial numbers: each names its record in a URL path.
Number = Annotated[Key, AfterValidator(_no_slash)]
_AMOUNTS = frozenset({"contract_amount", "technology_amount", "amount"})
# Every text field passes services.common.text's one rule; a reason may run to several lines.
Text = Annotated[StrictStr, Field(min_length=1, max_length=500), AfterValidator(_one_line)]
Paragraph = Annotated[StrictStr, Field(min_length=1, max_length=500), AfterValidator(_paragraph)]
ContractType = Literal["development", "transfer", "licensing", "consulting", "service"]
PartyKind = Literal["enterprise", "university", "research_institute", "new_rd_institution", "other"]


class Incoming(BaseModel):
    """Unknown fields are refused, never ignored."""

    model_config = ConfigDict(extra="forbid")

    def body_args(self, *path: tuple[str, str], exclude_none: bool = False) -> dict[str, Any]:
        """The path parameters, then the body's fields as JSON values; amounts (integer fen)
        are named with a ``_fen`` suffix."""
        args = dict(path)
        for name, value in self.model_dump(mode="json", exclude_none=exclude_none).items():
            args[f"{name}_fen" if name in _AMOUNTS else name] = value
        return args


class Party(Incoming):
    credit_code: CreditCode
    name: Text
    kind: PartyKind
    region_code: RegionCode


class ContractCreate(Incoming):
    registration_no: Number
    station_id: Key
    registered_on: Day
    signed_on: Day
    title: Text
    contract_type: ContractType
    domain: Text
    seller: Party
    buyer: Party
    brokers: list[Key] = Field(default_factory=list, max_length=50)
    contract_amount: Yuan
    technology_amount: Yuan
    related_party: StrictBool

    def to_args(self) -> dict[str, Any]:
        return self.body_args()


class ContractAmendment(Incoming):
    contract_amount: Yuan | None = None
    technology_amount: Yuan | None = None
    brokers: list[Key] | None = Field(default=None, max_length=50)
    related_party: StrictBool | None = None
    title: Text | None = None
    amended_on: Day
    reason: Paragraph

    def to_args(self, registration_no: str) -> dict[str, Any]:
        changes = self.body_args(exclude_none=True)
        return {
            "registration_no": registration_no,
            "amended_on": changes.pop("amended_on"),
            "reason": changes.pop("reason"),
            "changes": changes,
        }


class ContractCancellation(Incoming):
    cancelled_on: Day
    reason: Paragraph

    def to_args(self, registration_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no))


class InvoiceCreate(Incoming):
    invoice_no: Number
    issued_on: Day
    amount: Yuan
    issuer_credit_code: CreditCode
    recipient_credit_code: CreditCode

    def to_args(self, registration_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no))


class InvoiceVoid(Incoming):
    voided_on: Day
    reason: Paragraph

    def to_args(self, registration_no: str, invoice_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no), ("invoice_no", invoice_no))


class TransferProofCreate(Incoming):
    serial_no: Number
    paid_on: Day
    amount: Yuan
    payer_credit_code: CreditCode
    payee_credit_code: CreditCode
    bank: Text | None = None

    def to_args(self, registration_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no))


class TransferProofWithdrawal(Incoming):
    withdrawn_on: Day
    reason: Paragraph

    def to_args(self, registration_no: str, serial_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no), ("serial_no", serial_no))


class BrokerCreate(Incoming):
    broker_id: Key
    name: Text
    organisation_credit_code: CreditCode
    filed_on: Day

    def to_args(self) -> dict[str, Any]:
        return self.body_args()


class ProvincialFundingCreate(Incoming):
    credit_code: CreditCode
    year: Annotated[StrictInt, Field(ge=2000, le=2100)]
    programme: Text
    amount: Yuan

    def to_args(self) -> dict[str, Any]:
        return self.body_args()


# -- outgoing ----------------------------------------------------------------------------------


class EventRecorded(BaseModel):
    """The stored event's place in the log."""

    position: int
    event_id: str
    type: str
    subject: str
    recorded_at: str
    hash: str


class BatchRecorded(BaseModel):
    """The first and last positions the batch's events were stored at."""

    positions: tuple[int, int]
    count: int


class ErrorPublic(BaseModel):
    """Every refusal: the rule broken and the field it concerns."""

    error: str
    field: str | None
    message: str
    index: int | None = None
    errors: list[dict[str, Any]] | None = None


class LogEntryPublic(BaseModel):
    position: int
    event_id: str
    type: str
    schema_version: int
    recorded_at: str
    principal: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class LogPagePublic(BaseModel):
    events: list[LogEntryPublic]
    next_after: int
    head: int


class HealthPublic(BaseModel):
    status: str
    head: int


class CheckpointPublic(BaseModel):
    """A Merkle tree head over the first ``tree_size`` log entries, signed (base64 Ed25519)."""

    tree_size: int
    root_hash: str
    issued_at: str
    signature: str


class PublicKeyPublic(BaseModel):
    algorithm: str
    public_key_pem: str


class InclusionProofPublic(BaseModel):
    position: int
    leaf_index: int
    leaf_hash: str
    tree_size: int
    root_hash: str
    proof: list[str]


class ConsistencyProofPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    first: int = Field(alias="from")
    second: int = Field(alias="to")
    from_root: str
    to_root: str
    proof: list[str]
