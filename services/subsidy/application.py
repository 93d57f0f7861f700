"""The subsidy application: finance's questions, answered from the materialised projection."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from services.common.counties import county_name
from services.common.envelope import format_instant
from services.common.errors import Invalid, NotFound
from services.common.money import format_fen
from services.common.policy.engine import evidence
from services.common.policy.model import ALL_CATEGORIES, Category, Contract
from services.common.policy.present import PROGRAMME_ZH, REASON_ZH, exclusion_json, rate_text, yuan
from services.common.policy.schedule import PolicySchedule
from services.common.runtime import collector_paused
from services.subsidy import cursors, exports, reads
from services.subsidy.exports import Export
from services.subsidy.projection import (
    ONE_TIME,
    ClaimValue,
    EntitlementKey,
    EntitlementValue,
    GrantFacts,
    TotalValue,
)
from services.subsidy.reads import ClaimChange, Cut, Row
from services.subsidy.store import EntryStore
from services.subsidy.tables import PROJECTION_VERSION
from services.subsidy.workbook_cache import WorkbookCache

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
# A revision carries both versions and every event behind them: ten times the bytes of an
# entitlement (2.7 MB for 1,138 of them at 100k events), so its pages are smaller.
DEFAULT_REVISIONS_LIMIT = 100


class Subsidy:
    """Yearly entitlements, explained, as known now or at any past instant or position."""

    def __init__(
        self,
        store: EntryStore,
        schedule: PolicySchedule,
        registry_head: Callable[[], int | None] = lambda: None,
        workbooks: WorkbookCache | None = None,
    ) -> None:
        self._store = store
        self._engine = store.engine
        self._schedule = schedule
        self._registry_head = registry_head
        self._workbooks = workbooks

    @property
    def schedule(self) -> PolicySchedule:
        return self._schedule

    def entitlements(
        self,
        year: int,
        category: str | None = None,
        as_of: datetime | None = None,
        *,
        position: int | None = None,
        county: str | None = None,
        min_fen: int | None = None,
        sort: reads.Sort = "category",
        cursor: str | None = None,
        before: str | None = None,
        limit: int = DEFAULT_LIMIT,
        claims: bool = False,
    ) -> dict[str, Any]:
        """One page of a turnover year's entitlements in ``sort`` order, with the year's totals
        by category; as known now, at ``as_of``, or at log ``position``. The page after
        ``cursor``, or the one before ``before``; each row with the contracts counted and left
        out only when ``claims`` is asked for (else their count: a page costs its rows)."""
        self._check_year(year)
        if cursor and before:
            raise Invalid(
                "before",
                "give either cursor (the next page) or before (the previous one), not both",
                "cursor（下一页）与 before（上一页）只能给出其一",
            )
        after = cursors.decode_sorted(cursor, sort) if cursor else None
        ahead = cursors.decode_sorted(before, sort, "before") if before else None
        with reads.snapshot(self._engine) as conn:
            cut = self._cut(conn, as_of, position)
            read = functools.partial(
                reads.page, conn, year, cut, category=category, county=county, min_fen=min_fen,
                sort=sort,
            )  # fmt: skip
            rows = read(after=after, before=ahead, limit=limit + 1, claims=claims)
            if ahead is not None:  # read backward: the extra row is the first, before the page
                more_before, rows = len(rows) > limit, rows[-limit:]
                more_after = True
            else:
                more_after, rows = len(rows) > limit, rows[:limit]
                # Anything before this page? One row read backward from its first says.
                more_before = after is not None and bool(
                    rows and read(before=reads.sort_key(sort, rows[0]), limit=1, claims=False)
                )
            totals = reads.totals(conn, year, cut, county)
        return {
            **self._answer(year, cut.position, [self._json(r, claims) for r in rows]),
            "totals": _totals_json(totals),
            "next_cursor": (
                cursors.encode_sorted(sort, reads.sort_key(sort, rows[-1]))
                if more_after and rows
                else None
            ),
            "previous_cursor": (
                cursors.encode_sorted(sort, reads.sort_key(sort, rows[0]))
                if more_before and rows
                else None
            ),
        }

    def all_entitlements(
        self, year: int, as_of: datetime | None = None, position: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every entitlement of a year, explained, at one position (see :meth:`export`)."""
        return (self._json(row, True) for row in self.export(year, as_of, position).rows)

    def export(
        self,
        year: int,
        as_of: datetime | None = None,
        position: int | None = None,
        min_fen: int | None = None,
    ) -> Export:
        """A year's entitlements (of at least ``min_fen``) with the year's totals, as known now,
        at ``as_of`` or at ``position``, stated as of the year's last change up to there; the
        rows are read page by page when iterated, every page at the cut, so an export speaks of
        one log however it grows."""
        self._check_year(year)
        with reads.snapshot(self._engine) as conn:
            cut = self._cut(conn, as_of, position)
            changed = exports.last_change(conn, year, cut.position)
            totals = reads.totals(conn, year, cut, None)
        return Export(
            year,
            self._schedule.version_of(year),
            changed.position,
            totals,
            self._rows(year, cut.position, min_fen),
            changed.entry,
        )

    def xlsx(
        self,
        year: int,
        as_of: datetime | None = None,
        position: int | None = None,
        min_fen: int | None = None,
    ) -> Iterator[bytes]:
        """The year's entitlements and the contracts behind them as an XLSX workbook, streamed
        (the year, cut and position are checked before the first byte); one written before for
        the year as it stood at its last change, under the same policy and layout, is read
        back instead, however many entries of other years were applied since."""
        export = self.export(year, as_of, position, min_fen)
        if self._workbooks is None:
            return exports.xlsx_chunks(export)
        key = {
            "workbook": "entitlements",
            "layout": exports.LAYOUT,
            "projection": PROJECTION_VERSION,
            "schedule": self._schedule.fingerprint(),
            # Which history the position is of: the store keeps no hash per position, but a
            # store rebuilt from another registry's log has another entry there (another
            # instant, contract or type), so it does not read this one's workbook back.
            "entry": export.entry,
            "position": export.position,
            "year": year,
            "min_fen": min_fen,
        }
        return self._workbooks.chunks(key, functools.partial(exports.write_xlsx, export))

    def csv(
        self,
        year: int,
        as_of: datetime | None = None,
        position: int | None = None,
        min_fen: int | None = None,
        *,
        sheet: exports.Sheet = "entitlements",
    ) -> Iterator[bytes]:
        """One sheet of the workbook as CSV (UTF-8 with BOM), streamed."""
        return exports.csv_chunks(self.export(year, as_of, position, min_fen), sheet)

    def beneficiary(self, beneficiary: str, year: int) -> dict[str, Any]:
        """One beneficiary's entitlements in a year, each explained contract by contract: paid,
        invoiced, ceiling and evidenced, the share of each broker, the rate and the cap."""
        self._check_year(year)
        with reads.snapshot(self._engine) as conn:
            position = reads.head(conn).position
            rows = reads.beneficiary(conn, year, beneficiary)
            numbers = [no for row in rows for no, _ in row.claims]
            contracts = reads.contracts(conn, numbers)
            grants = reads.grants(conn, numbers)
        if not rows:
            raise NotFound(
                "beneficiary",
                f"{beneficiary} has no entitlement or claim for {year}",
                f"{beneficiary} 在 {year} 年度没有补助，也没有未计入的合同",
            )
        explained = [
            self._granted(row, grants, position)
            if row.key[1] == ONE_TIME
            else self._explained(row, contracts, position)
            for row in rows
        ]
        return self._answer(year, position, explained)

    def revisions(
        self,
        year: int,
        since: datetime,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_REVISIONS_LIMIT,
        claims: bool = False,
    ) -> dict[str, Any]:
        """The entitlements that changed after ``since``, a page at a time: before and after,
        the contracts whose part changed, and the events about them since. Every contract
        behind before and after only when ``claims`` is asked for (it was 90 % of the bytes)."""
        self._check_year(year)
        after_key = cursors.decode(cursor) if cursor else None
        # A page of 1,000 builds some 300,000 objects that die with it, in which the cycle
        # collector's passes found nothing: at 1M events (in-process, beside 300,000 objects
        # that live on, as in a server) p50 145 -> 120 ms, max 204 -> 170 over 50 instants.
        with collector_paused():
            return self._revisions(year, since, after_key, limit, claims)

    def _revisions(
        self,
        year: int,
        since: datetime,
        after_key: tuple[str, str] | None,
        limit: int,
        claims: bool,
    ) -> dict[str, Any]:
        with reads.snapshot(self._engine) as conn:
            now = reads.head(conn).position
            then = reads.position_at(conn, format_instant(since), now)
            keys, more = reads.changed_since(conn, year, then, after=after_key, limit=limit)
            was, is_ = reads.values_then_and_now(conn, year, then, keys)
            parts = reads.claim_changes(conn, year, then, keys)
            # A version can end and a new one begin with the same amounts and the same claims
            # (changed and changed back): no revision.
            changed = [k for k in keys if was.get(k) != is_.get(k) or k in parts]
            if claims:
                before = {
                    r.key: self._json(r, True)
                    for r in reads.rows_at(conn, year, Cut(then, False), changed)
                }
                after = {
                    r.key: self._json(r, True)
                    for r in reads.rows_at(conn, year, Cut(now, True), changed)
                }
            else:
                before = {k: self._amounts_json(k, was[k]) for k in changed if k in was}
                after = {k: self._amounts_json(k, is_[k]) for k in changed if k in is_}
            subjects = {k: {k[2]} | {c.registration_no for c in parts.get(k, ())} for k in changed}
            by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for event in reads.events(conn, then, now, set().union(*subjects.values())):
                by_subject[event["subject"]].append(event)
        revisions = [
            {
                "beneficiary": key[2],
                "category": key[1],
                "before": before.get(key),
                "after": after.get(key),
                "contracts": [_claim_change_json(c) for c in parts.get(key, ())],
                "events": sorted(
                    (e for subject in subjects[key] for e in by_subject[subject]),
                    key=itemgetter("position"),
                ),
            }
            for key in changed
        ]
        return {
            "year": year,
            "since": format_instant(since),
            "policy_version": self._schedule.version_of(year),
            "position_before": then,
            "position": now,
            "revisions": revisions,
            "next_cursor": cursors.encode(*keys[-1][1:]) if more else None,
        }

    def health(self) -> dict[str, Any]:
        """How far the store reaches, how far behind the registry it is, and how many entries
        it skipped as being of event types it does not know."""
        head = self._store.head()
        registry_head = self._registry_head()
        lag_events = max(registry_head - head.position, 0) if registry_head is not None else None
        lag_seconds: float | None = 0.0
        if lag_events:
            # How long the oldest event not yet applied has waited, when it is stored here.
            waiting = self._store.first_recorded_after(head.position)
            lag_seconds = (
                round(
                    max((datetime.now(UTC) - datetime.fromisoformat(waiting)).total_seconds(), 0.0),
                    3,
                )
                if waiting is not None
                else None
            )
        return {
            "applied_position": head.position,
            "registry_head": registry_head,
            "lag_events": lag_events,
            "lag_seconds": lag_seconds,
            "skipped_events": self._store.skipped_events(),
        }

    def county_totals(self, year: int) -> dict[str, Any]:
        """The year's totals by county, each by category, as known now."""
        self._check_year(year)
        with reads.snapshot(self._engine) as conn:
            position = reads.head(conn).position
            by_county = reads.county_totals(conn, year)
        return {
            "year": year,
            "position": position,
            "counties": {c: _totals_json(by_county[c]) for c in sorted(by_county)},
        }

    # -- internals ----------------------------------------------------------------------------

    def _check_year(self, year: int) -> None:
        check_year(self._schedule, year)

    def _rows(self, year: int, position: int, min_fen: int | None) -> Iterator[Row]:
        after: tuple[str, str] | None = None
        while True:
            with reads.snapshot(self._engine) as conn:
                # The head may have moved since: read as of the position, not "now".
                cut = self._cut(conn, None, position)
                rows = reads.page(conn, year, cut, min_fen=min_fen, after=after, limit=MAX_LIMIT)
            yield from rows
            if len(rows) < MAX_LIMIT:
                return
            after = (rows[-1].key[1], rows[-1].key[2])

    def _cut(self, conn: Any, as_of: datetime | None, position: int | None) -> Cut:
        return cut_at(conn, as_of, position)

    def _json(self, row: Row, claims: bool) -> dict[str, Any]:
        """An entitlement as ``entitlement_json`` writes it, with its county and how many
        contracts it was computed from, straight from the stored row; with ``claims``, the
        contracts counted and left out (the property tests hold the two equal to the engine),
        else those are None."""
        figures = self._amounts_json(row.key, row.value, row.name)
        if not claims:
            return figures
        return {
            **figures,
            "contracts": [
                {"registration_no": no, "evidenced": yuan(c.share)}
                for no, c in row.claims
                if c.reason is None
            ],
            "excluded": [
                exclusion_json(no, c.reason) for no, c in row.claims if c.reason is not None
            ],
        }

    @staticmethod
    def _amounts_json(
        key: EntitlementKey, value: EntitlementValue, name: str | None = None
    ) -> dict[str, Any]:
        """An entitlement's figures, without the contracts behind them (null)."""
        _, category, beneficiary = key
        return {
            "beneficiary": beneficiary,
            "name": value.name if name is None else name,
            "category": category,
            "county": value.region_code,
            "county_name": county_name(value.region_code),
            "turnover": yuan(value.turnover),
            "gross": format_fen(value.gross_fen),
            "entitlement": format_fen(value.entitlement_fen),
            "capped": value.gross_fen > value.entitlement_fen,
            "claims": value.claims,
            "contracts": None,
            "excluded": None,
        }

    def _explained(self, row: Row, contracts: dict[str, Contract], position: int) -> dict[str, Any]:
        """An entitlement with the terms behind each contract's figure, from the engine."""
        year, category, _ = row.key
        policy = self._schedule.for_year(year)
        rule = policy.categories[category]  # type: ignore[index]
        counted, excluded = [], []
        for no, claim in row.claims:
            terms = evidence(contracts[no], year, policy)
            detail = {
                "registration_no": no,
                "paid": format_fen(terms.paid_fen),
                "invoiced": format_fen(terms.invoiced_fen),
                "ceiling": format_fen(terms.ceiling_fen),
                "counted_before": format_fen(terms.earlier_fen),
                "evidenced": format_fen(terms.evidenced_fen),
                "brokers": terms.brokers if category == "broker" else None,
                "share": yuan(claim.share),
            }
            if claim.reason is None:
                counted.append(detail)
            else:
                excluded.append({**detail, **exclusion_json(no, claim.reason)})
        return {
            **self._json(row, True),
            "contracts": counted,
            "excluded": excluded,
            "rate": rate_text(rule.rate),
            "cap": format_fen(rule.cap_fen),
            "ceiling_basis": policy.evidence_ceiling,
            "policy_version": policy.version,
            "position": position,
        }

    def _granted(self, row: Row, grants: dict[str, GrantFacts], position: int) -> dict[str, Any]:
        """A one_time entitlement with the grants behind it: decided, not computed."""
        decided = [grants[no] for no, _ in row.claims]
        policy = self._schedule.for_year(row.key[0])
        return {
            **self._json(row, False),
            "contracts": [],
            "excluded": [],
            "grants": [
                {
                    "grant_no": g.grant_no,
                    "programme": g.programme,
                    "programme_zh": PROGRAMME_ZH.get(g.programme, g.programme),
                    "amount": format_fen(g.amount_fen),
                    "decided_on": g.decided_on,
                    "document_no": g.document_no,
                }
                for g in decided
            ],
            "rate": None,
            "cap": None,
            "ceiling_basis": policy.evidence_ceiling,
            "policy_version": policy.version,
            "position": position,
        }

    def _answer(self, year: int, position: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "year": year,
            "policy_version": self._schedule.version_of(year),
            "position": position,
            "entitlements": rows,
        }


def cut_at(conn: Any, as_of: datetime | None, position: int | None) -> Cut:
    """Where a read as known at ``as_of`` or at ``position`` stands (now when neither is given);
    ``Invalid`` for both at once, or a position beyond the applied head."""
    now = reads.head(conn).position
    if position is not None:
        if as_of is not None:
            raise Invalid(
                "position",
                "give either as_of or position, not both",
                "as_of 与 position 只能给出其一",
            )
        if position > now:
            raise Invalid(
                "position",
                f"must be at most the applied position {now}; the store is behind",
                f"不得超过已应用的日志位置 {now}（本服务尚未追上登记日志）",
            )
        return Cut(position, now=position == now)
    if as_of is None:
        return Cut(now, now=True)
    then = reads.position_at(conn, format_instant(as_of), now)
    return Cut(then, now=then == now)


def check_year(schedule: PolicySchedule, year: int) -> None:
    """A year no policy version is in force for is not found."""
    if not schedule.in_force(year):
        raise NotFound(
            "year",
            f"{year} is outside the years in force of policy {schedule.version} "
            f"({schedule.first_year}–{schedule.last_year})",
            f"{year} 年度不在政策 {schedule.version} 的适用年度"
            f"（{schedule.first_year}–{schedule.last_year}）内",
        )


def _totals_json(totals: dict[str, TotalValue]) -> dict[str, Any]:
    categories: tuple[Category, ...] = ALL_CATEGORIES
    return {
        c: {
            "beneficiaries": totals[c].beneficiaries if c in totals else 0,
            "turnover": yuan(totals[c].turnover) if c in totals else "0.00",
            "gross": format_fen(totals[c].gross_fen if c in totals else 0),
            "entitlement": format_fen(totals[c].entitlement_fen if c in totals else 0),
        }
        for c in categories
    }


def _claim_change_json(change: ClaimChange) -> dict[str, Any]:
    return {
        "registration_no": change.registration_no,
        "before": _claim_json(change.before),
        "after": _claim_json(change.after),
    }


def _claim_json(claim: ClaimValue | None) -> dict[str, Any] | None:
    if claim is None:
        return None
    reason = claim.reason
    return {
        "evidenced": yuan(claim.share),
        "reason": reason,
        "reason_zh": REASON_ZH[reason] if reason is not None else None,
    }
