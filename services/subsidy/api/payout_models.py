"""What finance receives about payouts and balances; amounts are yuan strings with two
decimals, negative where a beneficiary must repay."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from services.common.policy.model import Category
from services.common.web.openapi import about
from services.subsidy.api.models import EventRefPublic

_CODE = "91410403MA00000028"
_NAME = "平顶山煤矿机械有限公司"
_CATEGORY = "类别 absorption 技术吸纳, output 技术输出, broker 技术经纪人, one_time 一次性补助"
_KIND = "类型 payment 拨付 or recovery 追回"
Kind = Literal["payment", "recovery"]


class PayoutTouchPublic(BaseModel):
    """兑付 A payout line that paid or recovered a balance."""

    payout_no: str = about("兑付编号 Payout number", "ZF-2025-001")
    paid_on: str = about("拨付日期 Day paid", "2025-06-30")
    kind: Kind = about(_KIND, "payment")
    amount: str = about("金额（元） Amount in yuan", "50000.00")
    position: int = about("日志位置 The payout's log position", 12346)
    basis_position: int = about("依据位置 The position its amounts were computed at", 12345)


class BalancePublic(BaseModel):
    """余额 One beneficiary's balance in one category: entitled against paid and recovered,
    now or as known at the page's position."""

    beneficiary: str = about("受益方 Credit code, or broker id", _CODE)
    name: str = about("名称 Beneficiary's name", _NAME)
    category: Category = about(_CATEGORY, "absorption")
    county: str = about("县市区 Region code of the beneficiary", "410403")
    entitled: str = about("应补贴（元） Entitled to at the position", "60000.00")
    paid: str = about("已拨付（元） Paid up to the position", "50000.00")
    recovered: str = about("已追回（元） Recovered up to the position", "0.00")
    outstanding: str = about(
        "待结算（元） entitled − paid + recovered: positive 补拨 to pay, negative 追回 to recover",
        "10000.00",
    )
    payouts: list[PayoutTouchPublic] = Field(
        description="兑付记录 The payouts that touched it, up to the position"
    )
    revisions_since_payout: list[EventRefPublic] = Field(
        description="兑付后变更 Events about its contracts (or itself) after its last payout, "
        "up to the position"
    )


class BalanceTotalPublic(BaseModel):
    """合计 One category's balance totals."""

    entitled: str = about("应补贴（元） Entitled", "60000.00")
    paid: str = about("已拨付（元） Paid", "50000.00")
    recovered: str = about("已追回（元） Recovered", "0.00")
    outstanding: str = about("待结算（元） Outstanding", "10000.00")


class BalanceTotalsPublic(BaseModel):
    """分类合计 Balance totals by category."""

    absorption: BalanceTotalPublic = Field(description="技术吸纳 Absorption")
    output: BalanceTotalPublic = Field(description="技术输出 Output")
    broker: BalanceTotalPublic = Field(description="技术经纪人 Brokers")
    one_time: BalanceTotalPublic = Field(description="一次性补助 One-time grants")


class BalancesPage(BaseModel):
    """余额一页 A page of a turnover year's balances, with the totals by category."""

    year: int = about("年度 Turnover year", 2024)
    position: int = about(
        "日志位置 The log position they hold at: the head, or the as_of / position asked", 23456
    )
    policy_version: str = about("政策版本 Policy version", "pingdingshan-2020")
    balances: list[BalancePublic] = Field(description="余额 The balances")
    totals: BalanceTotalsPublic = Field(
        description="合计 Totals (of the county, or of the beneficiary, if given)"
    )
    next_cursor: str | None = about(
        "下一页 Pass as cursor for the next page; null at the end", None
    )


class PayoutLinePublic(BaseModel):
    """兑付明细 One line of a recorded payout."""

    beneficiary: str = about("受益方 Credit code, or broker id", _CODE)
    category: Category = about(_CATEGORY, "absorption")
    amount: str = about("金额（元） Amount in yuan", "50000.00")
    kind: Kind = about(_KIND, "payment")


class DraftLinePublic(PayoutLinePublic):
    """兑付草稿明细 A line that settles one outstanding amount."""

    name: str = about("名称 Beneficiary's name", _NAME)


class DraftTotalsPublic(BaseModel):
    """草稿合计 The draft's totals."""

    payment: str = about("拨付合计（元） To pay", "10000.00")
    recovery: str = about("追回合计（元） To recover", "0.00")


class PayoutDraftPublic(BaseModel):
    """兑付草稿 The lines that would settle every outstanding amount at basis_position: post
    them to the registry's POST /v1/payouts with a payout_no and paid_on to record them."""

    year: int = about("年度 Turnover year", 2024)
    basis_position: int = about("依据位置 The log position the amounts hold at", 23456)
    policy_version: str = about("政策版本 Policy version", "pingdingshan-2020")
    lines: list[DraftLinePublic] = Field(description="明细 The lines")
    totals: DraftTotalsPublic = Field(description="合计 Totals")


class PayoutPublic(BaseModel):
    """兑付 A payout recorded in the log."""

    payout_no: str = about("兑付编号 Payout number", "ZF-2025-001")
    year: int = about("年度 Turnover year paid", 2024)
    paid_on: str = about("拨付日期 Day paid", "2025-06-30")
    basis_position: int = about("依据位置 The position its amounts were computed at", 12345)
    position: int = about("日志位置 Where the payout is in the log", 12346)
    lines: list[PayoutLinePublic] = Field(description="明细 The lines")


class PayoutsPublic(BaseModel):
    """兑付记录 The payouts of a turnover year, in log order."""

    year: int = about("年度 Turnover year", 2024)
    position: int = about("日志位置 The log position they are known at", 23456)
    payouts: list[PayoutPublic] = Field(description="兑付 The payouts")
