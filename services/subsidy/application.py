"""The subsidy application: finance's questions, answered from the store by the policy engine."""

from __future__ import annotations

import csv
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.common.envelope import format_instant
from services.common.errors import NotFound
from services.common.policy.engine import entitlements
from services.common.policy.facts import FactsBuilder
from services.common.policy.model import Entitlement, Facts, Policy
from services.common.policy.present import entitlement_json
from services.subsidy.store import EntryStore


class Subsidy:
    """Yearly entitlements, explained, as known now or at any past instant."""

    def __init__(
        self,
        store: EntryStore,
        policy: Policy,
        registry_head: Callable[[], int | None] = lambda: None,
        cache_size: int = 16,
    ) -> None:
        self._store = store
        self._policy = policy
        self._registry_head = registry_head
        self._cache: OrderedDict[tuple[int, str | None], Facts] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def policy(self) -> Policy:
        return self._policy

    def entitlements(
        self, year: int, category: str | None = None, as_of: datetime | None = None
    ) -> dict[str, Any]:
        """Every entitlement of a turnover year, or of one category, as known at ``as_of``."""
        self._check_year(year)
        facts = self._facts(as_of)
        rows = [
            e for e in entitlements(facts, year, self._policy) if category in (None, e.category)
        ]
        return self._answer(year, facts, [entitlement_json(e) for e in rows])

    def beneficiary(self, beneficiary: str, year: int) -> dict[str, Any]:
        """One beneficiary's entitlements in a year, each explained."""
        self._check_year(year)
        facts = self._facts(None)
        rows = [e for e in entitlements(facts, year, self._policy) if e.beneficiary == beneficiary]
        if not rows:
            raise NotFound("beneficiary", f"{beneficiary} has no entitlement or claim for {year}")
        return self._answer(year, facts, [entitlement_json(e) for e in rows])

    def csv(self, year: int) -> str:
        """The year's entitlements as CSV for spreadsheets, amounts in yuan."""
        answer = self.entitlements(year)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["year", "beneficiary", "name", "category", "turnover", "gross", "entitlement",
             "capped", "contracts", "excluded", "policy_version", "position"]
        )  # fmt: skip
        for e in answer["entitlements"]:
            writer.writerow(
                [year, e["beneficiary"], e["name"], e["category"], e["turnover"], e["gross"],
                 e["entitlement"], "yes" if e["capped"] else "no",
                 ";".join(f"{c['registration_no']}={c['evidenced']}" for c in e["contracts"]),
                 ";".join(f"{x['registration_no']}:{x['reason']}" for x in e["excluded"]),
                 answer["policy_version"], answer["position"]]
            )  # fmt: skip
        return "\ufeff" + out.getvalue()

    def revisions(self, year: int, since: datetime) -> dict[str, Any]:
        """Every entitlement that changed after ``since``: before, after, and the events why."""
        self._check_year(year)
        before_facts, after_facts = self._facts(since), self._facts(None)
        before = _by_key(entitlements(before_facts, year, self._policy))
        after = _by_key(entitlements(after_facts, year, self._policy))
        later = self._store.entries_after(since, after_facts.position)
        revisions = []
        for key in sorted(before.keys() | after.keys()):
            old, new = before.get(key), after.get(key)
            old_json = entitlement_json(old) if old else None
            new_json = entitlement_json(new) if new else None
            if old_json == new_json:
                continue
            subjects = {key[1]} | _contracts_of(old) | _contracts_of(new)
            revisions.append(
                {
                    "beneficiary": key[1],
                    "category": key[0],
                    "before": old_json,
                    "after": new_json,
                    "events": [_event_ref(e) for e in later if e["subject"] in subjects],
                }
            )
        return {
            "year": year,
            "since": format_instant(since),
            "policy_version": self._policy.version,
            "position_before": before_facts.position,
            "position": after_facts.position,
            "revisions": revisions,
        }

    def health(self) -> dict[str, Any]:
        """How far the store reaches, and how far behind the registry it is."""
        head = self._store.head()
        registry_head = self._registry_head()
        lag_events = max(registry_head - head.position, 0) if registry_head is not None else None
        lag_seconds: float | None = 0.0
        if lag_events:
            # How long the oldest event not yet applied has waited, when it is stored here.
            waiting = self._store.first_recorded_after(head.position)
            lag_seconds = (
                round(max((datetime.now(UTC) - waiting).total_seconds(), 0.0), 3)
                if waiting is not None
                else None
            )
        return {
            "applied_position": head.position,
            "registry_head": registry_head,
            "lag_events": lag_events,
            "lag_seconds": lag_seconds,
        }

    # -- internals ----------------------------------------------------------------------------

    def _check_year(self, year: int) -> None:
        if not self._policy.in_force(year):
            raise NotFound(
                "year",
                f"{year} is outside the years in force of policy {self._policy.version} "
                f"({self._policy.first_year}–{self._policy.last_year})",
            )

    def _facts(self, as_of: datetime | None) -> Facts:
        head = self._store.head().position
        key = (head, format_instant(as_of) if as_of else None)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        facts = FactsBuilder().apply_all(self._store.envelopes(head, as_of)).facts()
        with self._lock:
            self._cache[key] = facts
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return facts

    def _answer(self, year: int, facts: Facts, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "year": year,
            "policy_version": self._policy.version,
            "position": facts.position,
            "entitlements": rows,
        }


def _by_key(rows: list[Entitlement]) -> dict[tuple[str, str], Entitlement]:
    return {(e.category, e.beneficiary): e for e in rows}


def _contracts_of(e: Entitlement | None) -> set[str]:
    if e is None:
        return set()
    return {c.registration_no for c in e.contracts} | {x.registration_no for x in e.excluded}


def _event_ref(envelope: dict[str, Any]) -> dict[str, Any]:
    return {k: envelope[k] for k in ("position", "type", "subject", "recorded_at")}
