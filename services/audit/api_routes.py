"""Audit routes: parse, ask the audit's use cases, answer. Auditors only, except health."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from services.audit.live import LiveAudit
from services.audit.page import render_html
from services.audit.report import report_json
from services.common.tokens import Principal
from services.common.web.auth import require_roles
from services.common.web.openapi import about, refusals
from services.common.web.params import MAX_POSITION, optional_instant

router = APIRouter(prefix="/v1")

Auditor = Annotated[Principal, Depends(require_roles("auditor"))]


_HASH = "9f2c4a0e5b7d81f3a6c2e4b9d0f18a7c3e5b6d9f0a1c2e3f4a5b6c7d8e9f0a1b"


class VerdictPublic(BaseModel):
    """核验结论 Whether the live log is the one its checkpoints signed."""

    ok: bool = about("通过 Chain, roots and signatures all hold", True)
    checked: int = about("已核验条目 Entries checked", 120)
    last_position: int = about("最后位置 Last position checked", 120)
    head_hash: str = about("链头哈希 Hash of the last entry", _HASH)
    root_hash: str = about("根哈希 Merkle root of the entries checked", _HASH)
    checkpoints_verified: int = about("已核验检查点 Checkpoints verified", 2)
    covered: int = about("已覆盖 Entries under a verified checkpoint", 100)
    uncovered: int = about("未覆盖 Entries after the last checkpoint", 20)
    max_uncovered: int | None = about(
        "未覆盖上限 Most entries allowed uncovered", None, default=None
    )
    position: int | None = about(
        "问题位置 Position of the first problem, if any", None, default=None
    )
    checkpoint: int | None = about(
        "问题检查点 Tree size of the checkpoint that failed", None, default=None
    )
    problem: str | None = about("问题 What is wrong, if anything", None, default=None)
    unproven: bool = about("未证明 Too many entries are not under a checkpoint", False)
    message: str = about("说明 The verdict in words", "verified: 120 entries")


class FindingPublic(BaseModel):
    """发现 One thing an evaluator should look at."""

    kind: str = about("类别 Kind of finding", "invoiced_not_paid")
    label: str = about("名称 The kind, in Chinese", "已开票未付款")
    label_en: str = about("英文名称 The kind, in English", "invoiced, never paid")
    registration_no: str = about("登记号 The contract", "2024410400000001")
    detail: str = about("详情 What was found", "invoice INV-0001 of 600000.00 has no payment")
    position: int | None = about("日志位置 The entry it concerns, if one", 12)


class FindingsPage(BaseModel):
    """发现一页 A page of a year's findings."""

    report_year: int = about("评估年度 Evaluation year", 2024)
    position: int = about("日志位置 Log position the report covers", 120)
    total: int = about("总数 Findings in all", 3)
    findings: list[FindingPublic] = Field(description="发现 This page's findings")
    next_cursor: str | None = about(
        "下一页 Pass as cursor for the next page; null at the end", None
    )


class ReplayPublic(BaseModel):
    """重算 Every year's entitlements recomputed from the log alone."""

    policy_version: str = about(
        "政策版本 Every policy version in force, in year order", "pingdingshan-2020.1"
    )
    policy_versions: dict[str, str] = about(
        "各年度政策版本 The policy version each turnover year is computed under",
        {"2024": "pingdingshan-2020.1"},
    )
    position: int = about("日志位置 Last position replayed", 120)
    years: dict[str, list[dict[str, Any]]] = about(
        "年度补贴 Entitlements by turnover year", {"2024": []}
    )
    skipped_events: dict[str, int] = about(
        "跳过的事件 Entries not read, by event type (a type, or a version of one such as "
        '"TransferProofRecorded v3", newer than this audit): upgrade the audit to read them',
        {},
    )


class CompareYearPublic(BaseModel):
    """年度比对 One year's comparison."""

    year: int = about("年度 Turnover year", 2024)
    policy_version: str = about(
        "政策版本 The policy version the year is recomputed under", "pingdingshan-2020.1"
    )
    position: int = about("日志位置 Position compared at", 120)
    as_of_position: bool = Field(
        description="按位置 True: the subsidy service's materialised version as of this past "
        "position",
        examples=[False],
    )
    entitlements: int = about("补贴数 Entitlements compared", 12)
    differences: int = about("差异数 Entitlements that differ", 0)


class ComparePublic(BaseModel):
    """比对 Where the subsidy service differs from the recomputation."""

    policy_version: str = about("政策版本 Policy version", "pingdingshan-2020")
    years: list[CompareYearPublic] = Field(description="年度 Each year compared")
    differences: list[dict[str, Any]] = about("差异 Each difference", [])


class HealthPublic(BaseModel):
    """运行状态 Liveness."""

    status: str = about("状态 ok when answered", "ok")
    policy_version: str = about("政策版本 Policy in force", "pingdingshan-2020")
    registry_url: str = about("登记服务 Registry read", "http://127.0.0.1:8000")
    registry_head: int | None = about("登记日志头 The registry's head (null: unreachable)", 120)


# 401, 422 and 503 are added to every operation by the document itself.
_READ = refusals(403)
Year = Annotated[
    int, Query(ge=1900, le=9999, description="Evaluation year: figures cover the years to it")
]


_AS_OF = optional_instant("as_of", "Only events recorded at or before this instant")


def audit(request: Request) -> LiveAudit:
    live: LiveAudit = request.app.state.audit
    return live


@router.get("/verify", response_model=VerdictPublic, responses=_READ)
def verify(request: Request, who: Auditor) -> dict[str, Any]:
    """Verify the live log's hash chain, Merkle roots and checkpoint signatures."""
    return audit(request).verify()


@router.get("/replay", response_model=ReplayPublic, responses=_READ)
def replay(
    request: Request,
    who: Auditor,
    as_of: Annotated[datetime | None, Depends(_AS_OF)],
    until: Annotated[
        int | None, Query(ge=0, le=MAX_POSITION, description="Stop after this log position")
    ] = None,
) -> dict[str, Any]:
    """Every year's entitlements recomputed from the log alone, optionally as known earlier."""
    return audit(request).replay(until, as_of)


@router.get("/compare", response_model=ComparePublic, responses=_READ)
def compare(request: Request, who: Auditor) -> dict[str, Any]:
    """Where the subsidy service's entitlements differ from the recomputation."""
    return audit(request).compare()


@router.get("/report", responses=_READ)
def report(request: Request, who: Auditor, year: Year) -> dict[str, Any]:
    """The evaluation figures, chain verdict and finding counts of a year, as JSON; the
    findings themselves page through ``/v1/findings``."""
    return report_json(audit(request).report(year))


@router.get("/findings", response_model=FindingsPage, responses=_READ)
def findings(
    request: Request,
    who: Auditor,
    year: Year,
    cursor: Annotated[
        str | None, Query(max_length=40, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Findings per page")] = 1000,
) -> dict[str, Any]:
    """The report's findings of a year, a page at a time, in the report's order."""
    return audit(request).findings(year, cursor, limit)


@router.get("/report.html", response_class=HTMLResponse, responses=_READ)
def report_html(request: Request, who: Auditor, year: Year) -> HTMLResponse:
    """The evaluation report of a year as one self-contained HTML page."""
    return HTMLResponse(render_html(audit(request).report(year)))


@router.get("/health", response_model=HealthPublic)
def health(request: Request) -> dict[str, Any]:
    """Liveness, the policy in force and the registry's head; needs no token."""
    return audit(request).health()
