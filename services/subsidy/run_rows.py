"""The rows a run of log entries writes to the subsidy store, taken from its projection.

Taking them is separate from writing them: once taken, they hold nothing the next run can
change (a contract's facts are serialised here, while the projection's records are still the
run's own), so the next run may be computed while these are written (see ``pipeline``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.common.bulk import insert_columns, one_of, update_columns
from services.common.payloads import skipped_as
from services.subsidy import payouts
from services.subsidy import tables as t
from services.subsidy.projection import (
    ClaimValue,
    EntitlementValue,
    PayoutApplied,
    Projection,
    TotalValue,
)
from services.subsidy.versions import Versions

_CHUNK = 5000  # values per IN list: well inside SQLite's limit of bound parameters

Columns = dict[str, Sequence[Any]]


@dataclass(frozen=True)
class VersionRows:
    """A table's versions that a run ends (``where`` + ``ended``) and begins (``begun``)."""

    table: Table
    where: Columns
    ended: Columns
    begun: Columns

    def write(self, conn: Connection) -> None:
        if self.where:
            update_columns(conn, self.table, self.where, self.ended)
        if self.begun:
            insert_columns(conn, self.table, self.begun, copy=True)


@dataclass(frozen=True)
class RunRows:
    """Everything one run writes besides the head."""

    log: Columns
    skipped: Counter[str]
    last_skipped: dict[str, int]
    contracts: Columns
    brokers: Columns
    funding: Columns
    grants: Columns
    roles: Columns
    payouts: Sequence[PayoutApplied]
    versions: tuple[VersionRows, ...]

    @classmethod
    def of(cls, projection: Projection, run: Sequence[dict[str, Any]]) -> RunRows:
        changed = sorted(projection.changed_contracts)
        ids = sorted(projection.new_brokers)
        filed = [projection.new_brokers[i] for i in ids]
        funded = sorted(projection.new_funding)
        grants = projection.new_grants
        roles = sorted(
            (party, role, no)
            for (party, role), numbers in projection.new_roles.items()
            for no in numbers
        )
        return cls(
            log={
                "position": [e["position"] for e in run],
                "subject": [e["subject"] for e in run],
                "type": [e["type"] for e in run],
                "recorded_at": [e["recorded_at"] for e in run],
            },
            skipped=projection.skipped,
            last_skipped={skipped_as(e): int(e["position"]) for e in run}
            if projection.skipped
            else {},
            contracts={
                "registration_no": changed,
                "facts": [orjson.dumps(projection.contracts[no]) for no in changed],
            },
            brokers={
                "broker_id": ids,
                "name": [b.name for b in filed],
                "filed_on": [b.filed_on.isoformat() for b in filed],
                "region_code": [b.region_code for b in filed],
            },
            funding={"credit_code": [c for c, _ in funded], "year": [y for _, y in funded]},
            grants={
                "grant_no": [g.grant_no for g in grants],
                "credit_code": [g.credit_code for g in grants],
                "year": [g.year for g in grants],
                "programme": [g.programme for g in grants],
                "amount_fen": [g.amount_fen for g in grants],
                "decided_on": [g.decided_on for g in grants],
                "document_no": [g.document_no for g in grants],
            },
            roles={
                "party": [r[0] for r in roles],
                "role": [r[1] for r in roles],
                "registration_no": [r[2] for r in roles],
            },
            payouts=list(projection.payouts),
            versions=(
                _version_rows(t.claims, projection.claims, _claim_columns),
                _version_rows(t.entitlements, projection.entitlements, _entitlement_columns),
                _version_rows(t.totals, projection.totals, _total_columns),
            ),
        )

    def write(self, conn: Connection) -> None:
        """Write the rows in the connection's transaction."""
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for kind, count in self.skipped.items():
            conn.execute(
                insert(t.skipped)
                .values(type=kind, entries=0, last_position=0)
                .on_conflict_do_nothing(index_elements=["type"])
            )
            conn.execute(
                update(t.skipped)
                .where(t.skipped.c.type == kind)
                .values(entries=t.skipped.c.entries + count, last_position=self.last_skipped[kind])
            )
        insert_columns(conn, t.log, self.log, copy=True)
        self._write_facts(conn)
        payouts.write(conn, self.payouts)
        for versions in self.versions:
            versions.write(conn)

    def _write_facts(self, conn: Connection) -> None:
        changed = self.contracts["registration_no"]
        if changed:
            for i in range(0, len(changed), _CHUNK):
                conn.execute(
                    delete(t.contracts).where(
                        one_of(t.contracts.c.registration_no, changed[i : i + _CHUNK], conn.dialect)
                    )
                )
            insert_columns(conn, t.contracts, self.contracts, copy=True)
        ids = self.brokers["broker_id"]
        if ids:
            conn.execute(delete(t.brokers).where(one_of(t.brokers.c.broker_id, ids, conn.dialect)))
            insert_columns(conn, t.brokers, self.brokers)
        if self.funding["credit_code"]:
            insert_columns(conn, t.funding, self.funding)
        if self.grants["grant_no"]:
            insert_columns(conn, t.grants, self.grants)
        if self.roles["party"]:
            # An amendment may name a broker again: its role is stored already.
            insert_columns(conn, t.roles, self.roles, on_conflict_do_nothing=True)


# Columns made straight from the versions' keys and values (tuples, turned into columns by
# zip in C): a dict per row, then turned into columns, was 5 % of a catch-up's computing.


def _claim_columns(values: Sequence[ClaimValue]) -> Columns:
    name, region_code, share, reason = zip(*values, strict=True)
    return {
        "name": name,
        "region_code": region_code,
        "share": [str(s) for s in share],
        "reason": reason,
    }


def _entitlement_columns(values: Sequence[EntitlementValue]) -> Columns:
    name, region_code, first, claims, turnover, gross, entitled = zip(*values, strict=True)
    return {
        "name": name,
        "region_code": region_code,
        "first_registration_no": first,
        "claims": claims,
        "turnover": [str(t) for t in turnover],
        "gross_fen": gross,
        "entitlement_fen": entitled,
        "capped": [g > e for g, e in zip(gross, entitled, strict=True)],
    }


def _total_columns(values: Sequence[TotalValue]) -> Columns:
    beneficiaries, turnover, gross, entitled = zip(*values, strict=True)
    return {
        "beneficiaries": beneficiaries,
        "turnover": [str(t) for t in turnover],
        "gross_fen": gross,
        "entitlement_fen": entitled,
    }


_KEYS = {
    "subsidy_claims": ("year", "category", "beneficiary", "registration_no"),
    "subsidy_entitlements": ("year", "category", "beneficiary"),
    "subsidy_totals": ("year", "category", "county"),
}


def _version_rows(table: Table, versions: Versions[Any, Any, Any], columns: Any) -> VersionRows:
    names = _KEYS[table.name]
    where: Columns = {}
    ended: Columns = {}
    if versions.ended:
        ended_keys, valid_from, valid_to = zip(*versions.ended, strict=True)
        where = {**_key_columns(names, ended_keys), "valid_from": valid_from}
        ended = {"valid_to": valid_to}
    begun: Columns = {}
    written = versions.written()
    if written:
        begun = {
            **_key_columns(names, [v.key for v in written]),
            **columns([v.value for v in written]),
            "valid_from": [v.valid_from for v in written],
            "valid_to": [v.valid_to for v in written],
        }
    return VersionRows(table, where, ended, begun)


def _key_columns(names: Sequence[str], keys: Sequence[tuple[Any, ...]]) -> Columns:
    return dict(zip(names, zip(*keys, strict=True), strict=True))
