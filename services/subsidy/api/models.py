"""What finance receives; amounts are yuan strings with two decimals."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.common.policy.model import Category, ExclusionReason
from services.common.web.openapi import about

_CODE = "91410403MA00000028"
_AMOUNT = "1000000.00"


class ContractPublic(BaseModel):
    """计入合同 A contract that fed the entitlement."""

    registration_no: str = about("登记号 Registration number", "2024410400000001")
    evidenced: str = about("有据成交额（元） Turnover paid and invoiced in the year", _AMOUNT)


class ExclusionPublic(BaseModel):
    """未计入合同 A contract left out, and why."""

    registration_no: str = about("登记号 Registration number", "2024410400000002")
    reason: ExclusionReason = about("原因 Why it does not count", "related_party")
    reason_zh: str = about("原因（中文） The reason in Chinese", "关联企业间交易")


class EntitlementPublic(BaseModel):
    """补贴 One beneficiary's entitlement in one category, explained."""

    beneficiary: str = about("受益方 Credit code, or broker id", _CODE)
    name: str = about("名称 Beneficiary's name", "平顶山煤矿机械有限公司")
    category: Category = about(
        "类别 absorption 技术吸纳, output 技术输出, broker 技术经纪人, one_time 一次性补助",
        "absorption",
    )
    county: str = about("县市区 Region code of the beneficiary", "410403")
    county_name: str = about(
        "县市区名称 The county's name, when it is one of the city's (else empty)", "卫东区"
    )
    turnover: str = about("成交额（元） Evidenced turnover counted", _AMOUNT)
    gross: str = about("计算额（元） Turnover × rate, to the fen", "100000.00")
    entitlement: str = about("补贴额（元） The gross, capped", "100000.00")
    capped: bool = about("封顶 Whether the cap applied", False)
    claims: int = about("合同数 How many contracts it was computed from, counted or left out", 2)
    contracts: list[ContractPublic] | None = Field(
        description="计入合同 The contracts counted (in a list of entitlements only with "
        "include=claims; else null)",
        examples=[[{"registration_no": "2024410400000001", "evidenced": _AMOUNT}]],
    )
    excluded: list[ExclusionPublic] | None = Field(
        description="未计入合同 The contracts left out (in a list of entitlements only with "
        "include=claims; else null)",
        examples=[
            [
                {
                    "registration_no": "2024410400000002",
                    "reason": "related_party",
                    "reason_zh": "关联企业间交易",
                }
            ]
        ],
    )


class ContractTermsPublic(BaseModel):
    """计入合同明细 A contract behind an entitlement, term by term: evidenced = min(paid,
    invoiced, ceiling) − counted before."""

    registration_no: str = about("登记号 Registration number", "2024410400000001")
    paid: str = about("已付款（元） P: transfer proofs paid by 31 Dec of the year", _AMOUNT)
    invoiced: str = about("已开票（元） I: invoices not voided", _AMOUNT)
    ceiling: str = about(
        "上限（元） C: the contract amount, or the technology amount (see ceiling_basis)", _AMOUNT
    )
    counted_before: str = about("以前年度已计（元） Evidenced in earlier years", "0.00")
    evidenced: str = about(
        "当年认定额（元） The contract's evidenced turnover in the year", _AMOUNT
    )
    brokers: int | None = about(
        "经纪人数 Brokers named on it, who split it equally (broker category only)", None
    )
    share: str = about(
        "计入额（元） What counts for this beneficiary: the evidenced turnover, or a broker's "
        "equal part of it",
        _AMOUNT,
    )


class ExcludedTermsPublic(ContractTermsPublic):
    """未计入合同明细 A contract left out, its terms, and why."""

    reason: ExclusionReason = about("原因 Why it does not count", "related_party")
    reason_zh: str = about("原因（中文） The reason in Chinese", "关联企业间交易")


class GrantPublic(BaseModel):
    """一次性补助 A one-time grant behind a one_time entitlement: decided, not computed."""

    grant_no: str = about("补助编号 Grant number", "YC-2021-001")
    programme: str = about(
        "项目 demonstration_institution, transfer_base or pilot_base", "transfer_base"
    )
    programme_zh: str = about("项目（中文） The programme in Chinese", "科技成果转移转化基地")
    amount: str = about("金额（元） The amount decided", "200000.00")
    decided_on: str = about("决定日期 Day decided", "2021-09-30")
    document_no: str = about("文号 The deciding document", "平科〔2021〕15号")


class ExplainedPublic(EntitlementPublic):
    """补贴说明 One beneficiary's entitlement in one category, every figure explained."""

    contracts: list[ContractTermsPublic] = Field(  # type: ignore[assignment]
        description="计入合同 The contracts counted, term by term"
    )
    excluded: list[ExcludedTermsPublic] = Field(  # type: ignore[assignment]
        description="未计入合同 The contracts left out, term by term, and why"
    )
    rate: str | None = about(
        "补助比例 The category's rate: gross = round(turnover × rate); null for one_time",
        "0.1",
    )
    cap: str | None = about(
        "封顶额（元） The most one beneficiary receives in the year; null for one_time",
        "500000.00",
    )
    grants: list[GrantPublic] = Field(
        default_factory=list,
        description="一次性补助 Of category one_time: the grants decided (else empty)",
    )
    ceiling_basis: str = about(
        "上限依据 contract_amount (技术合同成交额) or technology_amount (技术交易额)",
        "contract_amount",
    )
    policy_version: str = about("政策版本 Policy version", "pingdingshan-2020.1")
    position: int = about("日志位置 The log position it was computed at", 120)


class EntitlementsPublic(BaseModel):
    """年度补贴 A turnover year's entitlements."""

    year: int = about("年度 Turnover year", 2024)
    policy_version: str = about("政策版本 Policy version", "pingdingshan-2020")
    position: int = about("日志位置 The log position they were computed at", 120)
    entitlements: list[EntitlementPublic] = Field(description="补贴 The entitlements")


class BeneficiaryPublic(EntitlementsPublic):
    """受益方补贴 One beneficiary's entitlements in a year, explained."""

    entitlements: list[ExplainedPublic] = Field(  # type: ignore[assignment]
        description="补贴 Its entitlements, one per category"
    )


class TotalPublic(BaseModel):
    """合计 One category's totals."""

    beneficiaries: int = about("受益方数 Beneficiaries", 3)
    turnover: str = about("成交额（元） Turnover", _AMOUNT)
    gross: str = about("计算额（元） Gross", "100000.00")
    entitlement: str = about("补贴额（元） Entitlement", "100000.00")


class TotalsPublic(BaseModel):
    """分类合计 Totals by category."""

    absorption: TotalPublic = Field(description="技术吸纳 Absorption")
    output: TotalPublic = Field(description="技术输出 Output")
    broker: TotalPublic = Field(description="技术经纪人 Brokers")
    one_time: TotalPublic = Field(description="一次性补助 One-time grants")


class EntitlementsPage(EntitlementsPublic):
    """年度补贴一页 A page of a year's entitlements with the year's totals."""

    totals: TotalsPublic = Field(description="合计 The year's totals (of the county, if given)")
    next_cursor: str | None = about(
        "下一页 Pass as cursor for the next page; null at the end", None
    )
    previous_cursor: str | None = about(
        "上一页 Pass as before for the page before this one; null on the first page", None
    )


class EventRefPublic(BaseModel):
    """事件 An event behind a revision."""

    position: int = about("日志位置 Log position", 121)
    type: str = about("事件类型 Event type", "InvoiceRecorded")
    subject: str = about("对象 What it is about", "2024410400000001")
    recorded_at: str = about("记录时间 When it was recorded (UTC)", "2025-03-01T08:00:00+00:00")


class ClaimPartPublic(BaseModel):
    """合同计入情况 What one contract contributed at one position."""

    evidenced: str = about("计入额（元） What it counted for this beneficiary", _AMOUNT)
    reason: ExclusionReason | None = about("原因 Why it did not count (null: it counted)", None)
    reason_zh: str | None = about("原因（中文） The reason in Chinese", None)


class ClaimChangePublic(BaseModel):
    """变动合同 A contract whose part in the entitlement changed."""

    registration_no: str = about("登记号 Registration number", "2024410400000001")
    before: ClaimPartPublic | None = Field(description="之前 Its part before (null: none)")
    after: ClaimPartPublic | None = Field(description="之后 Its part now (null: none)")


class RevisionPublic(BaseModel):
    """修订 An entitlement that changed, before and after."""

    beneficiary: str = about("受益方 Credit code, or broker id", _CODE)
    category: Category = about("类别 Category", "absorption")
    before: EntitlementPublic | None = Field(
        description="之前 As it was (null: none); its contracts with include=claims"
    )
    after: EntitlementPublic | None = Field(
        description="之后 As it is (null: none now); its contracts with include=claims"
    )
    contracts: list[ClaimChangePublic] = Field(
        description="变动合同 The contracts whose part changed, before and after"
    )
    events: list[EventRefPublic] = Field(description="事件 The events that changed it")


class RevisionsPublic(BaseModel):
    """修订 What changed in a year since an instant."""

    year: int = about("年度 Turnover year", 2024)
    since: str = about("起点 The instant asked about", "2025-03-31T16:00:00+00:00")
    policy_version: str = about("政策版本 Policy version", "pingdingshan-2020")
    position_before: int = about("之前位置 The log position as of since", 110)
    position: int = about("当前位置 The log position now", 121)
    revisions: list[RevisionPublic] = Field(description="修订 The revisions")
    next_cursor: str | None = about(
        "下一页 Pass as cursor for the next page; null at the end", None
    )


class HealthPublic(BaseModel):
    """运行状态 How far the entitlements reach in the registry's log."""

    applied_position: int = about("已应用位置 Last log position applied", 121)
    registry_head: int | None = about("登记日志头 The registry's head (null: unreachable)", 121)
    lag_events: int | None = about("滞后事件数 Events not applied yet", 0)
    lag_seconds: float | None = about("滞后秒数 Age of the oldest event not applied", 0.0)
    skipped_events: int = about(
        "跳过的条目 Entries of event types this service does not know (upgrade it to apply them)",
        0,
    )
