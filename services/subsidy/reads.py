"""Finance's reads of the materialised projection: rows now, or as known at a log position.

Every query names its year and reads through an index whose leading columns it fixes, so it
costs the rows it returns (and, as of a past position, their earlier versions), never the log.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Engine,
    Table,
    and_,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union,
)
from sqlalchemy.engine import Connection

from services.common.bulk import one_of, text_array
from services.common.envelope import GENESIS_HASH
from services.common.policy.model import ALL_CATEGORIES, Contract
from services.subsidy import tables as t
from services.subsidy.projection import (
    ClaimValue,
    EntitlementKey,
    EntitlementValue,
    GrantFacts,
    TotalValue,
    contract_of,
)
from services.subsidy.store import Head, entitlement_value, fen, total_value

_CHUNK = 5000


@dataclass(frozen=True)
class Cut:
    """Where in the log a read stands: the applied head (``now``), or a past position."""

    position: int
    now: bool

    def holds(self, table: Table) -> ColumnElement[bool]:
        """The rows of a versioned table that hold at this cut."""
        if self.now:
            return table.c.valid_to.is_(None)
        return and_(
            table.c.valid_from <= self.position,
            or_(table.c.valid_to.is_(None), table.c.valid_to > self.position),
        )


@dataclass(frozen=True)
class Row:
    key: EntitlementKey
    value: EntitlementValue
    # Registration number and claim, in registration order; empty when not read (see page).
    claims: list[tuple[str, ClaimValue]]

    @property
    def name(self) -> str:
        """The beneficiary's name: the one on its first contract at this cut."""
        return self.claims[0][1].name if self.claims else self.value.name

    @property
    def counted(self) -> int:
        """How many of its contracts count (the others are excluded, with a reason)."""
        return sum(1 for _, claim in self.claims if claim.reason is None)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One consistent view for several statements: the head and the rows it speaks for."""
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as conn:
        yield conn


def head(conn: Connection) -> Head:
    row = conn.execute(select(t.head.c.position, t.head.c.hash, t.head.c.recorded_at)).first()
    return Head(row.position, row.hash, row.recorded_at) if row else Head(0, GENESIS_HASH, None)


def position_at(conn: Connection, instant: str, upto: int) -> int:
    """The end of the longest prefix of the log recorded at or before ``instant``."""
    c = t.log.c
    found = conn.execute(
        select(c.position)
        .where(c.recorded_at <= instant, c.position <= upto)
        .order_by(c.recorded_at.desc(), c.position.desc())
        .limit(1)
    ).scalar()
    return int(found or 0)


def recorded_at(conn: Connection, position: int) -> str | None:
    text: str | None = conn.execute(
        select(t.log.c.recorded_at).where(t.log.c.position == position)
    ).scalar()
    return text


# The orders a page of entitlements can be read in, each a key of columns ending in the
# entitlement's own key (category, beneficiary) so it is total, and read through an index of
# current rows that leads with the year and holds the whole key (``tables.entitlements``):
# a page costs its rows under every order, with or without the planner's statistics.
SORTS: dict[str, tuple[tuple[str, ...], bool]] = {  # columns, descending
    "category": (("category", "beneficiary"), False),
    "-entitlement": (("entitlement_fen", "category", "beneficiary"), True),
    "entitlement": (("entitlement_fen", "category", "beneficiary"), False),
    "county": (("region_code", "category", "beneficiary"), False),
}
Sort = str
SortKey = tuple[Any, ...]


def sort_key(sort: Sort, row: Row) -> SortKey:
    """The values of ``SORTS[sort]``'s columns for this row: where a page ending at it ends."""
    _, category, beneficiary = row.key
    first = {
        "category": (),
        "-entitlement": (row.value.entitlement_fen,),
        "entitlement": (row.value.entitlement_fen,),
        "county": (row.value.region_code,),
    }[sort]
    return (*first, category, beneficiary)


def page(
    conn: Connection,
    year: int,
    cut: Cut,
    *,
    category: str | None = None,
    county: str | None = None,
    min_fen: int | None = None,
    sort: Sort = "category",
    after: SortKey | None = None,
    before: SortKey | None = None,
    limit: int,
    claims: bool = True,
) -> list[Row]:
    """Up to ``limit`` entitlements in ``sort`` order: the first after ``after``, or the last
    before ``before`` (still in ``sort`` order); with their claims unless ``claims`` is False."""
    e = t.entitlements
    names, descending = SORTS[sort]
    columns = [e.c[name] for name in names]
    query = select(e).where(e.c.year == year, cut.holds(e))
    if category is not None:
        query = query.where(e.c.category == category)
    if county is not None:
        query = query.where(e.c.region_code == county)
    if min_fen is not None:
        query = query.where(e.c.entitlement_fen >= min_fen)
    backward = before is not None
    bound = before if before is not None else after
    if bound is not None:
        row, mark = tuple_(*columns), tuple_(*(literal(v) for v in bound))
        query = query.where(row < mark if descending != backward else row > mark)
    # Reading backward is the reverse order, turned round once read.
    order = [c.desc() if descending != backward else c.asc() for c in columns]
    rows = list(conn.execute(query.order_by(*order).limit(limit)))
    if backward:
        rows.reverse()
    if not claims:
        return [Row((year, r.category, r.beneficiary), entitlement_value(r), []) for r in rows]
    return with_claims(conn, year, cut, rows)


def beneficiary(conn: Connection, year: int, who: str) -> list[Row]:
    """One beneficiary's current entitlements in a year, by category."""
    e = t.entitlements
    rows = conn.execute(
        select(e)
        .where(e.c.beneficiary == who, e.c.year == year, e.c.valid_to.is_(None))
        .order_by(e.c.category)
    ).all()
    return with_claims(conn, year, Cut(0, now=True), rows)


def contracts(conn: Connection, numbers: Iterable[str]) -> dict[str, Contract]:
    """The current facts of these contracts, as the engine reads them."""
    c = t.contracts.c
    found = {}
    for chunk in _chunks(sorted(set(numbers))):
        for r in conn.execute(
            select(c.registration_no, c.facts).where(one_of(c.registration_no, chunk, conn.dialect))
        ):
            found[r.registration_no] = contract_of(r.registration_no, orjson.loads(r.facts))
    return found


def grants(conn: Connection, numbers: Iterable[str]) -> dict[str, GrantFacts]:
    """The one-time grants with these numbers, as decided."""
    g = t.grants.c
    found = {}
    for chunk in _chunks(sorted(set(numbers))):
        for r in conn.execute(select(t.grants).where(one_of(g.grant_no, chunk, conn.dialect))):
            found[r.grant_no] = GrantFacts(
                r.grant_no,
                r.credit_code,
                r.year,
                r.programme,
                r.amount_fen,
                r.decided_on,
                r.document_no,
            )
    return found


def by_keys(
    conn: Connection,
    table: Table,
    year: int,
    keys: Iterable[tuple[str, str]],
    *where: ColumnElement[bool],
    columns: Sequence[Any] | None = None,
) -> list[Any]:
    """The rows of a versioned table of a year that belong to these (category, beneficiary)
    keys and meet ``where`` (only ``columns`` of them, if given).

    On PostgreSQL, one index probe per key (a lateral join over the keys). Written as
    ``beneficiary = ANY(…)``, the planner, with no statistics, read every version begun after
    a position instead: 29,000 claims at 1 M events to find a page's 1,200."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    if conn.dialect.name == "postgresql":
        k = select(
            func.unnest(text_array(c for c, _ in wanted)).label("c"),
            func.unnest(text_array(b for _, b in wanted)).label("b"),
        ).subquery("k")
        probe = (
            select(*(columns or [table]))
            .where(
                table.c.year == year,
                table.c.category == k.c.c,
                table.c.beneficiary == k.c.b,
                *where,
            )
            .offset(0)  # a fence: pulled up into a join, it read the whole year's versions
            .lateral("v")
        )
        result = conn.execute(select(probe).select_from(k.join(probe, true())))
        if columns is not None:
            # Plain tuples from the driver: a Row each was a fifth of a year's export
            # (62,079 claims at 1 M events). The columns asked for need no conversion.
            rows = list(result.cursor.fetchall())
            result.close()
            return rows
        return list(result.all())
    found = []
    chosen = set(wanted)
    categories = sorted({c for c, _ in wanted})
    for chunk in _chunks(sorted({b for _, b in wanted})):
        found += [
            r
            for r in conn.execute(
                select(*(columns or [table])).where(
                    table.c.year == year,
                    table.c.category.in_(categories),
                    one_of(table.c.beneficiary, chunk, conn.dialect),
                    *where,
                )
            ).all()
            if (r.category, r.beneficiary) in chosen
        ]
    return found


def rows_at(conn: Connection, year: int, cut: Cut, keys: Iterable[EntitlementKey]) -> list[Row]:
    """The entitlements of these keys as they held at ``cut`` (absent ones left out)."""
    e = t.entitlements
    found = by_keys(conn, e, year, (k[1:] for k in keys), cut.holds(e))
    found.sort(key=lambda r: (r.category, r.beneficiary))
    return with_claims(conn, year, cut, found)


def values_at(
    conn: Connection, year: int, cut: Cut, keys: Iterable[EntitlementKey]
) -> dict[EntitlementKey, EntitlementValue]:
    """The amounts of these entitlements as they held at ``cut``, without their claims."""
    e = t.entitlements
    return {
        (r.year, r.category, r.beneficiary): entitlement_value(r)
        for r in by_keys(conn, e, year, (k[1:] for k in keys), cut.holds(e))
    }


def values_then_and_now(
    conn: Connection, year: int, then: int, keys: Iterable[EntitlementKey]
) -> tuple[dict[EntitlementKey, EntitlementValue], dict[EntitlementKey, EntitlementValue]]:
    """The amounts of these entitlements as they held at position ``then``, and now (without
    their claims): read together, each key's index probed once."""
    e = t.entitlements
    was: dict[EntitlementKey, EntitlementValue] = {}
    now: dict[EntitlementKey, EntitlementValue] = {}
    held = Cut(then, False).holds(e)
    for r in by_keys(conn, e, year, (k[1:] for k in keys), or_(held, e.c.valid_to.is_(None))):
        key, value = (r.year, r.category, r.beneficiary), entitlement_value(r)
        if r.valid_to is None:
            now[key] = value
        if r.valid_from <= then and (r.valid_to is None or r.valid_to > then):
            was[key] = value
    return was, now


@dataclass(frozen=True)
class ClaimChange:
    """One contract's part in an entitlement, at two positions (None: no part)."""

    registration_no: str
    before: ClaimValue | None
    after: ClaimValue | None


def claim_changes(
    conn: Connection, year: int, then: int, keys: Iterable[EntitlementKey]
) -> dict[EntitlementKey, list[ClaimChange]]:
    """Per entitlement, the contracts whose claim differs between position ``then`` and now.

    Read from the versions that began or ended after ``then`` only: a claim that held
    throughout is the same on both sides, so the cost is the changes, not every claim (a
    page of 1,000 revisions at 100 k events read 8,788 claims to find them before)."""
    c = t.claims
    wanted = set(keys)
    before: dict[EntitlementKey, dict[str, ClaimValue]] = defaultdict(dict)
    after: dict[EntitlementKey, dict[str, ClaimValue]] = defaultdict(dict)
    since = or_(c.c.valid_from > then, c.c.valid_to > then)
    # Plain tuples of the columns needed: a page of 1,000 revisions reads ~3,000 claims.
    columns = (
        *(c.c.category, c.c.beneficiary, c.c.registration_no, c.c.valid_from, c.c.valid_to),
        *(c.c.name, c.c.region_code, c.c.share, c.c.reason),
    )
    found = by_keys(conn, c, year, (k[1:] for k in wanted), since, columns=columns)
    for category, who, no, valid_from, valid_to, name, region, share, reason in found:
        claim = ClaimValue(name, region, fen(share), reason)
        if valid_from <= then:  # held at then, ended since
            before[(year, category, who)][no] = claim
        elif valid_to is None:  # began since and holds now (not one that came and went)
            after[(year, category, who)][no] = claim
    changes = {}
    for key in wanted:
        was, now = before.get(key, {}), after.get(key, {})
        differ = [
            ClaimChange(no, was.get(no), now.get(no))
            for no in sorted(was.keys() | now.keys())
            if was.get(no) != now.get(no)
        ]
        if differ:
            changes[key] = differ
    return changes


def with_claims(conn: Connection, year: int, cut: Cut, rows: Sequence[Any]) -> list[Row]:
    """Entitlement rows with the claims that explain them, in one query per chunk."""
    c = t.claims.c
    claims: dict[tuple[str, str], list[tuple[str, ClaimValue]]] = defaultdict(list)
    keys = {(r.category, r.beneficiary) for r in rows}
    # Only the columns a claim needs, read as plain tuples: a whole year's export reads every
    # claim, and each row's attributes by name cost more than the query.
    columns = (c.category, c.beneficiary, c.registration_no, c.name, c.region_code, c.share)
    found = by_keys(conn, t.claims, year, keys, cut.holds(t.claims), columns=(*columns, c.reason))
    for category, who, number, name, region, share, reason in sorted(found, key=lambda r: r[2]):
        claims[(category, who)].append((number, ClaimValue(name, region, fen(share), reason)))
    return [
        Row(
            (year, r.category, r.beneficiary),
            entitlement_value(r),
            claims[(r.category, r.beneficiary)],
        )
        for r in rows
    ]


def totals(conn: Connection, year: int, cut: Cut, county: str | None) -> dict[str, TotalValue]:
    """Per category: beneficiaries, turnover and amounts over the year (or one county)."""
    s = t.totals
    area = county if county is not None else t.ALL_COUNTIES
    found: dict[str, TotalValue] = {}
    for category in ALL_CATEGORIES:
        query = select(s).where(s.c.year == year, s.c.category == category, s.c.county == area)
        if cut.now:
            query = query.where(s.c.valid_to.is_(None))
        else:
            query = query.where(s.c.valid_from <= cut.position).order_by(s.c.valid_from.desc())
        row = conn.execute(query.limit(1)).first()
        if row is not None and (row.valid_to is None or row.valid_to > cut.position or cut.now):
            found[category] = total_value(row)
    return found


def county_totals(conn: Connection, year: int) -> dict[str, dict[str, TotalValue]]:
    """The year's current totals by county (region code), then category."""
    s = t.totals
    found: dict[str, dict[str, TotalValue]] = defaultdict(dict)
    for row in conn.execute(
        select(s).where(s.c.year == year, s.c.county != t.ALL_COUNTIES, s.c.valid_to.is_(None))
    ):
        found[row.county][row.category] = total_value(row)
    return dict(found)


def changed_since(
    conn: Connection,
    year: int,
    position: int,
    *,
    after: tuple[str, str] | None = None,
    limit: int,
) -> tuple[list[EntitlementKey], bool]:
    """The first ``limit`` entitlements, in (category, beneficiary) order after ``after``,
    whose amounts or explanation changed after ``position``; and whether more follow.

    Ordered and cut in the database (in its own collation, as the cursor compares), so a
    page returns its rows whatever the number of changes (fetching them all to sort here
    cost 48 ms a page at 100 k events). Where changes are many, the versions are read in key
    order until a page of keys is found; where they are few, all of them are read and sorted."""
    if conn.dialect.name == "postgresql" and _many_changes(conn, year, position, limit):
        keys = _changed_in_key_order(conn, year, position, after, limit + 1)
    else:
        keys = _changed_by_position(conn, year, position, after, limit + 1)
    return [(year, c, b) for c, b in keys[:limit]], len(keys) > limit


# Key order pays when at least one key in DENSE has changed. Counting the versions begun since
# (up to DENSE a key of a page) says so cheaply: at 1 M events and a position three quarters
# into the log, 8,261 of 2024's 15,722 keys changed (66,291 versions), and the union of every
# change took 42–60 ms where key order took 3 ms.
DENSE = 10


def _many_changes(conn: Connection, year: int, position: int, limit: int) -> bool:
    e = t.entitlements.c
    begun = (
        select(literal(1))
        .where(e.year == year, e.valid_from > position)
        .limit(DENSE * (limit + 1))
        .subquery()
    )
    return int(conn.execute(select(func.count()).select_from(begun)).scalar_one()) >= DENSE * (
        limit + 1
    )


def _changed_by_position(
    conn: Connection, year: int, position: int, after: tuple[str, str] | None, limit: int
) -> list[tuple[str, str]]:
    e, c = t.entitlements.c, t.claims.c
    sources = [
        select(e.category, e.beneficiary).where(e.year == year, e.valid_from > position),
        select(e.category, e.beneficiary).where(e.year == year, e.valid_to > position),
        # A claim that ended without a successor changed its entitlement's count: seen above.
        select(c.category, c.beneficiary).where(c.year == year, c.valid_from > position),
    ]
    if after is not None:
        start = tuple_(literal(after[0]), literal(after[1]))
        sources = [q.where(tuple_(*q.selected_columns) > start) for q in sources]
    changed = union(*sources).subquery()
    rows = conn.execute(
        select(changed.c.category, changed.c.beneficiary)
        .order_by(changed.c.category, changed.c.beneficiary)
        .limit(limit)
    ).all()
    return [(r.category, r.beneficiary) for r in rows]


def _changed_in_key_order(
    conn: Connection, year: int, position: int, after: tuple[str, str] | None, limit: int
) -> list[tuple[str, str]]:
    """The first ``limit`` changed keys: entitlements' versions read along their primary key,
    then the claims changed up to the last of those keys (only they can come before it),
    merged and ordered by the database (in its collation, as the cursor compares)."""
    e, c = t.entitlements.c, t.claims.c

    def first(table_c: Any, changed: ColumnElement[bool], upto: tuple[str, str] | None) -> Any:
        key = tuple_(table_c.category, table_c.beneficiary)
        query = select(table_c.category, table_c.beneficiary).where(table_c.year == year, changed)
        if after is not None:
            query = query.where(key > tuple_(literal(after[0]), literal(after[1])))
        if upto is not None:
            query = query.where(key <= tuple_(literal(upto[0]), literal(upto[1])))
        return query.distinct().order_by(table_c.category, table_c.beneficiary).limit(limit)

    with _along_the_index(conn):
        found = conn.execute(first(e, or_(e.valid_from > position, e.valid_to > position), None))
        keys = [(r.category, r.beneficiary) for r in found.all()]
    upto = keys[-1] if len(keys) == limit else None
    read = select(
        func.unnest(text_array(k[0] for k in keys)).label("category"),
        func.unnest(text_array(k[1] for k in keys)).label("beneficiary"),
    )
    both = union(read, first(c, c.valid_from > position, upto).subquery().select()).subquery()
    merged = conn.execute(
        select(both.c.category, both.c.beneficiary)
        .order_by(both.c.category, both.c.beneficiary)
        .limit(limit)
    )
    return [(r.category, r.beneficiary) for r in merged.all()]


# Planner settings for a statement that must walk a primary key in order and stop at its
# LIMIT. With no statistics (autovacuum off) PostgreSQL guesses a year's versions at 430 rows,
# not 73,716 (2024 at 1 M events), so it read every version that changed through two other
# indexes and sorted them: 22-51 ms where the walk takes 5-10. (The claims' statement after it
# plans well without them, and worse with: 8 against 67 ms.)
_ALONG = ("enable_sort", "enable_bitmapscan")


@contextmanager
def _along_the_index(conn: Connection) -> Iterator[None]:
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.execute(select(*(func.set_config(name, "off", True) for name in _ALONG)))
    try:
        yield
    finally:
        conn.execute(select(*(func.set_config(name, "on", True) for name in _ALONG)))


def events(
    conn: Connection, after: int, upto: int, subjects: Iterable[str]
) -> list[dict[str, Any]]:
    """Applied entries after ``after`` about any of these subjects, in log order."""
    g = t.log.c
    columns = (g.position, g.type, g.subject, g.recorded_at)
    rows: list[Any] = []
    if conn.dialect.name == "postgresql":
        # One index probe per subject (a lateral join): as ``subject = ANY(…)`` the planner,
        # with no statistics, read every entry after ``after`` (246,846 at 1 M events) to
        # find a page's 1,448.
        s = select(func.unnest(text_array(sorted(set(subjects)))).label("s")).subquery("s")
        probe = (
            select(*columns)
            .where(g.subject == s.c.s, g.position > after, g.position <= upto)
            .offset(0)
            .lateral("l")
        )
        result = conn.execute(select(probe).select_from(s.join(probe, true())))
        rows = list(result.cursor.fetchall())  # plain tuples: a Row each, then a dict, was a third
        result.close()
    else:
        for chunk in _chunks(sorted(set(subjects))):
            rows += conn.execute(
                select(*columns).where(
                    one_of(g.subject, chunk, conn.dialect), g.position > after, g.position <= upto
                )
            ).tuples()
    return [
        {"position": at, "type": kind, "subject": subject, "recorded_at": recorded}
        for at, kind, subject, recorded in sorted(rows, key=itemgetter(0))
    ]


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]
