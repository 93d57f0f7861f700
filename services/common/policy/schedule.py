"""The policy over time (shared/domain.md § Policy over time): each turnover year computed under
the version in force for it, as OpenFisca takes a parameter's value by period. Pure values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

from services.common.policy.model import Policy


@dataclass(frozen=True)
class PolicySchedule:
    """Policy versions whose turnover years (``applies_to``) follow one another without a gap
    or an overlap; built with :meth:`of`, which refuses anything else."""

    versions: tuple[Policy, ...]  # in year order

    @classmethod
    def of(cls, named: Mapping[str, Policy]) -> PolicySchedule:
        """The schedule of policies keyed by where each came from (a file name), which every
        refusal names: two files of one version, years claimed twice, or years in between
        that no file claims."""
        if not named:
            raise ValueError("no policy file: the schedule needs at least one")
        by_version: dict[str, str] = {}
        for source, policy in sorted(named.items()):
            if policy.version in by_version:
                raise ValueError(
                    f"{by_version[policy.version]} and {source} are both version {policy.version}"
                )
            by_version[policy.version] = source
        ordered = sorted(named.items(), key=lambda item: (item[1].first_year, item[0]))
        for (before, a), (after, b) in pairwise(ordered):
            if b.first_year <= a.last_year:
                raise ValueError(
                    f"{before} ({a.first_year}–{a.last_year}) and {after} "
                    f"({b.first_year}–{b.last_year}) both apply to "
                    f"{_span(b.first_year, min(a.last_year, b.last_year))}"
                )
            if b.first_year > a.last_year + 1:
                raise ValueError(
                    f"no policy file applies to {_span(a.last_year + 1, b.first_year - 1)}, "
                    "between "
                    f"{before} ({a.first_year}–{a.last_year}) and {after} "
                    f"({b.first_year}–{b.last_year})"
                )
        return cls(tuple(policy for _, policy in ordered))

    @classmethod
    def single(cls, policy: Policy) -> PolicySchedule:
        """One policy for all its years (a single ``TCR_POLICY_FILE``, or the tests')."""
        return cls((policy,))

    @property
    def first_year(self) -> int:
        return self.versions[0].first_year

    @property
    def last_year(self) -> int:
        return self.versions[-1].last_year

    @property
    def years(self) -> range:
        return range(self.first_year, self.last_year + 1)

    def in_force(self, year: int) -> bool:
        return self.first_year <= year <= self.last_year

    def for_year(self, year: int) -> Policy:
        """The version in force for turnover year ``year``; outside every version, ValueError."""
        for policy in self.versions:
            if policy.in_force(year):
                return policy
        raise ValueError(f"{year} is outside the years in force of policy {self.describe()}")

    def at(self, year: int) -> Policy:
        """The version of ``year``, or of the nearest year in force (the first before them, the
        last after): for what is judged on a day rather than computed for a year."""
        return self.for_year(min(max(year, self.first_year), self.last_year))

    def version_of(self, year: int) -> str:
        return self.for_year(year).version

    def versions_by_year(self) -> dict[str, str]:
        """Each year in force and its version, as JSON names them (``{"2020": "…"}``)."""
        return {str(year): self.version_of(year) for year in self.years}

    @property
    def version(self) -> str:
        """Every version, in year order, joined (a single policy's own version)."""
        return ", ".join(p.version for p in self.versions)

    def fingerprint(self) -> str:
        """A digest of every setting of every version: a store computed under another schedule
        has other answers, and is rebuilt."""
        settings = [
            [
                p.version,
                p.first_year,
                p.last_year,
                p.city_prefix,
                p.registration_window_years,
                sorted(p.eligible_contract_types),
                p.evidence_ceiling,
                {c: [str(r.rate), r.cap_fen] for c, r in sorted(p.categories.items())},
            ]
            for p in self.versions
        ]
        return hashlib.sha256(json.dumps(settings).encode()).hexdigest()

    def describe(self) -> str:
        """The versions with their years, as refusals name them: ``v1 (2020–2023), v2 (…)``."""
        return ", ".join(f"{p.version} ({p.first_year}–{p.last_year})" for p in self.versions)


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"
