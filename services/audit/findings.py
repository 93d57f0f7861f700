"""What the audit finds wrong: irregularities in the history, and differences from finance's view.

Findings of the report (shared/domain.md § Evaluation figures), each naming a registration
number, a kind and a detail a person can check against the log:

- ``chain_break``: the tamper-evident chain or a checkpoint does not verify (first problem only).
- ``paid_not_invoiced``: non-withdrawn transfer proofs total more than non-voided invoices.
- ``invoiced_not_paid``: non-voided invoices total more than non-withdrawn transfer proofs.
- ``evidence_short``: money both paid and invoiced by the report's end (the engine's evidenced
  amount, within the policy's ceiling) is under :data:`EVIDENCE_MIN_SHARE` of that ceiling (the
  contract amount, or the technology amount), for a contract registered more than
  :data:`EVIDENCE_GRACE_DAYS` days before the report's end.
- ``related_party``: the station declared seller and buyer related (关联企业).
- ``cancelled_after_payout``: see :func:`fed_years`.
- ``overpaid``: the payouts recorded in the log paid a beneficiary more in a category and year
  (payments less recoveries) than it is entitled to now: the difference is still to recover.
- ``recorded_late``: an event recorded more than :data:`LATE_AFTER_DAYS` days after its own date.
- ``recorded_backlog``: the same delay on an entry marked ``intake: "backlog"``, a history
  loaded after the fact (an import of past registrations): counted apart, as it is no late
  recording.
- ``unreadable_event``: an entry the facts cannot take in (its contract is unknown, say).

The three evidence findings and the related-party finding concern contracts in force
(cancelled ones count for nothing and have their own finding). Contract findings cover the
contracts registered on or before the report's end; evidence is as the whole log knows it,
except for ``evidence_short``, which counts only evidence dated by the report's end.
"""

from __future__ import annotations

import io
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, Literal

import orjson

from services.common.money import format_fen
from services.common.payloads import current_payload
from services.common.policy.engine import entitlements, evidence_ceiling, evidenced_until
from services.common.policy.model import Broker, Contract, Facts, Policy
from services.common.policy.schedule import PolicySchedule
from services.common.schemas import event_date_fields

LATE_AFTER_DAYS = 90
EVIDENCE_MIN_SHARE = Fraction(1, 2)
EVIDENCE_GRACE_DAYS = 365
# Days of recording are counted in Pingdingshan's time, where the payout calendar runs.
CHINA_TIME = timezone(timedelta(hours=8), "UTC+08:00")

FindingKind = Literal[
    "chain_break",
    "paid_not_invoiced",
    "invoiced_not_paid",
    "evidence_short",
    "related_party",
    "cancelled_after_payout",
    "overpaid",
    "recorded_late",
    "recorded_backlog",
    "unreadable_event",
]
KIND_LABELS: dict[str, tuple[str, str]] = {
    "chain_break": ("防篡改链断裂", "break in the tamper-evident chain"),
    "paid_not_invoiced": ("付款未开票", "payments never invoiced"),
    "invoiced_not_paid": ("开票未付款", "invoices never paid"),
    "evidence_short": ("凭证远低于合同额", "evidence far from the contract amount"),
    "related_party": ("关联企业合同", "related-party contract"),
    "cancelled_after_payout": ("兑付后注销", "cancelled after a payout"),
    "overpaid": ("多付待追回", "paid more than now entitled: to recover"),
    "recorded_late": ("延迟录入", "recorded long after its date"),
    "recorded_backlog": ("补录历史", "history loaded after the fact (backlog)"),
    "unreadable_event": ("无法读取的条目", "unreadable log entry"),
}

# The field holding each event type's own date, as the event schemas name it.
EVENT_DATE_FIELD = event_date_fields()


@dataclass(frozen=True)
class Finding:
    """One thing an evaluator should look at."""

    kind: FindingKind
    registration_no: str
    detail: str
    position: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": KIND_LABELS[self.kind][0],
            "label_en": KIND_LABELS[self.kind][1],
            "registration_no": self.registration_no,
            "detail": self.detail,
            "position": self.position,
        }


class FindingsLog:
    """The report's findings in order, written to a scratch file as they are found: memory
    holds a count per kind and a mark every :data:`MARK_EVERY` findings, not the findings."""

    MARK_EVERY = 1024

    def __init__(self) -> None:
        # Lives as long as the report (the API keeps the last one for its pages): no `with`,
        # closed when the report is collected.
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self.close = weakref.finalize(self, self._file.close)
        self._marks: list[int] = []  # file offset of every MARK_EVERY-th finding
        self._count = 0
        self.by_kind: dict[str, int] = dict.fromkeys(KIND_LABELS, 0)
        self._lock = threading.Lock()  # pages of one report are read by concurrent requests
        self._read = False  # the file's position moved away from its end

    def append(self, finding: Finding) -> None:
        f = finding
        line = orjson.dumps((f.kind, f.registration_no, f.detail, f.position)) + b"\n"
        with self._lock:
            if self._read:
                self._file.seek(0, io.SEEK_END)
                self._read = False
            if self._count % self.MARK_EVERY == 0:
                self._marks.append(self._file.tell())
            self._file.write(line)
            self._count += 1
            self.by_kind[finding.kind] += 1

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.append(finding)

    def __len__(self) -> int:
        return self._count

    def page(self, offset: int, limit: int) -> list[Finding]:
        """The findings from ``offset`` (0-based), at most ``limit`` of them."""
        if offset >= self._count or limit <= 0:
            return []
        found: list[Finding] = []
        with self._lock:
            self._read = True
            self._file.seek(self._marks[offset // self.MARK_EVERY])
            skip = offset % self.MARK_EVERY
            for line in self._file:
                if skip:
                    skip -= 1
                    continue
                found.append(Finding(*orjson.loads(line)))
                if len(found) == limit:
                    break
        return found

    def __iter__(self) -> Iterator[Finding]:
        offset = 0
        while offset < self._count:
            batch = self.page(offset, self.MARK_EVERY)
            yield from batch
            offset += len(batch)


def recorded_day(recorded_at: str) -> date:
    """The day (China time) of a ``recorded_at`` instant."""
    return datetime.fromisoformat(recorded_at).astimezone(CHINA_TIME).date()


@dataclass
class _Late:
    events: int
    worst_days: int
    worst: str
    position: int


@dataclass
class Paid:
    """What the payouts of a year paid and recovered of one beneficiary in one category."""

    paid_fen: int = 0
    recovered_fen: int = 0
    last_position: int = 0


class LogWatch:
    """Notes, while the log streams by, what the facts do not keep: when things were recorded,
    and what finance's payouts paid.

    Its memory is bounded by the number of contracts, brokers and beneficiaries paid, not by
    the log's length.
    """

    def __init__(self) -> None:
        self.cancelled: dict[str, tuple[date, int]] = {}  # registration no → (day, position)
        self.late: dict[tuple[str, str], _Late] = {}  # (event family, subject) → worst delay
        self.backlog: dict[tuple[str, str], _Late] = {}  # the same, of entries loaded as backlog
        self.first_payouts: dict[int, int] = {}  # turnover year → its first payout's position
        self.paid: dict[tuple[int, str, str], Paid] = {}  # (year, category, beneficiary)

    def observe(self, envelope: Mapping[str, Any]) -> None:
        # A damaged entry is skipped here: the chain's verdict names it.
        with suppress(KeyError, TypeError, ValueError, AttributeError):
            self._observe(envelope)

    def _observe(self, envelope: Mapping[str, Any]) -> None:
        kind, payload = envelope["type"], current_payload(envelope)
        if payload is None:  # a version of its type newer than this audit reads
            return
        day = recorded_day(envelope["recorded_at"])
        position = int(envelope["position"])
        if kind == "ContractCancelled":
            self.cancelled[payload["registration_no"]] = (day, position)
        elif kind == "PayoutRecorded":
            self._payout(position, payload)
        field = EVENT_DATE_FIELD.get(kind)
        if field is None:
            return
        own = date.fromisoformat(payload[field])
        delay = (day - own).days
        if delay <= LATE_AFTER_DAYS:
            return
        family = "broker" if kind == "BrokerFiled" else "contract"
        key = (family, str(envelope["subject"]))
        described = f"{kind} {field} {own.isoformat()} recorded {day.isoformat()}"
        delays = self.backlog if envelope.get("intake") == "backlog" else self.late
        seen = delays.get(key)
        if seen is None:
            delays[key] = _Late(1, delay, described, position)
            return
        seen.events += 1
        if delay > seen.worst_days:
            seen.worst_days, seen.worst, seen.position = delay, described, position

    def _payout(self, position: int, payload: Mapping[str, Any]) -> None:
        year = int(payload["year"])
        self.first_payouts.setdefault(year, position)
        for line in payload["lines"]:
            key = (year, str(line["category"]), str(line["beneficiary"]))
            paid = self.paid.setdefault(key, Paid())
            if line["kind"] == "recovery":
                paid.recovered_fen += int(line["amount_fen"])
            else:
                paid.paid_fen += int(line["amount_fen"])
            paid.last_position = position


def fed_years(
    contract: Contract, facts: Facts, schedule: PolicySchedule, paid_years: Iterable[int]
) -> list[int]:
    """The turnover years among ``paid_years`` (those with a payout recorded before the
    cancellation) that ``contract`` fed.

    The contract *fed* year ``Y`` when, taken as not cancelled, it is counted (not excluded) in
    some beneficiary's positive entitlement for ``Y``. That is judged on the evidence the log
    holds at its end, which is the evidence it held at the cancellation: nothing is recorded
    against a cancelled contract.
    """
    alive = Facts(
        contracts={contract.registration_no: replace(contract, cancelled=False)},
        brokers=facts.brokers,
        funded=facts.funded,
        position=facts.position,
    )
    years = []
    for year in sorted(y for y in paid_years if schedule.in_force(y)):
        if any(
            e.entitlement_fen > 0
            and any(s.registration_no == contract.registration_no for s in e.contracts)
            for e in entitlements(alive, year, schedule.for_year(year))
        ):
            years.append(year)
    return years


def contract_findings(
    contract: Contract,
    facts: Facts,
    watch: LogWatch,
    schedule: PolicySchedule,
    report_end: date,
    first_payouts: Mapping[int, int],
) -> list[Finding]:
    """The findings about one contract (none if registered after ``report_end``); ``facts``
    gives the brokers and funding it is judged with, ``first_payouts`` the position of each
    year's first payout."""
    no = contract.registration_no
    if contract.registered_on > report_end:
        return []
    found: list[Finding] = []
    if contract.cancelled:
        found += _cancellation(contract, facts, watch, schedule, first_payouts)
    else:
        found += _evidence(contract, report_end, schedule.at(report_end.year))
        if contract.related_party:
            found.append(
                Finding(
                    "related_party",
                    no,
                    f"seller {contract.seller.name} ({contract.seller.credit_code}) and buyer "
                    f"{contract.buyer.name} ({contract.buyer.credit_code}) declared related; "
                    f"contract amount {format_fen(contract.contract_amount_fen)}",
                )
            )
    late = watch.late.get(("contract", no))
    if late is not None:
        found.append(_late(no, late))
    backlog = watch.backlog.get(("contract", no))
    if backlog is not None:
        found.append(_late(no, backlog, kind="recorded_backlog"))
    return found


def broker_findings(
    brokers: Mapping[str, Broker], watch: LogWatch, report_end: date
) -> Iterator[Finding]:
    """The findings about brokers filed by ``report_end``: filings recorded late."""
    for broker_id in sorted(brokers):
        if brokers[broker_id].filed_on > report_end:
            continue
        late = watch.late.get(("broker", broker_id))
        if late is not None:
            yield _late("", late, f"broker {broker_id}: ")
        backlog = watch.backlog.get(("broker", broker_id))
        if backlog is not None:
            yield _late("", backlog, f"broker {broker_id}: ", "recorded_backlog")


def _late(
    no: str,
    late: _Late,
    prefix: str = "",
    kind: Literal["recorded_late", "recorded_backlog"] = "recorded_late",
) -> Finding:
    more = f" ({late.events} events late)" if late.events > 1 else ""
    if kind == "recorded_backlog":
        more = f" ({late.events} events loaded as backlog)" if late.events > 1 else " (backlog)"
    return Finding(
        kind,
        no,
        f"{prefix}{late.worst}, {late.worst_days} days after its date{more}",
        late.position,
    )


def _evidence(contract: Contract, report_end: date, policy: Policy) -> list[Finding]:
    no = contract.registration_no
    paid = sum(p.amount_fen for p in contract.transfer_proofs if not p.withdrawn)
    invoiced = sum(i.amount_fen for i in contract.invoices if not i.voided)
    found = []
    if paid > invoiced:
        found.append(
            Finding(
                "paid_not_invoiced",
                no,
                f"transfer proofs {format_fen(paid)} exceed invoices {format_fen(invoiced)} "
                f"by {format_fen(paid - invoiced)}",
            )
        )
    elif invoiced > paid:
        found.append(
            Finding(
                "invoiced_not_paid",
                no,
                f"invoices {format_fen(invoiced)} exceed transfer proofs {format_fen(paid)} "
                f"by {format_fen(invoiced - paid)}",
            )
        )
    if (report_end - contract.registered_on).days > EVIDENCE_GRACE_DAYS:
        # Only invoices issued by the report's end: what an evaluator held on that day.
        evidenced = evidenced_until(contract, report_end, policy, invoiced_by=report_end)
        amount = evidence_ceiling(contract, policy)
        if evidenced < EVIDENCE_MIN_SHARE * amount:
            found.append(
                Finding(
                    "evidence_short",
                    no,
                    f"paid and invoiced by {report_end.isoformat()}: {format_fen(evidenced)} of "
                    f"{format_fen(amount)} ({100 * evidenced / amount:.0f}%), registered "
                    f"{contract.registered_on.isoformat()}",
                )
            )
    return found


def _cancellation(
    contract: Contract,
    facts: Facts,
    watch: LogWatch,
    schedule: PolicySchedule,
    first_payouts: Mapping[int, int],
) -> list[Finding]:
    noted = watch.cancelled.get(contract.registration_no)
    if noted is None:
        return []
    day, position = noted
    paid = [year for year, first in first_payouts.items() if first < position]
    years = fed_years(contract, facts, schedule, paid)
    if not years:
        return []
    listed = ", ".join(str(y) for y in years)
    return [
        Finding(
            "cancelled_after_payout",
            contract.registration_no,
            f"cancellation recorded {day.isoformat()}, after a payout of turnover year(s) "
            f"{listed} was recorded; the entitlements it fed are revised",
            position,
        )
    ]


def overpaid_findings(
    watch: LogWatch, entitled: Mapping[tuple[int, str, str], int], years: Iterable[int]
) -> Iterator[Finding]:
    """Where the recorded payouts of ``years`` paid more than the entitlement now (追回)."""
    covered = set(years)
    for key in sorted(watch.paid):
        year, category, beneficiary = key
        paid, now = watch.paid[key], entitled.get(key, 0)
        net = paid.paid_fen - paid.recovered_fen
        if year in covered and net > now:
            yield Finding(
                "overpaid",
                "",
                f"{beneficiary} {category} {year}: paid {format_fen(paid.paid_fen)}, recovered "
                f"{format_fen(paid.recovered_fen)}, entitled now {format_fen(now)}: "
                f"{format_fen(net - now)} to recover",
                paid.last_position,
            )
