"""Finance's balances (余额): per turnover year, category and beneficiary, what it is entitled
to now against what was paid and recovered by the payouts in the log, and the payout draft
that would settle every difference.

``outstanding = entitled − paid + recovered``: positive is owed (补拨), negative is to be
recovered (追回). Read from the materialised entitlements and the payouts' sums beside them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from services.common.money import format_fen
from services.common.policy.model import ALL_CATEGORIES
from services.common.policy.schedule import PolicySchedule
from services.subsidy import cursors, payouts, reads
from services.subsidy.application import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    check_year,
)
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
        category: str | None = None,
        beneficiary: str | None = None,
        county: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """A page of a year's balances, each with the payouts that touched it and the events
        about it since its last payout, and the totals by category."""
        check_year(self._schedule, year)
        after = cursors.decode(cursor) if cursor else None
        where = payouts.Where(category, beneficiary, county)
        with reads.snapshot(self._engine) as conn:
            position = reads.head(conn).position
            keys = _keys(conn, year, where, after, limit + 1)
            more = len(keys) > limit
            keys = keys[:limit]
            rows = _rows(conn, year, keys, position, details=True)
            if beneficiary is not None:  # a category or two: summed from its rows
                every = (
                    rows
                    if not more and after is None
                    else _rows(conn, year, _keys(conn, year, where, None, MAX_LIMIT), position)
                )
                totals = _summed(every)
            else:
                totals = _stored_totals(conn, year, position, county)
        return {
            "year": year,
            "position": position,
            "policy_version": self._schedule.version_of(year),
            "balances": [_json(r) for r in rows],
            "totals": {c: {k: format_fen(v) for k, v in totals[c].items()} for c in totals},
            "next_cursor": cursors.encode(*keys[-1]) if more else None,
        }

    def export(self, year: int) -> BalancesExport:
        """Every balance of a year, with its payout lines, and the totals, for a spreadsheet.

        Balances keep no versions (the sums paid are running sums), so there is no ``as_of``:
        all pages are read in the one snapshot the position and totals come from, and the
        rows then speak of that position however the log grows meanwhile."""
        check_year(self._schedule, year)
        stack = ExitStack()
        conn = stack.enter_context(reads.snapshot(self._engine))
        try:
            position = reads.head(conn).position
            totals = _stored_totals(conn, year, position, None)
        except BaseException:
            stack.close()
            raise
        return BalancesExport(
            year,
            self._schedule.version_of(year),
            position,
            totals,
            _every_row(stack, conn, year, position),
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


def _every_row(
    stack: ExitStack, conn: Connection, year: int, position: int
) -> Iterator[dict[str, Any]]:
    with stack:  # the snapshot ends with the rows, or when their reader stops early
        after: Key | None = None
        while True:
            keys = _keys(conn, year, payouts.Where(), after, MAX_LIMIT)
            yield from _rows(conn, year, keys, position, details=True, revisions=False)
            if len(keys) < MAX_LIMIT:
                return
            after = keys[-1]


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
    rows: list[dict[str, Any]] = []
    for key in keys:
        e, p = entitled.get(key), paid.get((year, *key))
        entitled_fen = int(e.entitlement_fen) if e is not None else 0
        paid_fen = p.paid_fen if p else 0
        recovered_fen = p.recovered_fen if p else 0
        rows.append(
            {
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
        )
    if details and rows:
        _add_details(conn, year, rows, paid, position, revisions)
    return rows


def _add_details(
    conn: Connection,
    year: int,
    rows: list[dict[str, Any]],
    paid: dict[payouts.PaidKey, payouts.Paid],
    position: int,
    revisions: bool,
) -> None:
    lines = payouts.lines_of(conn, year, {r["beneficiary"] for r in rows})
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
    paid = payouts.paid_totals(conn, year, county)
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
