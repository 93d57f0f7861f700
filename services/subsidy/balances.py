"""Finance's balances (余额): per turnover year, category and beneficiary, what it is entitled
to against what was paid and recovered by the payouts in the log (now, or as known at a past
position), and the payout draft that would settle every difference now.

``outstanding = entitled − paid + recovered``: positive is owed (补拨), negative is to be
recovered (追回). Read from the materialised entitlements and the payouts' sums beside them;
as known at a past position, from the entitlements' versions holding then and the payout lines
recorded up to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from services.common.money import format_fen
from services.common.policy.model import ALL_CATEGORIES
from services.common.policy.schedule import PolicySchedule
from services.subsidy import cursors, payouts, reads
from services.subsidy.application import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    check_year,
    cut_at,
)
from services.subsidy.projection import EntitlementValue, TotalValue
from services.subsidy.reads import Cut
from services.subsidy.store import EntryStore

Key = tuple[str, str]  # category, beneficiary


@dataclass
class BalancesExport:
    """A year's balances at one log position for a spreadsheet: the rows (amounts in fen,
    each with the payout lines that touched it), read page by page when iterated, and the
    totals by category."""

    year: int
    policy_version: str
    position: int
    totals: dict[str, dict[str, int]]
    rows: Iterator[dict[str, Any]]


class Balances:
    """Balances of a turnover year, the payout draft that settles them, the payouts recorded."""

    def __init__(self, store: EntryStore, schedule: PolicySchedule) -> None:
        self._engine = store.engine
        self._schedule = schedule

    def balances(
        self,
        year: int,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
        category: str | None = None,
        beneficiary: str | None = None,
        county: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """A page of a year's balances, each with the payouts that touched it and the events
        about it since its last payout, and the totals by category; as known now, at
        ``as_of`` or at log ``position``."""
        check_year(self._schedule, year)
        after = cursors.decode(cursor) if cursor else None
        where = payouts.Where(category, beneficiary, county)
        with reads.snapshot(self._engine) as conn:
            cut = cut_at(conn, as_of, position)
            read = _reader(conn, year, cut)
            keys = read.keys(where, after, limit + 1)
            more = len(keys) > limit
            keys = keys[:limit]
            rows = read.rows(keys, details=True)
            if beneficiary is not None:  # a category or two: summed from its rows
                every = (
                    rows
                    if not more and after is None
                    else read.rows(read.keys(where, None, MAX_LIMIT))
                )
                totals = _summed(every)
            else:
                totals = read.totals(county)
        return {
            "year": year,
            "position": cut.position,
            "policy_version": self._schedule.version_of(year),
            "balances": [_json(r) for r in rows],
            "totals": {c: {k: format_fen(v) for k, v in totals[c].items()} for c in totals},
            "next_cursor": cursors.encode(*keys[-1]) if more else None,
        }

    def export(
        self, year: int, as_of: datetime | None = None, position: int | None = None
    ) -> BalancesExport:
        """Every balance of a year, with its payout lines, and the totals, for a spreadsheet;
        as known now, at ``as_of`` or at log ``position``.

        All pages are read in the one snapshot the position and totals come from, and the
        rows then speak of that position however the log grows meanwhile (now, the sums paid
        are running sums with no versions)."""
        check_year(self._schedule, year)
        stack = ExitStack()
        conn = stack.enter_context(reads.snapshot(self._engine))
        try:
            read = _reader(conn, year, cut_at(conn, as_of, position))
            totals = read.totals(None)
        except BaseException:
            stack.close()
            raise
        return BalancesExport(
            year,
            self._schedule.version_of(year),
            read.cut.position,
            totals,
            _every_row(stack, read),
        )

    def draft(self, year: int) -> dict[str, Any]:
        """The payout lines that would settle every non-zero outstanding amount now."""
        check_year(self._schedule, year)
        lines = []
        owed = {"payment": 0, "recovery": 0}
        with reads.snapshot(self._engine) as conn:
            position = reads.head(conn).position
            after: Key | None = None
            while True:
                keys = _keys(conn, year, payouts.Where(), after, MAX_LIMIT)
                for row in _rows(conn, year, keys, position):
                    if row["outstanding"]:
                        kind = "payment" if row["outstanding"] > 0 else "recovery"
                        owed[kind] += abs(row["outstanding"])
                        lines.append(
                            {
                                "beneficiary": row["beneficiary"],
                                "name": row["name"],
                                "category": row["category"],
                                "amount": format_fen(abs(row["outstanding"])),
                                "kind": kind,
                            }
                        )
                if len(keys) < MAX_LIMIT:
                    break
                after = keys[-1]
        return {
            "year": year,
            "basis_position": position,
            "policy_version": self._schedule.version_of(year),
            "lines": lines,
            "totals": {kind: format_fen(fen) for kind, fen in owed.items()},
        }

    def recorded(self, year: int) -> dict[str, Any]:
        """The payouts of a turnover year recorded in the log, each with its lines."""
        check_year(self._schedule, year)
        with reads.snapshot(self._engine) as conn:
            position = reads.head(conn).position
            found = payouts.recorded(conn, year)
        return {
            "year": year,
            "position": position,
            "payouts": [
                {
                    **p,
                    "lines": [
                        {
                            "beneficiary": line.beneficiary,
                            "category": line.category,
                            "amount": format_fen(int(line.amount_fen)),
                            "kind": line.kind,
                        }
                        for line in p["lines"]
                    ],
                }
                for p in found
            ],
        }


def _every_row(stack: ExitStack, read: _Reader) -> Iterator[dict[str, Any]]:
    with stack:  # the snapshot ends with the rows, or when their reader stops early
        after: Key | None = None
        while True:
            keys = read.keys(payouts.Where(), after, MAX_LIMIT)
            yield from read.rows(keys, details=True, revisions=False)
            if len(keys) < MAX_LIMIT:
                return
            after = keys[-1]


class _Reader(Protocol):
    """Balances as known at one cut: the keys of a page, their rows, the totals."""

    cut: Cut

    def keys(self, where: payouts.Where, after: Key | None, limit: int) -> list[Key]: ...

    def rows(
        self, keys: Sequence[Key], *, details: bool = False, revisions: bool = True
    ) -> list[dict[str, Any]]: ...

    def totals(self, county: str | None) -> dict[str, dict[str, int]]: ...


def _reader(conn: Connection, year: int, cut: Cut) -> _Reader:
    return _Now(conn, year, cut) if cut.now else _Then(conn, year, cut)


@dataclass
class _Now:
    """Balances now: the current entitlements beside the running sums paid."""

    conn: Connection
    year: int
    cut: Cut

    def keys(self, where: payouts.Where, after: Key | None, limit: int) -> list[Key]:
        return _keys(self.conn, self.year, where, after, limit)

    def rows(
        self, keys: Sequence[Key], *, details: bool = False, revisions: bool = True
    ) -> list[dict[str, Any]]:
        return _rows(
            self.conn, self.year, keys, self.cut.position, details=details, revisions=revisions
        )

    def totals(self, county: str | None) -> dict[str, dict[str, int]]:
        return _stored_totals(self.conn, self.year, self.cut.position, county)


@dataclass
class _Then:
    """Balances as known at a past position: the entitlements' versions holding there, and
    the payout lines recorded up to it summed."""

    conn: Connection
    year: int
    cut: Cut
    # The amounts at the cut of every key ``keys`` returned that was entitled then (those
    # it returned without one were not).
    entitled: dict[Key, EntitlementValue] = field(default_factory=dict)

    def keys(self, where: payouts.Where, after: Key | None, limit: int) -> list[Key]:
        """The first ``limit`` keys after ``after`` entitled at the cut or paid up to it: a
        page of entitlements holding then, and the keys paid up to the last of them."""
        conn, year, cut = self.conn, self.year, self.cut
        upto: Key | None = None
        if where.beneficiary is not None:
            wanted = ALL_CATEGORIES if where.category is None else (where.category,)
            held = reads.values_at(conn, year, cut, [(year, c, where.beneficiary) for c in wanted])
            entitled = {
                k[1:]: v
                for k, v in held.items()
                if (where.county is None or v.region_code == where.county)
                and (after is None or k[1:] > after)
            }
        else:
            page = reads.page(
                conn, year, cut, category=where.category, county=where.county, after=after,
                limit=limit, claims=False,
            )  # fmt: skip
            entitled = {(r.key[1], r.key[2]): r.value for r in page}
            if len(page) == limit:  # keys paid beyond the page's last could not be in it
                upto = (page[-1].key[1], page[-1].key[2])
        self.entitled.update(entitled)
        paid = payouts.paid_keys_at(conn, year, where, after, upto, limit, cut.position)
        return sorted(entitled.keys() | set(paid))[:limit]

    def rows(
        self, keys: Sequence[Key], *, details: bool = False, revisions: bool = True
    ) -> list[dict[str, Any]]:
        conn, year = self.conn, self.year
        lines = payouts.lines_of(conn, year, {k[1] for k in keys}, upto=self.cut.position)
        paid: dict[payouts.PaidKey, payouts.Paid] = {}
        for key in keys:
            if key in lines:
                touched = lines[key]
                payment = sum(x["amount_fen"] for x in touched if x["kind"] == "payment")
                recovery = sum(x["amount_fen"] for x in touched) - payment
                last = max(x["position"] for x in touched)
                paid[(year, *key)] = payouts.Paid("", "", payment, recovery, last)
        # Named as when first paid, where not entitled then (a recovery outlives its entitlement).
        named = payouts.paid_rows(conn, {k for k in paid if k[1:] not in self.entitled})
        for k, p in named.items():
            paid[k].name, paid[k].region_code = p.name, p.region_code
        rows = [_row(key, self.entitled.get(key), paid.get((year, *key))) for key in keys]
        if details and rows:
            _add_details(conn, year, rows, paid, lines, self.cut.position, revisions)
        return rows

    def totals(self, county: str | None) -> dict[str, dict[str, int]]:
        entitled = reads.totals(self.conn, self.year, self.cut, county)
        paid = payouts.paid_totals_at(self.conn, self.year, county, self.cut.position)
        return _totals(entitled, paid)


def _keys(
    conn: Connection, year: int, where: payouts.Where, after: Key | None, limit: int
) -> list[Key]:
    """The first ``limit`` keys after ``after`` entitled now or ever paid: two indexes read
    in step, each for at most ``limit`` rows."""
    entitled = payouts.first_keys(conn, year, where, after, limit, paid_only=False)
    paid = payouts.first_keys(conn, year, where, after, limit, paid_only=True)
    return sorted(set(entitled) | set(paid))[:limit]


def _rows(
    conn: Connection,
    year: int,
    keys: Sequence[Key],
    position: int,
    *,
    details: bool = False,
    revisions: bool = True,
) -> list[dict[str, Any]]:
    """The balances of these keys, amounts in fen; with ``details``, the payouts that touched
    each and (unless not ``revisions``) the events about it since its last payout."""
    entitled = payouts.current(conn, year, keys)
    paid = payouts.paid_rows(conn, {(year, *k) for k in keys})
    rows = [_row(key, entitled.get(key), paid.get((year, *key))) for key in keys]
    if details and rows:
        lines = payouts.lines_of(conn, year, {r["beneficiary"] for r in rows})
        _add_details(conn, year, rows, paid, lines, position, revisions)
    return rows


def _row(key: Key, e: Any, p: payouts.Paid | None) -> dict[str, Any]:
    """A balance in fen from its entitlement (a row or value; None: not entitled) and sums."""
    entitled_fen = int(e.entitlement_fen) if e is not None else 0
    paid_fen = p.paid_fen if p else 0
    recovered_fen = p.recovered_fen if p else 0
    return {
        "beneficiary": key[1],
        "name": (e.name if e is not None else "") or (p.name if p else ""),
        "category": key[0],
        "county": e.region_code if e is not None else (p.region_code if p else ""),
        "entitled": entitled_fen,
        "paid": paid_fen,
        "recovered": recovered_fen,
        "outstanding": entitled_fen - paid_fen + recovered_fen,
        "payouts": [],
        "revisions_since_payout": [],
    }


def _add_details(
    conn: Connection,
    year: int,
    rows: list[dict[str, Any]],
    paid: dict[payouts.PaidKey, payouts.Paid],
    lines: dict[Key, list[dict[str, Any]]],
    position: int,
    revisions: bool,
) -> None:
    since = {k[1:]: p.last_position for k, p in paid.items()} if revisions else {}
    contracts = payouts.contracts_since(conn, year, since)
    subjects = {key: contracts.get(key, set()) | {key[1]} for key in since}
    found = (
        reads.events(conn, min(since.values()), position, set().union(*subjects.values()))
        if since
        else []
    )
    for row in rows:
        key = (row["category"], row["beneficiary"])
        row["payouts"] = [
            {
                "payout_no": line["payout_no"],
                "paid_on": line["paid_on"],
                "kind": line["kind"],
                "amount": format_fen(line["amount_fen"]),
                "position": line["position"],
                "basis_position": line["basis_position"],
            }
            for line in lines.get(key, [])
        ]
        if key in since:
            row["revisions_since_payout"] = [
                e for e in found if e["subject"] in subjects[key] and e["position"] > since[key]
            ]


def _stored_totals(
    conn: Connection, year: int, position: int, county: str | None
) -> dict[str, dict[str, int]]:
    entitled = reads.totals(conn, year, Cut(position, now=True), county)
    return _totals(entitled, payouts.paid_totals(conn, year, county))


def _totals(
    entitled: dict[str, TotalValue], paid: dict[str, tuple[int, int]]
) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for category in ALL_CATEGORIES:
        e = entitled[category].entitlement_fen if category in entitled else 0
        p, r = paid.get(category, (0, 0))
        totals[category] = {"entitled": e, "paid": p, "recovered": r, "outstanding": e - p + r}
    return totals


def _summed(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    names = ("entitled", "paid", "recovered", "outstanding")
    totals: dict[str, dict[str, int]] = {c: dict.fromkeys(names, 0) for c in ALL_CATEGORIES}
    for row in rows:
        for name in names:
            totals[row["category"]][name] += row[name]
    return totals


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        **{
            name: format_fen(row[name]) for name in ("entitled", "paid", "recovered", "outstanding")
        },
    }
