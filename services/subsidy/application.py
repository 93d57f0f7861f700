"""The subsidy application: finance's questions, answered from the materialised projection."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from services.common.envelope import format_instant
from services.common.errors import Invalid, NotFound
from services.common.money import format_fen
from services.common.policy.model import Category, Policy
from services.common.policy.present import yuan
from services.common.spreadsheet import safe_cell
from services.subsidy import reads
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
        policy: Policy,
        registry_head: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._store = store
        self._engine = store.engine
        self._policy = policy
        self._registry_head = registry_head

    @property
    def policy(self) -> Policy:
        return self._policy

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
        after = _decode_cursor(cursor) if cursor else None
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
            "next_cursor": _encode_cursor(rows[-1]) if more else None,
        }

    def all_entitlements(
        self, year: int, as_of: datetime | None = None, position: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every entitlement of a year, page by page (for exports); the pages after the first
        are read at the first one's position, so an export speaks of one log however it grows."""
        answer = self.entitlements(year, as_of=as_of, position=position, limit=MAX_LIMIT)
        yield from answer["entitlements"]
        while answer["next_cursor"] is not None:
            answer = self.entitlements(
                year, position=answer["position"], cursor=answer["next_cursor"], limit=MAX_LIMIT
            )
            yield from answer["entitlements"]

    def beneficiary(self, beneficiary: str, year: int) -> dict[str, Any]:
        """One beneficiary's entitlements in a year, each explained."""
        self._check_year(year)
        with reads.snapshot(self._engine) as conn:
            position = reads.head(conn).position
            rows = reads.beneficiary(conn, year, beneficiary)
        if not rows:
            raise NotFound("beneficiary", f"{beneficiary} has no entitlement or claim for {year}")
        return self._answer(year, position, [self._json(r) for r in rows])

    def csv(self, year: int) -> str:
        """The year's entitlements as CSV for spreadsheets, amounts in yuan."""
        self._check_year(year)
        with reads.snapshot(self._engine) as conn:
            position = reads.head(conn).position
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["year", "beneficiary", "name", "category", "turnover", "gross", "entitlement",
             "capped", "contracts", "excluded", "policy_version", "position"]
        )  # fmt: skip
        for e in self.all_entitlements(year, position=position):
            row = [year, e["beneficiary"], e["name"], e["category"], e["turnover"], e["gross"],
                   e["entitlement"], "yes" if e["capped"] else "no",
                   ";".join(f"{c['registration_no']}={c['evidenced']}" for c in e["contracts"]),
                   ";".join(f"{x['registration_no']}:{x['reason']}" for x in e["excluded"]),
                   self._policy.version, position]  # fmt: skip
            writer.writerow([safe_cell(str(cell)) for cell in row])
        return "\ufeff" + out.getvalue()

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
        after_key = _decode_cursor(cursor) if cursor else None
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
            "policy_version": self._policy.version,
            "position_before": then,
            "position": now,
            "revisions": revisions,
            "next_cursor": _encode_key(keys[-1]) if more else None,
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

    # -- internals ----------------------------------------------------------------------------

    def _check_year(self, year: int) -> None:
        check_year(self._policy, year)

    def _cut(self, conn: Any, as_of: datetime | None, position: int | None) -> Cut:
        now = reads.head(conn).position
        if position is not None:
            if as_of is not None:
                raise Invalid("position", "give either as_of or position, not both")
            if position > now:
                raise Invalid(
                    "position", f"must be at most the applied position {now}; the store is behind"
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
            "name": row.claims[0][1].name if row.claims else value.name,
            "category": category,
            "county": value.region_code,
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
                {"registration_no": no, "reason": c.reason}
                for no, c in row.claims
                if c.reason is not None
            ],
        }

    def _answer(self, year: int, position: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "year": year,
            "policy_version": self._policy.version,
            "position": position,
            "entitlements": rows,
        }


def check_year(policy: Policy, year: int) -> None:
    """A year the policy is not in force for is not found."""
    if not policy.in_force(year):
        raise NotFound(
            "year",
            f"{year} is outside the years in force of policy {policy.version} "
            f"({policy.first_year}–{policy.last_year})",
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


def _encode_cursor(row: Row) -> str:
    return _encode_key(row.key)


def _encode_key(key: tuple[int, str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([key[1], key[2]])).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        category, beneficiary = orjson.loads(raw)
        if isinstance(category, str) and isinstance(beneficiary, str):
            return category, beneficiary
    except (binascii.Error, ValueError, TypeError):
        pass
    raise Invalid("cursor", "is not a cursor this service gave out: pass next_cursor as it came")


def _contracts_of(e: dict[str, Any] | None) -> set[str]:
    if e is None:
        return set()
    return {c["registration_no"] for c in e["contracts"]} | {
        x["registration_no"] for x in e["excluded"]
    }
