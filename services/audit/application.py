"""The audit's use cases over any history (an exported bundle or the live feed), shared by
``tcr audit`` and the audit API: each verifies the history and refuses one that does not verify,
unless the caller says to go on without (the CLI's ``--no-verify``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.audit.content import AuditReport
from services.audit.replay import Cut, replay, subsidy_differences
from services.audit.report import audit_report
from services.audit.sources import LogSource
from services.audit.verify import Trust, Verdict, verify_source
from services.common.errors import Invalid
from services.common.policy.facts import FactsBuilder
from services.common.policy.loader import schedule_from_texts
from services.common.policy.schedule import PolicySchedule

Progress = Callable[[int], None]
Served = Callable[[int, int | None], dict[str, Any]]
Seen = Callable[[Verdict], None]


def _nothing(_: object) -> None:
    """Nothing shown."""


class Unverified(Invalid):
    """The history does not verify, so what was asked of it is refused (nothing computed)."""

    def __init__(self, action: str, verdict: Verdict) -> None:
        super().__init__(
            "verdict",
            refusal(action, verdict),
            f"{action}：已拒绝：历史记录未通过验证（{verdict.summary()}）",
        )
        self.verdict = verdict


def refusal(action: str, verdict: Verdict) -> str:
    """The one wording of a refusal over a history that does not verify."""
    return f"{action}: refused: the history does not verify ({verdict.summary()})"


class Audit:
    """The auditor's questions, each answered by reading the whole history afresh."""

    def __init__(self, schedule: PolicySchedule, trust: Trust | None = None) -> None:
        self.schedule = schedule
        self.trust = trust or Trust()

    def schedule_for(self, source: LogSource) -> PolicySchedule:
        """The schedule a history is computed under: the one its bundle carries (hashed into
        its manifest, so verified with it), else this audit's own."""
        files = source.policy_files()
        if not files:
            return self.schedule
        try:
            return schedule_from_texts(files)
        except ValueError as exc:
            raise Invalid(
                "policy",
                f"the history's policy files: {exc}",
                f"历史记录所附的政策文件有误：{exc}",
            ) from None

    def verify(
        self,
        source: LogSource,
        progress: Progress = _nothing,
        also: Callable[[dict[str, Any]], None] | None = None,
    ) -> Verdict:
        """The tamper-evidence verdict over the history and its signed checkpoints; ``also``
        sees every entry of the same pass, to the end even past a break."""
        return verify_source(source, self.trust, progress, also)

    def replay(
        self,
        source: LogSource,
        position: int | None = None,
        as_of: datetime | None = None,
        *,
        verify: bool = True,
        progress: Progress = _nothing,
        seen: Seen = _nothing,
    ) -> dict[str, Any]:
        """Every year's entitlements recomputed from the history (up to a position or
        instant), verified in the same pass."""
        builder, cut = FactsBuilder(), Cut(position, as_of)
        unreadable: list[Exception] = []

        def fold(envelope: dict[str, Any]) -> None:
            try:
                if cut.admits(envelope):
                    builder.apply(envelope)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                unreadable.append(exc)  # a damaged entry: the verdict names it

        if verify:
            self._refuse_unverified("replay", self.verify(source, progress, fold), seen)
        else:
            for envelope in source.envelopes():
                fold(envelope)
        if unreadable:
            raise unreadable[0]  # a log that verifies yet cannot be read: the facts' fault
        return replay(builder.facts(), self.schedule_for(source), builder.skipped)

    def compare(
        self,
        source: LogSource,
        served: Served,
        *,
        verify: bool = True,
        progress: Progress = _nothing,
        seen: Seen = _nothing,
    ) -> dict[str, Any]:
        """Differences between the recomputation and what the subsidy service serves, now and
        as of three past positions. Raises :class:`~services.audit.findings.StaleHistory`."""
        if verify:
            self._refuse_unverified("compare", self.verify(source, progress), seen)
        return subsidy_differences(source.envelopes, served, self.schedule_for(source))

    def report(
        self,
        source: LogSource,
        year: int,
        *,
        refuse_unverified: bool = True,
        described_as: str = "",
        progress: Progress = _nothing,
    ) -> AuditReport:
        """The evaluation report of ``year``: verified in the same pass that computes it; with
        ``refuse_unverified`` False it is made all the same, under its verdict."""
        try:
            report = audit_report(
                source,
                year,
                self.schedule_for(source),
                self.trust,
                described_as=described_as,
                progress=progress,
            )
        except ValueError as exc:
            raise Invalid("year", str(exc), f"年度无效：{exc}") from None
        if refuse_unverified:
            self._refuse_unverified("report", report.verdict)
        return report

    @staticmethod
    def _refuse_unverified(action: str, verdict: Verdict, seen: Seen = _nothing) -> None:
        seen(verdict)
        if not verdict.ok:
            raise Unverified(action, verdict)
