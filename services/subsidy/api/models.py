"""What finance receives; amounts are yuan strings with two decimals."""

from __future__ import annotations

from pydantic import BaseModel

from services.common.policy.model import Category, ExclusionReason


class ErrorPublic(BaseModel):
    error: str
    field: str | None
    message: str


class ContractPublic(BaseModel):
    registration_no: str
    evidenced: str


class ExclusionPublic(BaseModel):
    registration_no: str
    reason: ExclusionReason


class EntitlementPublic(BaseModel):
    beneficiary: str
    name: str
    category: Category
    county: str
    turnover: str
    gross: str
    entitlement: str
    capped: bool
    contracts: list[ContractPublic]
    excluded: list[ExclusionPublic]


class EntitlementsPublic(BaseModel):
    year: int
    policy_version: str
    position: int
    entitlements: list[EntitlementPublic]


class TotalPublic(BaseModel):
    beneficiaries: int
    turnover: str
    gross: str
    entitlement: str


class TotalsPublic(BaseModel):
    absorption: TotalPublic
    output: TotalPublic
    broker: TotalPublic


class EntitlementsPage(EntitlementsPublic):
    totals: TotalsPublic
    next_cursor: str | None


class EventRefPublic(BaseModel):
    position: int
    type: str
    subject: str
    recorded_at: str


class RevisionPublic(BaseModel):
    beneficiary: str
    category: Category
    before: EntitlementPublic | None
    after: EntitlementPublic | None
    events: list[EventRefPublic]


class RevisionsPublic(BaseModel):
    year: int
    since: str
    policy_version: str
    position_before: int
    position: int
    revisions: list[RevisionPublic]
    next_cursor: str | None


class HealthPublic(BaseModel):
    applied_position: int
    registry_head: int | None
    lag_events: int | None
    lag_seconds: float | None
    skipped_events: int  # entries of event types this service does not know: upgrade it
