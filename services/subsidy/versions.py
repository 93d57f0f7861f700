"""Versioned values by key: what a run of log entries changes, as rows to write.

Each change at log position p ends the key's current version at p and starts a new one at p.
A version begun and ended within the same run is written whole; a version already stored is
only given its end. Several changes to one key at one position keep only the last.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

K = TypeVar("K")
V = TypeVar("V")
G = TypeVar("G")


@dataclass(eq=False, slots=True)
class Version(Generic[K, V]):
    key: K
    valid_from: int
    value: V
    valid_to: int | None = None
    dropped: bool = False  # replaced at the very position it began: never held


@dataclass(slots=True)
class _Current(Generic[K, V]):
    value: V | None
    valid_from: int
    new: Version[K, V] | None  # the version written in this run, None when stored already


@dataclass
class Versions(Generic[K, V, G]):
    """The current value of every key one run has read or changed.

    Keys are read a group at a time (a contract's claims, a beneficiary's entitlements, a
    county's totals): once a group is read, a key of it that was not found has no value, with
    nothing to ask again.
    """

    group_of: Callable[[K], G]
    load: Callable[[set[G]], dict[K, tuple[V, int]]]  # stored current values, valid_from
    _known: dict[K, _Current[K, V]] = field(default_factory=dict)
    _groups: set[G] = field(default_factory=set)
    new: list[Version[K, V]] = field(default_factory=list)  # see `written`
    ended: list[tuple[K, int, int]] = field(default_factory=list)  # stored: key, from, to
    _by_group: dict[G, list[K]] | None = None  # once the run is done: see `held`

    def prefetch(self, groups: Iterable[G]) -> None:
        """Read the stored current values of the groups not read yet, in one go."""
        wanted = set(groups) - self._groups
        if wanted:
            self.loaded(wanted, self.load(wanted))

    def loaded(self, groups: Iterable[G], rows: dict[K, tuple[V, int]]) -> None:
        """The stored current values of these groups, read by the caller."""
        for key, (value, valid_from) in rows.items():
            self._known.setdefault(key, _Current(value, valid_from, None))
        self._groups.update(groups)

    def _current(self, key: K) -> _Current[K, V]:
        current = self._known.get(key)
        if current is None:
            group = self.group_of(key)
            if group not in self._groups:
                self.prefetch([group])
                current = self._known.get(key)
            if current is None:
                current = self._known[key] = _Current(None, 0, None)
        return current

    def get(self, key: K) -> V | None:
        return self._current(key).value

    def set(self, key: K, value: V | None, position: int) -> None:
        """The key's value from ``position`` on (None: it has none)."""
        current = self._current(key)
        if current.value == value:
            return
        if current.value is not None and current.valid_from == position and current.new:
            current.new.dropped = True
        elif current.value is not None:
            if current.new is not None:
                current.new.valid_to = position
            else:
                self.ended.append((key, current.valid_from, position))
        version = None
        if value is not None:
            version = Version(key, position, value)
            self.new.append(version)
        self._known[key] = _Current(value, position, version)

    def has_read(self, group: G) -> bool:
        return group in self._groups

    def held(self, groups: Iterable[G]) -> tuple[dict[K, tuple[V, int]], builtins.set[G]]:
        """Once the run is done: of ``groups``, those it read, and their keys' values with the
        position each holds from (what the store holds once the run is written)."""
        if self._by_group is None:
            self._by_group = {}
            for key, current in self._known.items():
                if current.value is not None:
                    self._by_group.setdefault(self.group_of(key), []).append(key)
        read = {g for g in groups if g in self._groups}
        found: dict[K, tuple[V, int]] = {}
        for group in read:
            for key in self._by_group.get(group, ()):
                current = self._known[key]
                found[key] = (cast(V, current.value), current.valid_from)
        return found, read

    def written(self) -> list[Version[K, V]]:
        """The versions this run begins, in the order they began."""
        return [v for v in self.new if not v.dropped]
