"""The contract listing: a summary row per contract, kept beside the events, and its queries.

The writer replaces the row of every contract a group changed, in the group's transaction
(:func:`write_rows`), so the listing never disagrees with the log it summarises. A page is a
keyset walk, newest registration first, over an index that starts with the one column a filter
fixes: it reads the rows it returns (and those a ``q`` skips), never the whole table first.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Select, delete, select, tuple_, union_all
from sqlalchemy.engine import Connection

from services.common.bulk import insert_columns, one_of
from services.common.errors import Invalid
from services.common.money import format_fen
from services.registry.domain import Contract
from services.registry.store import contracts

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
STATUSES = ("active", "cancelled")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def summary_row(c: Contract) -> dict[str, Any]:
    """The listing's row of a contract as it stands."""
    return {
        "registration_no": c.registration_no,
        "station_id": c.station_id,
        "registered_on": c.registered_on,
        "signed_on": c.signed_on,
        "title": c.title,
        "contract_type": c.contract_type,
        "seller_name": c.seller["name"],
        "seller_credit_code": c.seller["credit_code"],
        "buyer_name": c.buyer["name"],
        "buyer_credit_code": c.buyer["credit_code"],
        "contract_amount_fen": c.contract_amount_fen,
        "technology_amount_fen": c.technology_amount_fen,
        "status": "cancelled" if c.cancelled else "active",
        "invoiced_fen": c.invoiced_fen,
        "paid_fen": c.paid_fen,
        "invoices": sum(1 for i in c.invoices.values() if i["voided"] is None),
        "transfer_proofs": sum(1 for p in c.transfer_proofs.values() if p["withdrawn"] is None),
        "search": "\n".join(
            (c.registration_no, c.title, c.seller["name"], c.buyer["name"])
        ).lower(),
    }


def write_rows(conn: Connection, changed: Sequence[Contract]) -> None:
    """Replace the rows of the contracts ``changed``, in the caller's transaction."""
    if not changed:
        return
    rows = [summary_row(c) for c in changed]
    # A contract registered in this transaction has no row yet: only the others' go first.
    stored = [c.registration_no for c in changed if c.version > len(c.pending_events)]
    if stored:
        conn.execute(
            delete(contracts).where(one_of(contracts.c.registration_no, stored, conn.dialect))
        )
    insert_columns(conn, contracts, {name: [r[name] for r in rows] for name in rows[0]})


# -- the query --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListingQuery:
    """What a page of the listing asks for, checked: each refusal names its parameter."""

    station: str | None = None
    party: str | None = None
    status: str | None = None
    registered_from: str | None = None
    registered_to: str | None = None
    q: str | None = None
    limit: int = DEFAULT_LIMIT
    after: tuple[str, str] | None = None  # the last (registered_on, registration_no) seen

    @classmethod
    def parse(
        cls,
        *,
        station: str | None = None,
        party: str | None = None,
        status: str | None = None,
        registered_from: str | None = None,
        registered_to: str | None = None,
        q: str | None = None,
        limit: int | str | None = None,
        cursor: str | None = None,
    ) -> ListingQuery:
        """The query these parameters ask for (None: absent; an empty date or limit is no
        date or limit, and refused)."""
        if status and status not in STATUSES:
            raise Invalid(
                "status",
                "must be active or cancelled",
                "状态须为 active（有效）或 cancelled（已注销）",
            )
        start = _day("registered_from", registered_from)
        end = _day("registered_to", registered_to)
        if start and end and start > end:
            raise Invalid(
                "registered_to",
                "must not be before registered_from",
                "登记日期止不得早于登记日期起",
            )
        return cls(
            station=station or None,
            party=(party or "").strip().upper() or None,
            status=status or None,
            registered_from=start,
            registered_to=end,
            q=(q or "").strip().lower() or None,
            limit=_limit(limit),
            after=decode_cursor(cursor) if cursor else None,
        )

    def within(self, scope: str | None) -> ListingQuery | None:
        """This query as a principal reading only station ``scope`` (None: every station) may
        ask it, or None when it asks for another station (an empty page, not others' rows)."""
        if scope is None:
            return self
        if self.station is not None and self.station != scope:
            return None
        return ListingQuery(**{**self.__dict__, "station": scope})


def page(conn: Connection, query: ListingQuery | None) -> dict[str, Any]:
    """A page of contract summaries, newest registration first, and the next page's cursor."""
    if query is None:
        return {"contracts": [], "next_cursor": None}
    wanted = query.limit + 1  # one more tells whether another page follows
    if query.party is None:
        statement = _select(query).limit(wanted)
    else:
        # Seller or buyer: each side walks its own index in order, and the two short lists
        # are merged; an OR would leave the planner to sort every contract of the party.
        sides = [
            _select(query).where(column == query.party).limit(wanted).subquery()
            for column in (contracts.c.seller_credit_code, contracts.c.buyer_credit_code)
        ]
        merged = union_all(*(select(side) for side in sides)).subquery()
        statement = (
            select(merged)
            .order_by(merged.c.registered_on.desc(), merged.c.registration_no.desc())
            .limit(wanted)
        )
    rows = conn.execute(statement).all()
    shown = rows[: query.limit]
    more = len(rows) > query.limit
    return {
        "contracts": [_summary(r._mapping) for r in shown],
        "next_cursor": encode_cursor(shown[-1].registered_on, shown[-1].registration_no)
        if more
        else None,
    }


def _select(query: ListingQuery) -> Select[Any]:
    c = contracts.c
    statement = select(contracts).order_by(c.registered_on.desc(), c.registration_no.desc())
    if query.station is not None:
        statement = statement.where(c.station_id == query.station)
    if query.status is not None:
        statement = statement.where(c.status == query.status)
    if query.registered_from is not None:
        statement = statement.where(c.registered_on >= query.registered_from)
    if query.registered_to is not None:
        statement = statement.where(c.registered_on <= query.registered_to)
    if query.after is not None:
        statement = statement.where(tuple_(c.registered_on, c.registration_no) < query.after)
    if query.q is not None:
        statement = statement.where(c.search.contains(query.q, autoescape=True))
    return statement


def _summary(row: Any) -> dict[str, Any]:
    return {
        "registration_no": row["registration_no"],
        "station_id": row["station_id"],
        "registered_on": row["registered_on"],
        "signed_on": row["signed_on"],
        "title": row["title"],
        "contract_type": row["contract_type"],
        "seller": {"name": row["seller_name"], "credit_code": row["seller_credit_code"]},
        "buyer": {"name": row["buyer_name"], "credit_code": row["buyer_credit_code"]},
        "contract_amount": format_fen(row["contract_amount_fen"]),
        "technology_amount": format_fen(row["technology_amount_fen"]),
        "status": row["status"],
        "invoiced_total": format_fen(row["invoiced_fen"]),
        "paid_total": format_fen(row["paid_fen"]),
        "invoices": row["invoices"],
        "transfer_proofs": row["transfer_proofs"],
    }


# -- parameters -------------------------------------------------------------------------------


def encode_cursor(registered_on: str, registration_no: str) -> str:
    """The cursor of a page that ended at this contract."""
    raw = orjson.dumps([registered_on, registration_no])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (registered_on, registration_no) a cursor names, or a refusal naming ``cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        day, number = orjson.loads(raw)
        if isinstance(day, str) and isinstance(number, str):
            return day, number
    except (binascii.Error, ValueError, TypeError):
        pass
    raise Invalid(
        "cursor",
        "is not a cursor this service gave out: pass next_cursor as it came",
        "不是本服务给出的游标：请原样传入上一页的 next_cursor",
    )


def _day(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        if _ISO_DATE.fullmatch(value):
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise Invalid(
        field,
        f"must be a date as YYYY-MM-DD, e.g. 2024-03-01 (got {value[:40]!r})",
        "须为 YYYY-MM-DD 格式的日期，如 2024-03-01",
    )


def _limit(value: int | str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, int) or value.isdigit():
        number = int(value)
        if 1 <= number <= MAX_LIMIT:
            return number
    raise Invalid(
        "limit",
        f"must be a whole number from 1 to {MAX_LIMIT}",
        f"每页条数须为 1 至 {MAX_LIMIT} 的整数",
    )
