"""The audit's use cases over the live registry feed, as the audit API asks them: each on a
fresh read of the log, the registry's and subsidy service's failures named as unavailable, and
the last report of each year kept so its findings read page by page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx

from services.audit.application import Audit
from services.audit.content import AuditReport
from services.audit.replay import StaleHistory
from services.audit.served import served_entitlements
from services.audit.sources import RegistrySource
from services.common.errors import Invalid, Unavailable


class LiveAudit:
    """The auditor's questions over the live log; every answer reads the whole history afresh."""

    def __init__(
        self,
        audit: Audit,
        open_source: Callable[[], RegistrySource],
        open_subsidy: Callable[[], httpx.Client],
        registry_url: str,
    ) -> None:
        self._audit = audit
        self._open_source = open_source
        self._open_subsidy = open_subsidy
        self._registry_url = registry_url
        self._reports: dict[int, AuditReport] = {}  # the last report of each year

    @contextmanager
    def _source(self) -> Iterator[RegistrySource]:
        source = self._open_source()
        try:
            yield source
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            why = "refused the audit's token" if status in (401, 403) else f"answered {status}"
            why_zh = "拒绝了审计令牌" if status in (401, 403) else f"答复 {status}"
            raise Unavailable(
                "registry",
                f"the registry {why}; nothing was audited",
                f"登记服务{why_zh}；未进行审计",
            ) from None
        except httpx.TransportError as exc:
            raise Unavailable(
                "registry",
                f"the registry cannot be reached: {exc}",
                f"无法连接登记服务：{exc}",
            ) from None
        finally:
            source.close()

    def verify(self) -> dict[str, Any]:
        """The tamper-evidence verdict over the live log and its signed checkpoints."""
        with self._source() as source:
            return self._audit.verify(source).as_json()

    def replay(self, position: int | None, as_of: datetime | None) -> dict[str, Any]:
        """Every year's entitlements recomputed from the verified log (up to a position or
        instant)."""
        with self._source() as source:
            return self._audit.replay(source, position, as_of)

    def compare(self) -> dict[str, Any]:
        """Differences between the recomputation and what the subsidy service serves."""
        with self._source() as source, self._subsidy() as subsidy:
            try:
                return self._audit.compare(source, subsidy)
            except StaleHistory as exc:
                raise Unavailable(
                    "registry", f"{exc}; retry", f"日志已变化（{exc}）；请重试"
                ) from None

    @contextmanager
    def _subsidy(self) -> Iterator[Callable[[int, int | None], dict[str, Any]]]:
        client = self._open_subsidy()

        def served(year: int, position: int | None) -> dict[str, Any]:
            try:
                return served_entitlements(client, year, position)
            except httpx.HTTPStatusError as exc:
                status = exc.response.status_code
                raise Unavailable(
                    "subsidy",
                    f"the subsidy service answered {status}",
                    f"奖补服务答复 {status}",
                ) from None
            except httpx.TransportError as exc:
                raise Unavailable(
                    "subsidy",
                    f"the subsidy service cannot be reached: {exc}",
                    f"无法连接奖补服务：{exc}",
                ) from None

        try:
            yield served
        finally:
            client.close()

    def report(self, year: int) -> AuditReport:
        """The evaluation report of ``year`` over the verified live log: computed afresh when
        the log has moved on since the last one, else that one (pages of findings read the
        same)."""
        with self._source() as source:
            head = source.head()
            cached = self._reports.get(year)
            if cached is not None and cached.position == head:
                return cached
            report = self._audit.report(source, year, described_as=self._registry_url)
        self._reports[year] = report
        return report

    def findings(self, year: int, cursor: str | None, limit: int) -> dict[str, Any]:
        """One page of the report's findings, in the report's order."""
        report = self.report(year)
        offset = 0
        if cursor is not None:
            position, offset = _decode_cursor(cursor)
            if position != report.position:
                raise Invalid(
                    "cursor",
                    f"the log has moved on from position {position} to {report.position} "
                    "since this cursor was given: read the findings again from the first page",
                    f"给出此游标后日志已从位置 {position} 推进到 {report.position}："
                    "请从第一页重新读取",
                )
        page = report.findings.page(offset, limit)
        more = offset + limit < len(report.findings)
        return {
            "report_year": year,
            "position": report.position,
            "total": len(report.findings),
            "findings": [f.as_json() for f in page],
            "next_cursor": _encode_cursor(report.position, offset + limit) if more else None,
        }

    def health(self) -> dict[str, Any]:
        """Liveness, the policy in force, and the registry's head (None if unreachable)."""
        source = self._open_source()
        try:
            head: int | None = source.head()
        except httpx.HTTPError:
            head = None
        finally:
            source.close()
        return {
            "status": "ok",
            "policy_version": self._audit.schedule.version,
            "registry_url": self._registry_url,
            "registry_head": head,
        }


def _encode_cursor(position: int, offset: int) -> str:
    return f"{position}.{offset}"


def _decode_cursor(cursor: str) -> tuple[int, int]:
    position, _, offset = cursor.partition(".")
    if position.isdigit() and offset.isdigit() and len(cursor) <= 40:
        return int(position), int(offset)
    raise Invalid(
        "cursor",
        "is not a cursor this service gave out: pass next_cursor as it came",
        "不是本服务给出的游标：请原样传回 next_cursor",
    )
