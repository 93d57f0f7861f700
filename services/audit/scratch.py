"""The report's scratch store: a private SQLite file, removed when closed, that holds what a pass
over the log cannot keep in memory without growing with it.

It keeps each contract's envelopes, to be folded one contract at a time once the log has been
read (a contract's facts depend on events anywhere after its registration), and each
contract's claims on a beneficiary's entitlement, to be summed one beneficiary at a time.
SQLite sorts them on disk: memory stays that of one contract, or one beneficiary.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from fractions import Fraction
from itertools import groupby
from typing import Any

import orjson

from services.common.policy.engine import Claim
from services.common.policy.model import Category

_BATCH = 1000  # rows per insert: enough to spare SQLite its per-statement cost, few in memory

_SCHEMA = """
CREATE TABLE envelopes (contract TEXT NOT NULL, seq INTEGER NOT NULL, envelope BLOB NOT NULL);
CREATE TABLE claims (
    year INTEGER NOT NULL, category TEXT NOT NULL, beneficiary TEXT NOT NULL,
    seq INTEGER NOT NULL, name TEXT NOT NULL, registration_no TEXT NOT NULL,
    numerator INTEGER NOT NULL, denominator INTEGER NOT NULL, reason TEXT
);
"""


class Scratch:
    """Envelopes by contract and claims by beneficiary, spilled to disk."""

    def __init__(self) -> None:
        # An empty name: SQLite's private temporary file, deleted when the connection closes.
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        self._envelopes: list[tuple[str, int, bytes]] = []
        self._claims: list[tuple[Any, ...]] = []
        self._seq = 0

    def close(self) -> None:
        self._db.close()

    def add_envelope(self, contract: str, seq: int, envelope: dict[str, Any]) -> None:
        """Keep ``envelope``, the ``seq``-th of the log, under ``contract``."""
        self._envelopes.append((contract, seq, orjson.dumps(envelope)))
        if len(self._envelopes) >= _BATCH:
            self._flush_envelopes()

    def contracts(self) -> Iterator[tuple[str, list[tuple[int, dict[str, Any]]]]]:
        """Each contract's envelopes with their ``seq``, in log order; contracts by number."""
        self._flush_envelopes()
        rows = self._db.execute(
            "SELECT contract, seq, envelope FROM envelopes ORDER BY contract, seq"
        )
        for contract, group in groupby(rows, key=lambda row: str(row[0])):
            yield contract, [(row[1], orjson.loads(row[2])) for row in group]

    def add_claims(self, year: int, claims: Iterable[Claim]) -> None:
        for c in claims:
            self._seq += 1
            share = Fraction(c.share)
            row = (year, c.category, c.beneficiary, self._seq, c.name, c.registration_no)
            self._claims.append((*row, share.numerator, share.denominator, c.reason))
        if len(self._claims) >= _BATCH:
            self._flush_claims()

    def beneficiaries(self) -> Iterator[tuple[tuple[int, Category, str], list[Claim]]]:
        """Each (year, category, beneficiary)'s claims in the order added, sorted by key."""
        self._flush_claims()
        rows = self._db.execute(
            "SELECT year, category, beneficiary, name, registration_no, numerator, denominator, "
            "reason FROM claims ORDER BY year, category, beneficiary, seq"
        )
        for key, group in groupby(rows, key=lambda row: (row[0], row[1], row[2])):
            yield (
                key,
                [
                    Claim(beneficiary, name, category, no, Fraction(n, d), reason)
                    for _, category, beneficiary, name, no, n, d, reason in group
                ],
            )

    def _flush_envelopes(self) -> None:
        self._db.executemany("INSERT INTO envelopes VALUES (?, ?, ?)", self._envelopes)
        self._envelopes.clear()

    def _flush_claims(self) -> None:
        self._db.executemany("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self._claims)
        self._claims.clear()
