"""The subsidy application: finance's questions, answered from the materialised projection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from services.common.counties import county_name
from services.common.envelope import format_instant
from services.common.errors import Invalid, NotFound
from services.common.money import format_fen
from services.common.policy.engine import evidence
from services.common.policy.model import Category, Contract
from services.common.policy.present import exclusion_json, rate_text, yuan
from services.common.policy.schedule import PolicySchedule
from services.subsidy import cursors, exports, reads
from services.subsidy.exports import Export
from services.subsidy.projection import TotalValue
from services.subsidy.reads import Cut, Row
from services.subsidy.store import EntryStore

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
    ) -> None:
        self._store = store
        self._engine = store.engine
        self._schedule = schedule
        self._registry_head = registry_head

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
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """One page of a turnover year's entitlements, explained, with the year's totals by
        category; as known now, at ``as_of``, or at log ``position``."""
        self._check_year(year)
        after = cursors.decode(cursor) if cursor else None
        with reads.snapshot(self._engine) as conn:
            cut = self._cut(conn, as_of, position)
            rows = reads.page(
                conn,
                year,
                cut,
                category=category,
                county=county,
                min_fen=min_fen,
                after=after,
                limit=limit + 1,
            )
            totals = reads.totals(conn, year, cut, county)
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            **self._answer(year, cut.position, [self._json(r) for r in rows]),
            "totals": _totals_json(totals),
            "next_cursor": cursors.encode(*rows[-1].key[1:]) if more else None,
        }

    def all_entitlements(
        self, year: int, as_of: datetime | None = None, position: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every entitlement of a year, explained, at one position (see :meth:`export`)."""
        return (self._json(row) for row in self.export(year, as_of, position).rows)

    def export(
        self,
        year: int,
        as_of: datetime | None = None,
        position: int | None = None,
        min_fen: int | None = None,
    ) -> Export:
        """A year's entitlements (of at least ``min_fen``) with the year's totals, as known now,
        at ``as_of`` or at ``position``; the rows are read page by page when iterated, every
        page at the first one's position, so an export speaks of one log however it grows."""
        self._check_year(year)
        with reads.snapshot(self._engine) as conn:
            cut = self._cut(conn, as_of, position)
            totals = reads.totals(conn, year, cut, None)
        return Export(
            year,
            self._schedule.version_of(year),
            cut.position,
            totals,
            self._rows(year, cut.position, min_fen),
        )

    def xlsx(
        self,
        year: int,
        as_of: datetime | None = None,
        position: int | None = None,
        min_fen: int | None = None,
    ) -> Iterator[bytes]:
        """The year's entitlements and the contracts behind them as an XLSX workbook, streamed
        (the year, cut and position are checked before the first byte)."""
        return exports.xlsx_chunks(self.export(year, as_of, position, min_fen))

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
            contracts = reads.contracts(conn, (no for row in rows for no, _ in row.claims))
        if not rows:
            raise NotFound(
                "beneficiary",
                f"{beneficiary} has no entitlement or claim for {year}",
                f"{beneficiary} 在 {year} 年度没有补助，也没有未计入的合同",
            )
        explained = [self._explained(row, contracts, position) for row in rows]
        return self._answer(year, position, explained)

    def revisions(
        self,
        year: int,
        since: datetime,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_REVISIONS_LIMIT,
    ) -> dict[str, Any]:
        """The entitlements that changed after ``since``, a page at a time: before, after, and
        the events about them since."""
        self._check_year(year)
        after_key = cursors.decode(cursor) if cursor else None
        with reads.snapshot(self._engine) as conn:
            now = reads.head(conn).position
            then = reads.position_at(conn, format_instant(since), now)
            candidates = sorted(
                k
                for k in reads.changed_since(conn, year, then)
                if not after_key or k[1:] > after_key
            )
            keys, more = candidates[:limit], len(candidates) > limit
            before = {
                r.key: self._json(r) for r in reads.rows_at(conn, year, Cut(then, False), keys)
            }
            after = {r.key: self._json(r) for r in reads.rows_at(conn, year, Cut(now, True), keys)}
            changed = [k for k in keys if before.get(k) != after.get(k)]
            subjects = {
                k: {k[2]} | _contracts_of(before.get(k)) | _contracts_of(after.get(k))
                for k in changed
            }
            by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for event in reads.events(conn, then, now, set().union(*subjects.values())):
                by_subject[event["subject"]].append(event)
        revisions = [
            {
                "beneficiary": key[2],
                "category": key[1],
                "before": before.get(key),
                "after": after.get(key),
                "events": sorted(
                    (e for subject in subjects[key] for e in by_subject[subject]),
                    key=lambda e: int(e["position"]),
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

    def _json(self, row: Row) -> dict[str, Any]:
        """An entitlement as ``entitlement_json`` writes it, with its county, straight from the
        stored row and its claims (the property tests hold the two equal to the engine)."""
        _, category, beneficiary = row.key
        value = row.value
        return {
            "beneficiary": beneficiary,
            "name": row.name,
            "category": category,
            "county": value.region_code,
            "county_name": county_name(value.region_code),
            "turnover": yuan(value.turnover),
            "gross": format_fen(value.gross_fen),
            "entitlement": format_fen(value.entitlement_fen),
            "capped": value.gross_fen > value.entitlement_fen,
            "contracts": [
                {"registration_no": no, "evidenced": yuan(c.share)}
                for no, c in row.claims
                if c.reason is None
            ],
            "excluded": [
                exclusion_json(no, c.reason) for no, c in row.claims if c.reason is not None
            ],
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
            **self._json(row),
            "contracts": counted,
            "excluded": excluded,
            "rate": rate_text(rule.rate),
            "cap": format_fen(rule.cap_fen),
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
    categories: tuple[Category, ...] = ("absorption", "output", "broker")
    return {
        c: {
            "beneficiaries": totals[c].beneficiaries if c in totals else 0,
            "turnover": yuan(totals[c].turnover) if c in totals else "0.00",
            "gross": format_fen(totals[c].gross_fen if c in totals else 0),
            "entitlement": format_fen(totals[c].entitlement_fen if c in totals else 0),
        }
        for c in categories
    }


def _contracts_of(e: dict[str, Any] | None) -> set[str]:
    if e is None:
        return set()
    return {c["registration_no"] for c in e["contracts"]} | {
        x["registration_no"] for x in e["excluded"]
    }
