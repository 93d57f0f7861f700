"""The subsidy store's payouts: written as the consumer applies ``PayoutRecorded`` (in the
transaction that moves the head), and read by year and beneficiary through indexes whose
leading columns each query fixes, so a read costs the rows it returns, never the log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, literal, or_, select, true, tuple_
from sqlalchemy.engine import Connection

from services.common.bulk import insert_columns, one_of, update_columns
from services.common.policy.model import ALL_CATEGORIES
from services.subsidy import tables as t
from services.subsidy.projection import PayoutApplied

_CHUNK = 5000

PaidKey = tuple[int, str, str]  # year, category, beneficiary


@dataclass(frozen=True)
class Where:
    """The filters of a balances query, each optional."""

    category: str | None = None
    beneficiary: str | None = None
    county: str | None = None


@dataclass
class Paid:
    """What a beneficiary was paid and repaid in a category of a year, and by which payout last."""

    name: str
    region_code: str
    paid_fen: int
    recovered_fen: int
    last_position: int


# -- writing -----------------------------------------------------------------------------------


def write(conn: Connection, applied: Sequence[PayoutApplied]) -> None:
    """Store a run's payouts, their lines, and the sums they change."""
    if not applied:
        return
    insert_columns(
        conn,
        t.payouts,
        {
            "position": [p.position for p in applied],
            "payout_no": [p.payout_no for p in applied],
            "year": [p.year for p in applied],
            "paid_on": [p.paid_on for p in applied],
            "basis_position": [p.basis_position for p in applied],
        },
    )
    lines = [(p, line) for p in applied for line in p.lines]
    insert_columns(
        conn,
        t.payout_lines,
        {
            "position": [p.position for p, _ in lines],
            "year": [p.year for p, _ in lines],
            "category": [line.category for _, line in lines],
            "beneficiary": [line.beneficiary for _, line in lines],
            "kind": [line.kind for _, line in lines],
            "amount_fen": [line.amount_fen for _, line in lines],
        },
    )
    stored = paid_rows(conn, {(p.year, line.category, line.beneficiary) for p, line in lines})
    changed: dict[PaidKey, Paid] = {}
    totals: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for p, line in lines:
        key = (p.year, line.category, line.beneficiary)
        row = changed.get(key) or stored.get(key)
        if row is None:
            row = Paid(line.name, line.region_code, 0, 0, 0)
        payment = line.amount_fen if line.kind == "payment" else 0
        recovery = line.amount_fen - payment
        changed[key] = Paid(
            row.name or line.name,
            row.region_code or line.region_code,
            row.paid_fen + payment,
            row.recovered_fen + recovery,
            p.position,
        )
        for county in {t.ALL_COUNTIES, changed[key].region_code}:
            totals[(p.year, line.category, county)][0] += payment
            totals[(p.year, line.category, county)][1] += recovery
    for rows, stored_already in (
        (changed.keys() & stored.keys(), True),
        (changed.keys() - stored.keys(), False),
    ):
        _write_paid(conn, {key: changed[key] for key in rows}, stored_already)
    old_totals = _paid_totals(conn, totals)
    for key, (payment, recovery) in totals.items():
        before = old_totals.get(key, (0, 0))
        totals[key] = [before[0] + payment, before[1] + recovery]
    _write_totals(conn, totals, old_totals)


def _write_paid(conn: Connection, rows: dict[PaidKey, Paid], stored_already: bool) -> None:
    if not rows:
        return
    keys = sorted(rows)
    where: dict[str, Sequence[Any]] = {
        "year": [k[0] for k in keys],
        "category": [k[1] for k in keys],
        "beneficiary": [k[2] for k in keys],
    }
    values: dict[str, Sequence[Any]] = {
        "name": [rows[k].name for k in keys],
        "region_code": [rows[k].region_code for k in keys],
        "paid_fen": [rows[k].paid_fen for k in keys],
        "recovered_fen": [rows[k].recovered_fen for k in keys],
        "last_position": [rows[k].last_position for k in keys],
    }
    if stored_already:
        update_columns(conn, t.paid, where, values)
    else:
        insert_columns(conn, t.paid, {**where, **values})


def _paid_totals(
    conn: Connection, keys: Iterable[tuple[int, str, str]]
) -> dict[tuple[int, str, str], tuple[int, int]]:
    s = t.paid_totals.c
    found = {}
    for year, category, county in set(keys):
        row = conn.execute(
            select(s.paid_fen, s.recovered_fen).where(
                s.year == year, s.category == category, s.county == county
            )
        ).first()
        if row is not None:
            found[(year, category, county)] = (int(row.paid_fen), int(row.recovered_fen))
    return found


def _write_totals(
    conn: Connection,
    totals: dict[tuple[int, str, str], list[int]],
    old: dict[tuple[int, str, str], tuple[int, int]],
) -> None:
    for key, (paid_fen, recovered_fen) in totals.items():
        year, category, county = key
        values = {"paid_fen": paid_fen, "recovered_fen": recovered_fen}
        s = t.paid_totals
        if key in old:
            conn.execute(
                s.update()
                .where(s.c.year == year, s.c.category == category, s.c.county == county)
                .values(**values)
            )
        else:
            conn.execute(s.insert().values(year=year, category=category, county=county, **values))


# -- reading -----------------------------------------------------------------------------------


def paid_rows(conn: Connection, keys: set[PaidKey]) -> dict[PaidKey, Paid]:
    """The sums of these keys, where anything was paid or recovered."""
    p = t.paid.c
    found: dict[PaidKey, Paid] = {}
    by_year: dict[int, set[str]] = defaultdict(set)
    for year, _, beneficiary in keys:
        by_year[year].add(beneficiary)
    for year, beneficiaries in by_year.items():
        for chunk in _chunks(sorted(beneficiaries)):
            for r in conn.execute(
                select(t.paid).where(p.year == year, one_of(p.beneficiary, chunk, conn.dialect))
            ):
                key = (year, r.category, r.beneficiary)
                if key in keys:
                    found[key] = _paid(r)
    return found


def first_keys(
    conn: Connection,
    year: int,
    where: Where,
    after: tuple[str, str] | None,
    limit: int,
    *,
    paid_only: bool,
) -> list[tuple[str, str]]:
    """Up to ``limit`` (category, beneficiary) after ``after``, in that order: of those
    entitled now, or with ``paid_only`` of those paid or recovered from, in ``year``."""
    table = t.paid if paid_only else t.entitlements
    c = table.c
    query = select(c.category, c.beneficiary).where(c.year == year)
    if not paid_only:
        query = query.where(c.valid_to.is_(None))
    if where.category is not None:
        query = query.where(c.category == where.category)
    if where.beneficiary is not None:
        query = query.where(c.beneficiary == where.beneficiary)
    if where.county is not None:
        query = query.where(c.region_code == where.county)
    if after is not None:
        query = query.where(
            tuple_(c.category, c.beneficiary) > tuple_(literal(after[0]), literal(after[1]))
        )
    rows = conn.execute(query.order_by(c.category, c.beneficiary).limit(limit))
    return [(r.category, r.beneficiary) for r in rows]


def paid_totals(conn: Connection, year: int, county: str | None) -> dict[str, tuple[int, int]]:
    """Per category: paid and recovered over the year (or one county)."""
    s = t.paid_totals.c
    area = county if county is not None else t.ALL_COUNTIES
    rows = conn.execute(
        select(s.category, s.paid_fen, s.recovered_fen).where(s.year == year, s.county == area)
    )
    return {r.category: (int(r.paid_fen), int(r.recovered_fen)) for r in rows}


def lines_of(
    conn: Connection, year: int, beneficiaries: Iterable[str], upto: int | None = None
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every payout line of these beneficiaries in ``year`` (recorded at or before position
    ``upto``, if given), with its payout, in log order."""
    lines, payouts = t.payout_lines.c, t.payouts.c
    found: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for chunk in _chunks(sorted(set(beneficiaries))):
        rows = conn.execute(
            select(
                lines.category,
                lines.beneficiary,
                lines.kind,
                lines.amount_fen,
                payouts.position,
                payouts.payout_no,
                payouts.paid_on,
                payouts.basis_position,
            )
            .join(t.payouts, payouts.position == lines.position)
            .where(one_of(lines.beneficiary, chunk, conn.dialect), lines.year == year)
            .order_by(lines.position)
        )
        for r in rows:
            # Cut here, not in the query: with ``position <= upto`` there, the planner (with
            # no statistics) read the year's lines up to it instead of these beneficiaries'.
            if upto is not None and r.position > upto:
                continue
            found[(r.category, r.beneficiary)].append(
                {
                    "payout_no": r.payout_no,
                    "paid_on": r.paid_on,
                    "kind": r.kind,
                    "amount_fen": int(r.amount_fen),
                    "position": int(r.position),
                    "basis_position": int(r.basis_position),
                }
            )
    return found


# -- as known at a past position ----------------------------------------------------------------
# The sums in ``subsidy_paid`` are running sums, kept for now only: as of a past position they
# are summed from the lines recorded up to it, through indexes that lead with what each query
# fixes, so a read costs the lines it sums or a page's keys, never every line of the year.


def paid_keys_at(
    conn: Connection,
    year: int,
    where: Where,
    after: tuple[str, str] | None,
    upto: tuple[str, str] | None,
    limit: int,
    position: int,
) -> list[tuple[str, str]]:
    """Up to ``limit`` (category, beneficiary) after ``after`` and up to ``upto`` (if given),
    in that order, paid or recovered from in ``year`` by a payout recorded at or before
    ``position``."""
    lines = t.payout_lines.c
    bounds = []
    if after is not None:
        start = tuple_(literal(after[0]), literal(after[1]))
        bounds.append(tuple_(lines.category, lines.beneficiary) > start)
    if upto is not None:
        end = tuple_(literal(upto[0]), literal(upto[1]))
        bounds.append(tuple_(lines.category, lines.beneficiary) <= end)
    if where.category is not None:
        bounds.append(lines.category == where.category)
    if where.beneficiary is not None:  # its few lines, through its own index
        rows = conn.execute(
            select(lines.category, lines.beneficiary)
            .where(
                lines.beneficiary == where.beneficiary,
                lines.year == year,
                lines.position <= position,
                *bounds,
            )
            .distinct()
        ).all()
        keys = sorted((r.category, r.beneficiary) for r in rows)
        if where.county is not None:
            paid = paid_rows(conn, {(year, *k) for k in keys})
            keys = [k for k in keys if paid[(year, *k)].region_code == where.county]
        return keys[:limit]
    if where.county is not None:
        return _county_keys_at(conn, year, where, after, upto, limit, position)
    # Per payout up to the position (a year has a few), the first keys of its lines along
    # their primary key (position, category, beneficiary): at most ``limit`` lines each.
    found: set[tuple[str, str]] = set()
    for at in payout_positions(conn, year, position):
        first = conn.execute(
            select(lines.category, lines.beneficiary)
            .where(lines.position == at, *bounds)
            .order_by(lines.category, lines.beneficiary)
            .limit(limit)
        )
        found.update((r.category, r.beneficiary) for r in first)
    return sorted(found)[:limit]


def _county_keys_at(
    conn: Connection,
    year: int,
    where: Where,
    after: tuple[str, str] | None,
    upto: tuple[str, str] | None,
    limit: int,
    position: int,
) -> list[tuple[str, str]]:
    """The keys of a county (as first paid, as the county's totals count them) paid up to
    ``position``: the county's keys ever paid along their index, each probed for a line."""
    p, lines = t.paid.c, t.payout_lines.c
    key = tuple_(p.category, p.beneficiary)
    query = select(p.category, p.beneficiary).where(
        p.year == year,
        p.region_code == where.county,
        exists().where(
            lines.beneficiary == p.beneficiary,
            lines.year == p.year,
            lines.position <= position,
            lines.category == p.category,
        ),
    )
    if where.category is not None:
        query = query.where(p.category == where.category)
    if after is not None:
        query = query.where(key > tuple_(literal(after[0]), literal(after[1])))
    if upto is not None:
        query = query.where(key <= tuple_(literal(upto[0]), literal(upto[1])))
    rows = conn.execute(query.order_by(p.category, p.beneficiary).limit(limit))
    return [(r.category, r.beneficiary) for r in rows]


def payout_positions(conn: Connection, year: int, upto: int) -> list[int]:
    """The positions of the payouts of ``year`` recorded at or before ``upto``, in order."""
    p = t.payouts.c
    rows = conn.execute(
        select(p.position).where(p.year == year, p.position <= upto).order_by(p.position)
    )
    return [int(r.position) for r in rows]


def paid_totals_at(
    conn: Connection, year: int, county: str | None, position: int
) -> dict[str, tuple[int, int]]:
    """Per category: paid and recovered over the year (or one county, as first paid) by the
    payouts recorded at or before ``position``, summed from their lines: over the year, the
    lines of each such payout along the primary key; in a county, the county's keys ever
    paid, each probed through its own index."""
    lines, p = t.payout_lines.c, t.paid.c
    sums: dict[tuple[str, str], int] = defaultdict(int)
    if county is None:
        for at in payout_positions(conn, year, position):
            for r in conn.execute(
                select(lines.category, lines.kind, func.sum(lines.amount_fen).label("fen"))
                .where(lines.position == at)
                .group_by(lines.category, lines.kind)
            ):
                sums[(r.category, r.kind)] += int(r.fen)
    else:
        of_key = (
            lines.beneficiary == p.beneficiary,
            lines.year == year,
            lines.position <= position,
            lines.category == p.category,
        )
        if conn.dialect.name == "postgresql":  # a probe per key, whatever the planner thinks
            probe = select(lines.kind, lines.amount_fen).where(*of_key).offset(0).lateral("l")
            kind, fen, joined = probe.c.kind, probe.c.amount_fen, t.paid.join(probe, true())
        else:
            kind, fen = lines.kind, lines.amount_fen
            joined = t.paid.join(t.payout_lines, and_(*of_key))
        for r in conn.execute(
            select(p.category, kind.label("kind"), func.sum(fen).label("fen"))
            .select_from(joined)
            .where(p.year == year, p.region_code == county)
            .group_by(p.category, kind)
        ):
            sums[(r.category, r.kind)] += int(r.fen)
    return {
        c: (sums[(c, "payment")], sums[(c, "recovery")])
        for c in ALL_CATEGORIES
        if (c, "payment") in sums or (c, "recovery") in sums
    }


def contracts_since(
    conn: Connection, year: int, since: dict[tuple[str, str], int]
) -> dict[tuple[str, str], set[str]]:
    """Per (category, beneficiary): the contracts that fed or were weighed for its entitlement
    at any time after ``since[key]`` (a claim current then or begun since)."""
    if not since:
        return {}
    c = t.claims.c
    earliest = min(since.values())
    categories = sorted({k[0] for k in since})
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for chunk in _chunks(sorted({k[1] for k in since})):
        rows = conn.execute(
            select(c.category, c.beneficiary, c.registration_no, c.valid_to)
            .where(
                c.year == year,
                c.category.in_(categories),
                one_of(c.beneficiary, chunk, conn.dialect),
                or_(c.valid_to.is_(None), c.valid_to > earliest),
            )
            .distinct()
        )
        for r in rows:
            key = (r.category, r.beneficiary)
            if key in since and (r.valid_to is None or r.valid_to > since[key]):
                found[key].add(r.registration_no)
    return found


def recorded(conn: Connection, year: int) -> list[dict[str, Any]]:
    """The payouts of a turnover year, in log order, each with its lines."""
    p, lines = t.payouts.c, t.payout_lines.c
    payouts = conn.execute(select(t.payouts).where(p.year == year).order_by(p.position)).all()
    by_position: dict[int, list[Any]] = defaultdict(list)
    positions = [int(r.position) for r in payouts]
    for chunk in _chunks(positions):
        for r in conn.execute(
            select(t.payout_lines)
            .where(one_of(lines.position, chunk, conn.dialect))
            .order_by(lines.position, lines.category, lines.beneficiary)
        ):
            by_position[int(r.position)].append(r)
    return [
        {
            "payout_no": r.payout_no,
            "year": int(r.year),
            "paid_on": r.paid_on,
            "basis_position": int(r.basis_position),
            "position": int(r.position),
            "lines": by_position[int(r.position)],
        }
        for r in payouts
    ]


def current(
    conn: Connection, year: int, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Any]:
    """The current entitlement rows of these (category, beneficiary) in ``year``."""
    e = t.entitlements.c
    wanted = set(keys)
    found = {}
    for chunk in _chunks(sorted({k[1] for k in wanted})):
        for r in conn.execute(
            select(t.entitlements).where(
                e.year == year, one_of(e.beneficiary, chunk, conn.dialect), e.valid_to.is_(None)
            )
        ):
            if (r.category, r.beneficiary) in wanted:
                found[(r.category, r.beneficiary)] = r
    return found


def _paid(r: Any) -> Paid:
    return Paid(r.name, r.region_code, int(r.paid_fen), int(r.recovered_fen), int(r.last_position))


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]
