"""The stored state a run of entries leaves, before it is written: so that the next run can be
computed while this one is written (see ``pipeline``).

What the finished run read or changed, it knows as the store will hold it once written; for
everything else the store already holds the truth, since the run did not touch it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from services.subsidy.projection import (
    BrokerFacts,
    ClaimKey,
    ClaimValue,
    EntitlementKey,
    EntitlementValue,
    Projection,
    StoredState,
    TotalKey,
    TotalValue,
)


class Carried:
    """A :class:`StoredState`: ``previous``'s run as if written, over ``stored``.

    ``stored`` must hold everything before ``previous``'s run, and nothing of it. Records
    are handed on, not copied: the previous run must be done with them (its rows taken).
    """

    def __init__(self, previous: Projection, stored: StoredState) -> None:
        self._previous = previous
        self._stored = stored
        self._years_funded: dict[str, set[int]] | None = None

    def forget(self) -> None:
        """Let the previous run go, once the run over this state is done: each run holding the
        one before through its state kept every run of a catch-up alive (2.8 GB at 1M)."""
        del self._previous

    def contracts(self, numbers: Iterable[str]) -> dict[str, dict[str, Any]]:
        return _known_or_stored(self._previous.contracts, numbers, self._stored.contracts)

    def brokers(self, ids: Iterable[str]) -> dict[str, BrokerFacts]:
        return _known_or_stored(self._previous.brokers_read, ids, self._stored.brokers)

    def funded(self, credit_codes: Iterable[str]) -> set[tuple[str, int]]:
        if self._years_funded is None:
            self._years_funded = {}
            for code, year in self._previous.funded_read:
                self._years_funded.setdefault(code, set()).add(year)
        found: set[tuple[str, int]] = set()
        wanted = []
        for code in credit_codes:
            if code in self._previous.funding_read:
                found |= {(code, year) for year in self._years_funded.get(code, ())}
            else:
                wanted.append(code)
        if wanted:
            found |= self._stored.funded(wanted)
        return found

    def roles(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        read, added = self._previous.roles_read, self._previous.new_roles
        pairs = set(wanted)
        found = self._stored.roles([pair for pair in pairs if pair not in read])
        for pair in pairs:
            numbers = read.get(pair, set()) | found.get(pair, set()) | added.get(pair, set())
            if numbers:
                found[pair] = numbers
            else:
                found.pop(pair, None)
        return found

    def claims(self, numbers: set[str]) -> dict[ClaimKey, tuple[ClaimValue, int]]:
        found, read = self._previous.claims.held(numbers)
        if len(read) < len(numbers):
            found.update(self._stored.claims(numbers - read))
        return found

    def first_claims(self, key: EntitlementKey, limit: int) -> list[tuple[str, ClaimValue]]:
        claims = self._previous.claims
        here = [
            (no, self._previous.claims_of[no][key]) for no in self._previous.claimants.get(key, ())
        ]
        # The stored claims of contracts the previous run did not read, enough of them: those
        # it read are skipped, as what it knows of them replaces what is stored.
        fetch = limit
        while True:
            rows = self._stored.first_claims(key, fetch)
            stored = [(no, claim) for no, claim in rows if not claims.has_read(no)]
            if len(stored) >= limit or len(rows) < fetch:
                break
            fetch *= 2
        return sorted(here + stored, key=lambda item: item[0])[:limit]

    def entitlements(
        self, beneficiaries: set[str]
    ) -> dict[EntitlementKey, tuple[EntitlementValue, int]]:
        found, read = self._previous.entitlements.held(beneficiaries)
        if len(read) < len(beneficiaries):
            found.update(self._stored.entitlements(beneficiaries - read))
        return found

    def totals(self, counties: set[str]) -> dict[TotalKey, tuple[TotalValue, int]]:
        found, read = self._previous.totals.held(counties)
        if len(read) < len(counties):
            found.update(self._stored.totals(counties - read))
        return found


_T = TypeVar("_T")


def _known_or_stored(
    known: Mapping[str, _T | None],
    wanted: Iterable[str],
    stored: Callable[[list[str]], dict[str, _T]],
) -> dict[str, _T]:
    """What ``known`` holds of ``wanted`` (None: known to be absent), and the rest as stored."""
    found = {}
    unknown = []
    for key in wanted:
        if key not in known:
            unknown.append(key)
        elif (value := known[key]) is not None:
            found[key] = value
    if unknown:
        found.update(stored(unknown))
    return found
