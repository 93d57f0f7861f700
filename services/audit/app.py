"""The audit service's composition root, and its use cases over the live registry feed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI

from services.audit.api_routes import router
from services.audit.findings import StaleHistory, subsidy_differences
from services.audit.replay import replay, replay_facts, until
from services.audit.report import AuditReport, audit_report
from services.audit.served import served_entitlements
from services.audit.settings import AuditSettings
from services.audit.sources import RegistrySource
from services.audit.verify import DEFAULT_CHECKPOINT_EVERY, verify_log
from services.common.errors import Invalid, Unavailable
from services.common.policy.model import Policy
from services.common.web.api import build_api


class Audit:
    """The auditor's questions, each answered by reading the whole history afresh."""

    def __init__(
        self,
        open_source: Callable[[], RegistrySource],
        open_subsidy: Callable[[], httpx.Client],
        policy: Policy,
        registry_url: str,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    ) -> None:
        self._open_source = open_source
        self._open_subsidy = open_subsidy
        self._policy = policy
        self._registry_url = registry_url
        self._reports: dict[int, AuditReport] = {}  # the last report of each year
        self._checkpoint_every = checkpoint_every

    @contextmanager
    def _source(self) -> Iterator[RegistrySource]:
        source = self._open_source()
        try:
            yield source
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            why = "refused the audit's token" if status in (401, 403) else f"answered {status}"
            raise Unavailable("registry", f"the registry {why}; nothing was audited") from None
        except httpx.TransportError as exc:
            raise Unavailable("registry", f"the registry cannot be reached: {exc}") from None
        finally:
            source.close()

    def verify(self) -> dict[str, Any]:
        """The tamper-evidence verdict over the live log and its signed checkpoints."""
        with self._source() as source:
            checkpoints = source.checkpoints()  # first: the log is then read as of them
            verdict = verify_log(
                source.envelopes(),
                checkpoints,
                source.public_key_pem(),
                checkpoint_every=self._checkpoint_every,
            )
        return verdict.as_json()

    def replay(self, position: int | None, as_of: datetime | None) -> dict[str, Any]:
        """Every year's entitlements recomputed from the log (up to a position or instant)."""
        with self._source() as source:
            facts = replay_facts(until(source.envelopes(), position, as_of))
        return replay(facts, self._policy)

    def compare(self) -> dict[str, Any]:
        """Differences between the recomputation and what the subsidy service serves."""
        with self._source() as source, self._subsidy() as subsidy:
            try:
                return subsidy_differences(source.envelopes, subsidy, self._policy)
            except StaleHistory as exc:
                raise Unavailable("registry", f"{exc}; retry") from None

    @contextmanager
    def _subsidy(self) -> Iterator[Callable[[int, int | None], dict[str, Any]]]:
        client = self._open_subsidy()

        def served(year: int, position: int | None) -> dict[str, Any]:
            try:
                return served_entitlements(client, year, position)
            except httpx.HTTPStatusError as exc:
                status = exc.response.status_code
                raise Unavailable("subsidy", f"the subsidy service answered {status}") from None
            except httpx.TransportError as exc:
                raise Unavailable(
                    "subsidy", f"the subsidy service cannot be reached: {exc}"
                ) from None

        try:
            yield served
        finally:
            client.close()

    def report(self, year: int) -> AuditReport:
        """The evaluation report of ``year`` over the live log: computed afresh when the log
        has moved on since the last one, else that one (pages of findings read the same)."""
        with self._source() as source:
            head = source.head()
            cached = self._reports.get(year)
            if cached is not None and cached.position == head:
                return cached
            try:
                report = audit_report(
                    source,
                    year,
                    self._policy,
                    described_as=self._registry_url,
                    checkpoint_every=self._checkpoint_every,
                )
            except ValueError as exc:
                raise Invalid("year", str(exc)) from None
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
                )
        page = report.findings[offset : offset + limit]
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
            "policy_version": self._policy.version,
            "registry_url": self._registry_url,
            "registry_head": head,
        }


def create_app(
    settings: AuditSettings, *, subsidy_transport: httpx.BaseTransport | None = None
) -> FastAPI:
    """Wire the audit API over the live registry feed and the subsidy service."""
    registry_token = settings.registry_token.get_secret_value()
    subsidy_token = settings.subsidy_token.get_secret_value() or registry_token

    def open_subsidy() -> httpx.Client:
        return httpx.Client(
            base_url=settings.subsidy_url.rstrip("/"),
            headers={"Authorization": f"Bearer {subsidy_token}"},
            timeout=60.0,
            transport=subsidy_transport,
        )

    policy = settings.policy()
    app = build_api(
        title="Technology contract audit",
        description=(
            "Third-party evaluation over the registry's live log: verify the hash chain and "
            "signed checkpoints, recompute every entitlement, compare with what the subsidy "
            "service serves, and compute the plan's evaluation figures and findings. Every "
            "answer reads the whole history afresh. Auditor tokens only."
        ),
        router=router,
        tokens_file=settings.tokens_file,
        # An evaluation year before the policy's first has nothing to evaluate (a 422).
        parameters={"year": {"minimum": policy.first_year, "examples": [policy.last_year]}},
    )
    app.state.audit = Audit(
        lambda: RegistrySource(settings.registry_url, registry_token),
        open_subsidy,
        policy,
        settings.registry_url,
        settings.checkpoint_every,
    )
    return app


def _encode_cursor(position: int, offset: int) -> str:
    return f"{position}.{offset}"


def _decode_cursor(cursor: str) -> tuple[int, int]:
    position, _, offset = cursor.partition(".")
    if position.isdigit() and offset.isdigit() and len(cursor) <= 40:
        return int(position), int(offset)
    raise Invalid("cursor", "is not a cursor this service gave out: pass next_cursor as it came")
