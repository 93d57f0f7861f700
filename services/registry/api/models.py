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
    GetJsonSchemaHandler,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from services.common.codes import (
    CREDIT_CODE_CHARSET,
    credit_code_check_character,
    credit_code_problem,
    region_code_problem,
)
from services.common.money import POSITIVE_YUAN_PATTERN, parse_yuan
from services.common.policy.model import Category
from services.common.text import text_problem
from services.common.web.fields import about

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


def _key(value: str) -> str:
    if not _KEY.fullmatch(value):
        raise ValueError(f"must be {_KEY_WORDS}")
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


def _whole(value: object) -> object:
    # JSON has one kind of number: to a JSON Schema 2024.0 is the integer 2024, so here too.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _not_future(value: date) -> date:
    if value > datetime.now(_CHINA).date():
        raise ValueError("must not be in the future")
    return value


class _States:
    """What the document says of a type whose own validator words its errors: the schema
    carries the rule (pattern, lengths) while the server keeps its own message."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(core_schema), **self.keywords}


# The document states each rule as a pattern; the server checks the same rule in code, so that
# a refusal says it in words ("18 characters: digits and capital letters except I, O, S, V, Z")
# rather than quoting the pattern.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_KEY_WORDS = "letters, digits, '.', '_', '-' or '/', beginning with a letter or digit"
_NUMBER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # a key without "/"
# Control characters and bidirectional controls, as services.common.text refuses them.
_LINE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*$"
_PARAGRAPH_PATTERN = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*$"
_CREDIT_CODE_WORDS = "18 characters: digits and capital letters except I, O, S, V, Z"

CreditCode = Annotated[
    StrictStr,
    AfterValidator(_credit_code),
    _States(
        minLength=18,
        maxLength=18,
        pattern=f"^[{CREDIT_CODE_CHARSET}]{{18}}$",
        description=f"统一社会信用代码 Unified social credit code: {_CREDIT_CODE_WORDS}; "
        "the server also checks the 18th, the GB 32100-2015 check character",
    ),
]
RegionCode = Annotated[
    StrictStr,
    AfterValidator(_region_code),
    _States(pattern="^[0-9]{6}$", minLength=6, maxLength=6),
]
# A yuan string on the wire, integer fen once parsed: positive, at most two decimals, as
# services.common.money.parse_yuan reads it.
Yuan = Annotated[
    int,
    BeforeValidator(_fen),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": POSITIVE_YUAN_PATTERN,
            "examples": ["1200000.00"],
        }
    ),
]
# Integers, written 2024 or 2024.0 (the bounds inside the conversion, so the document states them).
Year = Annotated[StrictInt, Field(ge=2000, le=2100), BeforeValidator(_whole)]
# A position at most 2**53: every integer up to it is exact as a JSON (double) number too.
Position = Annotated[StrictInt, Field(ge=0, le=2**53), BeforeValidator(_whole)]
Day = Annotated[
    date,
    BeforeValidator(_date_string),
    AfterValidator(_not_future),
    _States(pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
]
Key = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64),
    AfterValidator(_key),
    _States(pattern=f"^{_KEY.pattern}$"),
]
# Registration, invoice and serial numbers: each names its record in a URL path.
Number = Annotated[Key, AfterValidator(_no_slash), _States(pattern=_NUMBER_PATTERN)]
_AMOUNTS = frozenset({"contract_amount", "technology_amount", "amount"})
# Every text field passes services.common.text's one rule; a reason may run to several lines.
Text = Annotated[
    StrictStr,
    Field(min_length=1, max_length=500),
    AfterValidator(_one_line),
    _States(pattern=_LINE_PATTERN),
]
Paragraph = Annotated[
    StrictStr,
    Field(min_length=1, max_length=500),
    AfterValidator(_paragraph),
    _States(pattern=_PARAGRAPH_PATTERN),
]
# 登记证明编号, the rule ContractRegistered v2's JSON Schema states as its pattern.
_CERTIFICATE_NO = re.compile(r"[0-9A-Z][0-9A-Z-]{4,38}[0-9A-Z]")
_CERTIFICATE_NO_WORDS = (
    "6 to 40 upper-case letters A-Z, digits and hyphens, beginning and ending with a letter "
    "or digit"
)


def _certificate_no(value: str) -> str:
    if not _CERTIFICATE_NO.fullmatch(value):
        raise ValueError(f"must be {_CERTIFICATE_NO_WORDS}")
    return value


CertificateNo = Annotated[
    StrictStr,
    AfterValidator(_certificate_no),
    _States(pattern=f"^{_CERTIFICATE_NO.pattern}$", minLength=6, maxLength=40),
]
Currency = Literal["CNY"]
ContractType = Literal["development", "transfer", "licensing", "consulting", "service"]
PartyKind = Literal["enterprise", "university", "research_institute", "new_rd_institution", "other"]
_NOT_FUTURE = "not in the future (Beijing time)"


def _code(first17: str) -> str:
    return first17 + credit_code_check_character(first17)


# Valid examples, so that "Try it out" in /docs starts from a request the server accepts.
EXAMPLE_SELLER = _code("12410402MB0000001")  # a university in 新华区
EXAMPLE_BUYER = _code("91410403MA0000002")  # an enterprise in 卫东区
EXAMPLE_REGISTRATION_NO = "2024410400000001"


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
    """合同当事人 A party to the contract."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "credit_code": EXAMPLE_SELLER,
                    "name": "平顶山学院",
                    "kind": "university",
                    "region_code": "410402",
                }
            ]
        }
    )

    credit_code: CreditCode = about("统一社会信用代码 Unified social credit code", EXAMPLE_SELLER)
    name: Text = about("名称 Registered name", "平顶山学院")
    kind: PartyKind = about(
        "主体类型 Kind: enterprise 企业, university 高等院校, research_institute 科研院所, "
        "new_rd_institution 新型研发机构, other 其他",
        "university",
    )
    region_code: RegionCode = about(
        "地区代码 GB/T 2260 region code, 6 digits; local to the city when it starts 4104",
        "410402",
    )


_PARTY_RULES = "must differ from the seller's credit code (checked by the server)"


class ContractCreate(Incoming):
    """认定登记 A contract certified by a registration station. The server also checks what
    no schema can say: signed_on not after registered_on, buyer differs from seller,
    technology_amount not above contract_amount, the credit codes' check characters, dates not
    in the future, and that the registration number is not used yet (409)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "registration_no": EXAMPLE_REGISTRATION_NO,
                    "station_id": "S0001",
                    "registered_on": "2024-03-01",
                    "signed_on": "2024-02-01",
                    "title": "煤矿智能巡检机器人技术开发",
                    "contract_type": "development",
                    "domain": "先进制造 advanced manufacturing",
                    "seller": {
                        "credit_code": EXAMPLE_SELLER,
                        "name": "平顶山学院",
                        "kind": "university",
                        "region_code": "410402",
                    },
                    "buyer": {
                        "credit_code": EXAMPLE_BUYER,
                        "name": "平顶山煤矿机械有限公司",
                        "kind": "enterprise",
                        "region_code": "410403",
                    },
                    "brokers": [],
                    "contract_amount": "1200000.00",
                    "technology_amount": "1000000.00",
                    "related_party": False,
                    "certificate_no": "410400-2024-000123",
                }
            ]
        }
    )

    registration_no: Number = about(
        "登记号 Registration number, unique nationally (case-insensitive); a repeat is a 409",
        EXAMPLE_REGISTRATION_NO,
    )
    station_id: Key = about(
        "登记机构 Registration station's id; a station registers only under its own", "S0001"
    )
    registered_on: Day = about(f"登记日期 Registration date, {_NOT_FUTURE}", "2024-03-01")
    signed_on: Day = about(
        f"签订日期 Signing date, {_NOT_FUTURE}, not after registered_on", "2024-02-01"
    )
    title: Text = about("合同名称 Contract title", "煤矿智能巡检机器人技术开发")
    contract_type: ContractType = about(
        "合同类型 Contract type: development 技术开发, transfer 技术转让, licensing 技术许可, "
        "consulting 技术咨询, service 技术服务",
        "development",
    )
    domain: Text = about("技术领域 Technology domain", "先进制造 advanced manufacturing")
    seller: Party = Field(description="卖方 Seller (技术输出方)")
    buyer: Party = Field(description=f"买方 Buyer (技术吸纳方); {_PARTY_RULES}")
    brokers: list[Key] = Field(
        default_factory=list,
        max_length=50,
        description="技术经纪人 Ids of the brokers named on the contract, each at most once; "
        "one not filed yet is accepted with a warning",
        examples=[["B-0001"]],
        json_schema_extra={"uniqueItems": True},
    )
    contract_amount: Yuan = about(
        "合同成交额（元） Contract amount in yuan, positive, at most 2 decimals", "1200000.00"
    )
    technology_amount: Yuan = about(
        "技术交易额（元） Technology amount in yuan, not above contract_amount", "1000000.00"
    )
    related_party: StrictBool = about("关联交易 Whether the parties are related (关联企业)", False)
    certificate_no: CertificateNo | None = about(
        f"登记证明编号 Registration certificate number, when the station issued one: "
        f"{_CERTIFICATE_NO_WORDS}",
        "410400-2024-000123",
        default=None,
    )

    def to_args(self) -> dict[str, Any]:
        return self.body_args()


_CHANGES = ("contract_amount", "technology_amount", "brokers", "related_party", "title")


class ContractAmendment(Incoming):
    """变更登记 A change of a contract: at least one of its amounts, brokers, related-party
    flag or title. The server also checks that amended_on is not before registration, the amounts
    stay consistent and not below the evidence recorded, and the contract is not cancelled
    (409)."""

    model_config = ConfigDict(
        json_schema_extra={
            # At least one change, given and not null.
            "anyOf": [
                {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
                for name in _CHANGES
            ],
            "examples": [
                {
                    "contract_amount": "1300000.00",
                    "amended_on": "2024-06-01",
                    "reason": "双方协商增加开发内容 Scope extended by agreement",
                }
            ],
        }
    )

    contract_amount: Yuan | None = about(
        "新合同成交额（元） New contract amount", "1300000.00", default=None
    )
    technology_amount: Yuan | None = about(
        "新技术交易额（元） New technology amount", "1100000.00", default=None
    )
    brokers: list[Key] | None = Field(
        default=None,
        max_length=50,
        description="新技术经纪人 The brokers named from now on, each at most once",
        examples=[["B-0001"]],
        json_schema_extra={"uniqueItems": True},
    )
    related_party: StrictBool | None = about("关联交易 New related-party flag", False, default=None)
    title: Text | None = about(
        "新合同名称 New title", "煤矿智能巡检机器人技术开发（二期）", default=None
    )
    amended_on: Day = about(
        f"变更日期 Amendment date, {_NOT_FUTURE}, not before registration", "2024-06-01"
    )
    reason: Paragraph = about("变更原因 Reason (several lines allowed)", "双方协商增加开发内容")

    def to_args(self, registration_no: str) -> dict[str, Any]:
        changes = self.body_args(exclude_none=True)
        return {
            "registration_no": registration_no,
            "amended_on": changes.pop("amended_on"),
            "reason": changes.pop("reason"),
            "changes": changes,
        }


class ContractCancellation(Incoming):
    """注销登记 A cancellation: the contract then counts for nothing. A second one is a 409."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"cancelled_on": "2024-11-30", "reason": "合同解除 Contract terminated"}]
        }
    )

    cancelled_on: Day = about(
        f"注销日期 Cancellation date, {_NOT_FUTURE}, not before registration", "2024-11-30"
    )
    reason: Paragraph = about("注销原因 Reason", "合同解除 Contract terminated")

    def to_args(self, registration_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no))


class InvoiceCreate(Incoming):
    """发票 An invoice issued by the contract's seller to its buyer. The server also checks the
    parties match the contract, issued_on is not before signing, the invoices not voided total
    at most the contract amount, and the number is not used yet (409)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "invoice_no": "INV-0001",
                    "issued_on": "2024-04-01",
                    "amount": "600000.00",
                    "issuer_credit_code": EXAMPLE_SELLER,
                    "recipient_credit_code": EXAMPLE_BUYER,
                }
            ]
        }
    )

    invoice_no: Number = about("发票号码 Invoice number, unique in the registry", "INV-0001")
    issued_on: Day = about(f"开票日期 Issue date, {_NOT_FUTURE}, not before signing", "2024-04-01")
    amount: Yuan = about("金额（元） Amount in yuan", "600000.00")
    issuer_credit_code: CreditCode = about("开票方 Issuer: the contract's seller", EXAMPLE_SELLER)
    recipient_credit_code: CreditCode = about(
        "受票方 Recipient: the contract's buyer", EXAMPLE_BUYER
    )

    def to_args(self, registration_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no))


class InvoiceVoid(Incoming):
    """红冲 Voiding an invoice; a second void is a 409."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"voided_on": "2024-05-01", "reason": "开票有误 Wrong"}]}
    )

    voided_on: Day = about(
        f"红冲日期 Void date, {_NOT_FUTURE}, not before the invoice's", "2024-05-01"
    )
    reason: Paragraph = about("红冲原因 Reason", "开票有误 Wrong amount")

    def to_args(self, registration_no: str, invoice_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no), ("invoice_no", invoice_no))


class TransferProofCreate(Incoming):
    """转账凭证 A bank transfer from the buyer to the seller. The server also checks the parties
    match the contract, paid_on is not before signing, the proofs not withdrawn total at most
    the contract amount, and the serial is not used yet (409)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "serial_no": "BANK-0001",
                    "paid_on": "2024-04-15",
                    "amount": "600000.00",
                    "payer_credit_code": EXAMPLE_BUYER,
                    "payee_credit_code": EXAMPLE_SELLER,
                    "bank": "中国银行平顶山分行",
                    "currency": "CNY",
                }
            ]
        }
    )

    serial_no: Number = about("银行流水号 Bank serial number, unique in the registry", "BANK-0001")
    paid_on: Day = about(f"付款日期 Payment date, {_NOT_FUTURE}, not before signing", "2024-04-15")
    amount: Yuan = about("金额（元） Amount in yuan", "600000.00")
    payer_credit_code: CreditCode = about("付款方 Payer: the contract's buyer", EXAMPLE_BUYER)
    payee_credit_code: CreditCode = about("收款方 Payee: the contract's seller", EXAMPLE_SELLER)
    bank: Text | None = about("银行 Bank", "中国银行平顶山分行", default=None)
    currency: Currency = about(
        "币种 Currency of amount (ISO 4217): only CNY 人民币, the default", "CNY", default="CNY"
    )

    def to_args(self, registration_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no))


class TransferProofWithdrawal(Incoming):
    """撤回转账凭证 Withdrawing a proof recorded in error; a second withdrawal is a 409."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"withdrawn_on": "2024-05-01", "reason": "重复录入 Entered twice"}]
        }
    )

    withdrawn_on: Day = about(
        f"撤回日期 Withdrawal date, {_NOT_FUTURE}, not before the payment", "2024-05-01"
    )
    reason: Paragraph = about("撤回原因 Reason", "重复录入 Entered twice")

    def to_args(self, registration_no: str, serial_no: str) -> dict[str, Any]:
        return self.body_args(("registration_no", registration_no), ("serial_no", serial_no))


class BrokerCreate(Incoming):
    """技术经纪人备案 A broker filed by the science bureau; an id filed before is a 409."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "broker_id": "B-0001",
                    "name": "李经纪",
                    "organisation_credit_code": EXAMPLE_BUYER,
                    "filed_on": "2024-01-10",
                }
            ]
        }
    )

    broker_id: Key = about("经纪人编号 Broker id", "B-0001")
    name: Text = about("姓名 Name", "李经纪")
    organisation_credit_code: CreditCode = about(
        "所在机构统一社会信用代码 The broker's organisation", EXAMPLE_BUYER
    )
    filed_on: Day = about(f"备案日期 Filing date, {_NOT_FUTURE}", "2024-01-10")

    def to_args(self) -> dict[str, Any]:
        return self.body_args()


class ProvincialFundingCreate(Incoming):
    """省级资金 Provincial funding already granted (不重复支持); the same seller, year and
    programme twice is a 409."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "credit_code": EXAMPLE_SELLER,
                    "year": 2023,
                    "programme": "河南省科技成果转化专项",
                    "amount": "300000.00",
                }
            ]
        }
    )

    credit_code: CreditCode = about("受资助单位 The funded seller", EXAMPLE_SELLER)
    year: Year = about("年度 Turnover year", 2023)
    programme: Text = about("项目 Programme", "河南省科技成果转化专项")
    amount: Yuan = about("金额（元） Amount in yuan", "300000.00")

    def to_args(self) -> dict[str, Any]:
        return self.body_args()


class PayoutLine(Incoming):
    """兑付明细 One beneficiary's payment or recovery in one category."""

    beneficiary: Key = about(
        "受益方 The beneficiary: a credit code (buyer or seller) or a broker id", EXAMPLE_BUYER
    )
    category: Category = about(
        "类别 Category: absorption 技术吸纳, output 技术输出, broker 技术经纪人, one_time "
        "一次性补助",
        "absorption",
    )
    amount: Yuan = about("金额（元） Amount in yuan, positive", "50000.00")
    kind: Literal["payment", "recovery"] = about(
        "类型 payment 拨付 (paid to the beneficiary) or recovery 追回 (paid back by it)", "payment"
    )


class PayoutCreate(Incoming):
    """兑付 A payout of one turnover year's subsidies by finance, as paid. The server also
    checks what no schema can say: the year is one the policy is in force for, basis_position
    is not beyond the log's head, no beneficiary and category is paid twice in one payout,
    paid_on is not in the future, and the payout number is not used yet (409)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payout_no": "ZF-2025-001",
                    "year": 2024,
                    "paid_on": "2025-06-30",
                    "basis_position": 1,
                    "lines": [
                        {
                            "beneficiary": EXAMPLE_BUYER,
                            "category": "absorption",
                            "amount": "50000.00",
                            "kind": "payment",
                        }
                    ],
                }
            ]
        }
    )

    payout_no: Number = about(
        "兑付编号 Payout number, unique in the registry (case-insensitive); a repeat is a 409",
        "ZF-2025-001",
    )
    year: Year = about("年度 Turnover year paid, one the policy is in force for", 2024)
    paid_on: Day = about(f"拨付日期 Day paid, {_NOT_FUTURE}", "2025-06-30")
    basis_position: Position = about(
        "依据位置 The log position the amounts were computed at, not beyond the log's head", 1
    )
    lines: list[PayoutLine] = Field(
        min_length=1,
        max_length=5000,  # the longest lines then still fit the 1 MiB body limit
        description="明细 The lines, one per beneficiary and category, at most 5,000 (a "
        "larger payout is recorded as several)",
    )

    def to_args(self) -> dict[str, Any]:
        args = self.body_args()
        args["lines"] = [line.body_args() for line in self.lines]
        return args


InstitutionLevel = Literal["national", "provincial", "municipal"]
GrantProgramme = Literal["demonstration_institution", "transfer_base", "pilot_base"]


class DemonstrationInstitutionCreate(Incoming):
    """技术转移示范机构认定 An institution recognised as a technology-transfer demonstration
    institution at one level, by the document that did it. The same institution recognised
    again at the same level is a 409."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "credit_code": EXAMPLE_SELLER,
                    "name": "平顶山学院技术转移中心",
                    "level": "provincial",
                    "recognised_on": "2021-06-30",
                    "document_no": "豫科〔2021〕88号",
                }
            ]
        }
    )

    credit_code: CreditCode = about(
        "统一社会信用代码 The institution's credit code", EXAMPLE_SELLER
    )
    name: Text = about("机构名称 The institution's name", "平顶山学院技术转移中心")
    level: InstitutionLevel = about(
        "级别 Level: national 国家级, provincial 省级, municipal 市级", "provincial"
    )
    recognised_on: Day = about(f"认定日期 Day recognised, {_NOT_FUTURE}", "2021-06-30")
    document_no: Text = about("认定文号 Number of the recognising document", "豫科〔2021〕88号")

    def to_args(self) -> dict[str, Any]:
        return self.body_args()


class OneTimeGrantCreate(Incoming):
    """一次性补助 A one-time grant decided by the bureau (plan §四(四)(五), §五(二十)), paid as
    category one_time of the year of decided_on. The server also checks what no schema can
    say: a demonstration_institution grant goes to an institution recognised at provincial
    level on or before decided_on, once per institution (422); the grant number is not used
    yet (409)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "grant_no": "YC-2021-001",
                    "credit_code": EXAMPLE_SELLER,
                    "programme": "transfer_base",
                    "amount": "200000.00",
                    "decided_on": "2021-09-30",
                    "document_no": "平科〔2021〕15号",
                }
            ]
        }
    )

    grant_no: Number = about(
        "补助编号 Grant number, unique in the registry (case-insensitive); a repeat is a 409",
        "YC-2021-001",
    )
    credit_code: CreditCode = about("受补助单位 The beneficiary's credit code", EXAMPLE_SELLER)
    programme: GrantProgramme = about(
        "项目 Programme: demonstration_institution 省级技术转移示范机构, transfer_base "
        "科技成果转移转化基地, pilot_base 中试熟化基地",
        "transfer_base",
    )
    amount: Yuan = about("金额（元） Amount decided in yuan, positive", "200000.00")
    decided_on: Day = about(
        f"决定日期 Day decided, {_NOT_FUTURE}; the grant counts for its year", "2021-09-30"
    )
    document_no: Text = about("文号 Number of the deciding document", "平科〔2021〕15号")

    def to_args(self) -> dict[str, Any]:
        return self.body_args()


# -- outgoing ----------------------------------------------------------------------------------

_HASH = "9f2c4a0e5b7d81f3a6c2e4b9d0f18a7c3e5b6d9f0a1c2e3f4a5b6c7d8e9f0a1b"
_WHEN = "2024-03-01T09:30:00.123456+00:00"
_POSITION = about("日志位置 Position in the log, from 1", 1)


class WarningPublic(BaseModel):
    """提示 Something accepted that its poster should know of (a broker not filed yet)."""

    field: str = about("字段 The field concerned", "brokers.0")
    rule: str = about("规则 The rule's id", "broker_not_filed")
    message: str = about(
        "说明 In English",
        "broker B-0001 is not filed with the science bureau yet: accepted, but its subsidy "
        "is forfeited unless it is filed",
    )
    message_zh: str = about(
        "中文说明 In Chinese",
        "技术经纪人 B-0001 尚未在科技局备案：已受理，但备案前不享受经纪人奖补",
    )


class CommandWarningPublic(WarningPublic):
    """提示 A warning of one command in a batch."""

    index: int = about("序号 The command's index in the batch, from 0", 0)


class CommandErrorPublic(BaseModel):
    """错误 One command's error found by a dry run."""

    index: int = about("序号 The command's index in the batch, from 0", 1)
    field: str | None = about("字段 The field concerned (within the command's body)", "amended_on")
    rule: str = about("规则 The rule's id", "not_before_registration")
    message: str = about("说明 In English", "must not be before the registration (2024-03-01)")
    message_zh: str = about("中文说明 In Chinese", "不得早于登记日期（2024-03-01）")


class BatchChecked(BaseModel):
    """试运行 What a dry run of a batch found: every error, nothing stored."""

    valid: bool = about("全部有效 Whether every command would be stored", False)
    commands: int = about("命令数 Commands checked", 2)
    errors: list[CommandErrorPublic] = Field(description="错误 Every error, in command order")
    warnings: list[CommandWarningPublic] = Field(description="提示 Every warning, in command order")


class EventRecorded(BaseModel):
    """已记录 The stored event's place in the log."""

    position: int = _POSITION
    event_id: str = about("事件编号 Event id (UUID)", "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    type: str = about("事件类型 Event type", "ContractRegistered")
    subject: str = about(
        "对象 What the event is about: a registration number, broker id…", EXAMPLE_REGISTRATION_NO
    )
    recorded_at: str = about("记录时间 When it was recorded (UTC)", _WHEN)
    hash: str = about("哈希 SHA-256 over the previous hash and the entry", _HASH)
    warnings: list[WarningPublic] | None = Field(
        default=None, description="提示 Warnings, when there are any (a broker not filed yet)"
    )


class BatchRecorded(BaseModel):
    """已记录 The first and last positions the batch's events were stored at."""

    positions: Annotated[
        tuple[int, int],
        WithJsonSchema(
            {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}
        ),
    ] = about("位置 First and last log positions", [1, 2])
    count: int = about("事件数 Events stored", 2)
    warnings: list[CommandWarningPublic] | None = Field(
        default=None, description="提示 Warnings of its commands, when there are any"
    )


class LogEntryPublic(BaseModel):
    """日志条目 One entry of the log, as the envelope of schemas/ describes it."""

    position: int = _POSITION
    event_id: str = about("事件编号 Event id (UUID)", "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    type: str = about("事件类型 Event type", "ContractRegistered")
    schema_version: int = about(
        "版本 Version of the event type's payload schema, each type its own: the entry was "
        "written as schemas/events/<type>.v<schema_version>.json",
        1,
    )
    recorded_at: str = about("记录时间 When it was recorded (UTC)", _WHEN)
    principal: str = about("提交者 Who posted it", "station-demo")
    subject: str = about("对象 What the event is about", EXAMPLE_REGISTRATION_NO)
    payload: dict[str, Any] = about(
        "内容 The event's fields", {"registration_no": EXAMPLE_REGISTRATION_NO}
    )
    prev_hash: str = about("前一哈希 The previous entry's hash", "0" * 64)
    hash: str = about("哈希 SHA-256 over prev_hash and the entry's canonical bytes", _HASH)


class LogPagePublic(BaseModel):
    """日志页 A page of the log."""

    events: list[LogEntryPublic] = Field(description="条目 The entries, in order")
    next_after: int = about("下一页 Pass as ``after`` for the next page", 1)
    head: int = about("日志头 The log's last position now", 1)


class HealthPublic(BaseModel):
    """运行状态 Liveness."""

    status: str = about("状态 Always ok when answered", "ok")
    head: int = about("日志头 The log's last position", 1)


class CheckpointPublic(BaseModel):
    """检查点 A Merkle tree head over the first ``tree_size`` log entries, signed (base64
    Ed25519)."""

    tree_size: int = about("树大小 Entries covered", 1)
    root_hash: str = about("根哈希 Merkle tree root (hex)", _HASH)
    issued_at: str = about("签发时间 When it was signed (UTC)", _WHEN)
    signature: str = about("签名 Ed25519 signature, base64", "c2lnbmF0dXJl")


class PublicKeyPublic(BaseModel):
    """公钥 The key auditors verify checkpoints with."""

    algorithm: str = about("算法 Signature algorithm", "Ed25519")
    public_key_pem: str = about(
        "公钥 PEM", "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n"
    )


class InclusionProofPublic(BaseModel):
    """包含证明 The audit path showing an entry is in a tree (RFC 6962)."""

    position: int = _POSITION
    leaf_index: int = about("叶序号 The entry's leaf index, from 0", 0)
    leaf_hash: str = about("叶哈希 The leaf's hash", _HASH)
    tree_size: int = about("树大小 Size of the tree", 1)
    root_hash: str = about("根哈希 The tree's root", _HASH)
    proof: list[str] = about("证明 Sibling hashes, leaf to root", [])


class ConsistencyProofPublic(BaseModel):
    """一致性证明 The proof that one tree is a prefix of a larger one (RFC 6962)."""

    model_config = ConfigDict(populate_by_name=True)

    first: int = Field(alias="from", description="较小树 Size of the smaller tree", examples=[1])
    second: int = Field(alias="to", description="较大树 Size of the larger tree", examples=[1])
    from_root: str = about("较小树根 Root of the smaller tree", _HASH)
    to_root: str = about("较大树根 Root of the larger tree", _HASH)
    proof: list[str] = about("证明 The consistency proof's hashes", [])
