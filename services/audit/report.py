"""The evaluation report: one streaming pass over the history, then figures, findings and files.

The pass verifies the tamper-evident chain while the same envelopes are tallied, so what it
holds does not grow with the log: figures are running sums; each contract's envelopes wait in a
scratch file until the log has been read, then the contract is folded alone; findings are
written to a file as they are found. A broken chain stops the verification, not the figures:
the rest of the log is still read and reported, under the verdict that says where it broke.

Written: ``report.html`` (one self-contained page: inline CSS and SVG, no script, no network),
``figures.json`` and ``figures.csv`` (the same figures), and ``findings.csv``.
"""

from __future__ import annotations

import csv
import heapq
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from services.audit.content import AuditReport
from services.audit.figures import FigureSums, figure_rows
from services.audit.findings import (
    Finding,
    FindingsLog,
    LogWatch,
    broker_findings,
    contract_findings,
    overpaid_findings,
)
from services.audit.page import render_html
from services.audit.scratch import Scratch
from services.audit.sources import LogSource
from services.audit.verify import Trust, Verdict, verify_source
from services.common.envelope import format_instant
from services.common.policy.engine import (
    contract_claims,
    entitlement_of,
    evidence_years,
    one_time_entitlements,
)
from services.common.policy.facts import FactsBuilder
from services.common.policy.model import Contract
from services.common.policy.schedule import PolicySchedule
from services.common.spreadsheet import safe_cell

REPORT_HTML = "report.html"
FIGURES_JSON = "figures.json"
FIGURES_CSV = "figures.csv"
FINDINGS_CSV = "findings.csv"
MAX_UNREADABLE = 100  # a log this damaged has said enough


def audit_report(
    source: LogSource,
    year: int,
    schedule: PolicySchedule,
    trust: Trust | None = None,
    *,
    described_as: str = "",
    progress: Callable[[int], None] = lambda n: None,
) -> AuditReport:
    """Verify the history and compute the evaluation figures and findings for ``year``, in one
    pass over the log; a history that does not verify is reported all the same, under its
    verdict (refusing it is the caller's choice)."""
    one_pass = _Pass(schedule, year)  # refuses a year with nothing in force before reading the log
    try:
        verdict = verify_source(source, trust or Trust(), progress, one_pass.take)
        findings = one_pass.finish(verdict)
    finally:
        one_pass.scratch.close()
    return AuditReport(
        year=year,
        verdict=verdict,
        figures=one_pass.sums.figures(),
        findings=findings,
        position=one_pass.position,
        policy_version=schedule.describe(),  # each version with the years it applies to
        generated_at=datetime.now(UTC),
        source=described_as,
    )


class _Pass:
    """The report's pass: a contract's envelopes are spilled to the scratch store as the log
    streams by; brokers and provincial funding (far fewer than contracts) are folded at once.
    Then each contract is folded alone, its figures added to the running sums, its findings
    written, its claims spilled; then each beneficiary's entitlement is summed from them."""

    def __init__(self, schedule: PolicySchedule, year: int) -> None:
        self.schedule = schedule
        self.sums = FigureSums(schedule, year)
        self.covered = set(self.sums.years)
        self.report_end = date(year, 12, 31)
        self.scratch = Scratch()
        self.others = FactsBuilder()  # brokers and provincial funding
        self.watch = LogWatch()  # of the brokers' filings
        self.position = 0
        self._seq = 0
        self._unreadable: list[tuple[int, Finding]] = []  # the first in the log, a heap

    def take(self, envelope: dict[str, Any]) -> None:
        self._seq += 1
        try:
            position = int(envelope["position"])
            if position <= self.position:
                return  # as the facts ignore it: the verdict names a log out of order
            self.position = position
            contract = _contract_of(envelope)
            if contract is not None:
                self.scratch.add_envelope(contract, self._seq, envelope)
                return
            self.watch.observe(envelope)
            self.others.apply(envelope)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self._unreadable_at(self._seq, envelope, exc)

    def finish(self, verdict: Verdict) -> FindingsLog:
        """After the pass: fold each contract, add it up and write its findings, in the
        report's order (the chain's break, contracts and brokers by number, unreadable
        entries in log order)."""
        found = FindingsLog()
        if not verdict.ok:
            found.append(Finding("chain_break", "", verdict.summary(), verdict.position))
        others = self.others.facts()
        for contract, watch in self._contracts():
            self.sums.add_contract(contract)
            for year in sorted(evidence_years(contract) & self.covered):
                self.scratch.add_claims(
                    year,
                    contract_claims(
                        contract,
                        year,
                        others.brokers,
                        others.funded,
                        self.schedule.for_year(year),
                    ),
                )
            found.extend(
                contract_findings(
                    contract,
                    others,
                    watch,
                    self.schedule,
                    self.report_end,
                    self.watch.first_payouts,
                )
            )
        found.extend(broker_findings(others.brokers, self.watch, self.report_end))
        entitled: dict[tuple[int, str, str], int] = {}
        for (year, category, beneficiary), listed in self.scratch.beneficiaries():
            policy = self.schedule.for_year(year)
            entitlement = entitlement_of(category, beneficiary, year, listed, policy)
            self.sums.add_entitlement(entitlement)
            entitled[(year, category, beneficiary)] = entitlement.entitlement_fen
        # One-time grants are entitled as decided: a payout of one is no overpayment.
        for year in sorted(self.covered):
            for granted in one_time_entitlements(others, year, self.schedule.for_year(year)):
                entitled[(year, granted.category, granted.beneficiary)] = granted.entitlement_fen
        for grant in others.grants:
            self.sums.add_grant(grant)
        for institution in others.institutions:
            self.sums.add_institution(institution)
        found.extend(overpaid_findings(self.watch, entitled, self.covered))
        for broker in others.brokers.values():
            self.sums.add_broker(broker.filed_on)
        found.extend(finding for _, finding in sorted(self._unreadable, reverse=True))
        return found

    def _contracts(self) -> Iterator[tuple[Contract, LogWatch]]:
        """Each contract folded alone from its envelopes, with what they say of recording."""
        for _, envelopes in self.scratch.contracts():
            builder, watch = FactsBuilder(), LogWatch()
            for seq, envelope in envelopes:
                try:
                    builder.apply(envelope)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    self._unreadable_at(seq, envelope, exc)
                watch.observe(envelope)
            for contract in builder.facts().contracts.values():
                yield contract, watch

    def _unreadable_at(self, seq: int, envelope: Any, exc: Exception) -> None:
        entry = (-seq, _unreadable(envelope, exc))
        if len(self._unreadable) < MAX_UNREADABLE:
            heapq.heappush(self._unreadable, entry)
        else:
            heapq.heappushpop(self._unreadable, entry)


def _contract_of(envelope: dict[str, Any]) -> str | None:
    """The registration number an envelope's payload names: then it is a contract's."""
    payload = envelope["payload"]
    number = payload.get("registration_no") if isinstance(payload, dict) else None
    return number if isinstance(number, str) else None


def _unreadable(envelope: Any, exc: Exception) -> Finding:
    position = envelope.get("position") if isinstance(envelope, dict) else None
    subject = envelope.get("subject") if isinstance(envelope, dict) else None
    return Finding(
        "unreadable_event",
        str(subject or ""),
        f"the entry cannot be applied to the facts ({type(exc).__name__}: {exc})",
        position if isinstance(position, int) else None,
    )


# -- JSON and CSV ------------------------------------------------------------------------------


def report_json(report: AuditReport) -> dict[str, Any]:
    """The report as JSON: what it covers, the chain's verdict, the figures, finding counts."""
    return {
        "report_year": report.year,
        "generated_at": format_instant(report.generated_at),
        "source": report.source,
        "policy_version": report.policy_version,
        "position": report.position,
        "verdict": report.verdict.as_json(),
        **report.figures.as_json(),
        "findings_by_kind": dict(report.findings.by_kind),
    }


def write_report(report: AuditReport, folder: Path) -> dict[str, Path]:
    """Write the page, the figures (JSON, CSV) and the findings (CSV) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in (REPORT_HTML, FIGURES_JSON, FIGURES_CSV, FINDINGS_CSV)}
    paths[REPORT_HTML].write_text(render_html(report), "utf-8")
    paths[FIGURES_JSON].write_text(
        json.dumps(report_json(report), ensure_ascii=False, indent=2) + "\n", "utf-8"
    )
    # UTF-8 with BOM, so spreadsheets read the Chinese labels.
    with paths[FIGURES_CSV].open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["figure", "year", "key", "measure", "value"])
        for row in figure_rows(report.figures):
            writer.writerow([_csv_value(v) for v in row])
    with paths[FINDINGS_CSV].open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        keys = ("registration_no", "kind", "label", "label_en", "detail", "position")
        writer.writerow(keys)
        for finding in report.findings:
            f = finding.as_json()
            writer.writerow([_csv_value(f[k]) for k in keys])
    return paths


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return safe_cell(str(value))  # no cell an auditor opens may run as a formula
