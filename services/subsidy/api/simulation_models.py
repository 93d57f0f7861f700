"""A policy simulation, in and out: a draft policy file and a year; the year's totals and
changes under it beside the version in force (amounts are yuan strings)."""

from __future__ import annotations

from importlib.resources import files

from pydantic import BaseModel, ConfigDict, Field

from services.common.web.openapi import about
from services.subsidy.api.models import TotalPublic

# The bundled policy file with the absorption rate raised to 15 %: a draft a bureau might try.
_DRAFT = (
    (files("services.schemas") / "policy" / "pingdingshan-2020.toml")
    .read_text("utf-8")
    .replace('version = "pingdingshan-2020.1"', 'version = "draft-2024"')
    .replace('rate = "0.10"', 'rate = "0.15"', 1)
)


class SimulationCreate(BaseModel):
    """政策模拟 A draft policy to try on one turnover year of the real history."""

    model_config = ConfigDict(extra="forbid")

    year: int = Field(
        ge=1900,
        le=9999,
        description="年度 Turnover year to recompute; within the draft's applies_to",
        examples=[2024],
    )
    policy: str = Field(
        min_length=1,
        max_length=100_000,
        description="政策草案 The draft: a policy file's TOML text, as schemas/policy/ holds",
        examples=[_DRAFT],
    )


class SimulatedTotalPublic(BaseModel):
    """分类合计 One category's totals, in force and under the draft."""

    current: TotalPublic = Field(description="现行 Under the version in force")
    draft: TotalPublic = Field(description="草案 Under the draft")
    change: str = about("变化（元） Draft minus in force, entitlements", "25000.00")


class SimulatedChangePublic(BaseModel):
    """变化 One beneficiary's entitlement in a category, in force and under the draft."""

    beneficiary: str = about("受益方 Credit code or broker id", "91410403MA00000028")
    name: str = about("名称 Name", "平顶山煤矿机械有限公司")
    category: str = about(
        "类别 absorption 技术吸纳, output 技术输出, broker 技术经纪人", "absorption"
    )
    current: str = about("现行（元） Entitlement in force", "50000.00")
    draft: str = about("草案（元） Entitlement under the draft", "75000.00")
    change: str = about("变化（元） Draft minus in force", "25000.00")


class SimulationPublic(BaseModel):
    """模拟结果 The year recomputed under the draft, beside the policy in force."""

    year: int = about("年度 Turnover year", 2024)
    position: int = about("日志位置 The applied log position both were computed at", 120)
    policy_version: str | None = about(
        "现行政策版本 The version in force for the year (null: none is)", "pingdingshan-2020.1"
    )
    draft_version: str = about("草案版本 The draft's version", "draft-2024")
    totals: dict[str, SimulatedTotalPublic] = Field(
        description="分类合计 By category: in force, under the draft, and the change"
    )
    beneficiaries_gained: int = about("新增受益方 Entitled under the draft, not now", 2)
    beneficiaries_lost: int = about("失去受益方 Entitled now, not under the draft", 0)
    beneficiaries_changed: int = about("变化受益方 Whose entitlement changes at all", 14)
    largest_changes: list[SimulatedChangePublic] = Field(
        description="最大变化 The 20 largest changes, largest first"
    )
