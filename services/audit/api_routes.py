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
from services.common.web.params import MAX_POSITION, optional_instant

router = APIRouter(prefix="/v1")

Auditor = Annotated[Principal, Depends(require_roles("auditor"))]


class ErrorPublic(BaseModel):
    error: str
    field: str | None
    message: str


class VerdictPublic(BaseModel):
    ok: bool
    checked: int
    last_position: int
    head_hash: str
    root_hash: str
    checkpoints_verified: int
    covered: int
    uncovered: int
    max_uncovered: int | None = None
    position: int | None = None
    checkpoint: int | None = None
    problem: str | None = None
    unproven: bool
    message: str


class FindingPublic(BaseModel):
    kind: str
    label: str
    label_en: str
    registration_no: str
    detail: str
    position: int | None


class FindingsPage(BaseModel):
    report_year: int
    position: int
    total: int
    findings: list[FindingPublic]
    next_cursor: str | None


class ReplayPublic(BaseModel):
    policy_version: str
    position: int
    years: dict[str, list[dict[str, Any]]]


class CompareYearPublic(BaseModel):
    year: int
    position: int
    as_of_position: bool = Field(
        description="True: the subsidy service's materialised version as of this past position"
    )
    entitlements: int
    differences: int


class ComparePublic(BaseModel):
    policy_version: str
    years: list[CompareYearPublic]
    differences: list[dict[str, Any]]


class HealthPublic(BaseModel):
    status: str
    policy_version: str
    registry_url: str
    registry_head: int | None


_READ: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic},
    403: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}
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
