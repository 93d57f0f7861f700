"""Policy files (``schemas/policy/*.toml``) into :class:`Policy` values, checked on load."""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, cast

from services.common.money import parse_yuan
from services.common.policy.model import CATEGORIES, CategoryRule, Policy
from services.common.schemas import schema_dir

DEFAULT_POLICY = "pingdingshan-2020.toml"


def policy_dir() -> Traversable:
    """The bundled policy files: ``schemas/policy/``."""
    return schema_dir() / "policy"


def load_policy(path: Path | None = None) -> Policy:
    """Read a policy file (default: the bundled Pingdingshan 2020 plan); a bad file names the
    key. An entry point takes the policy in force from its settings (``TCR_POLICY_FILE``):
    ``PolicySettings.policy()``."""
    source = path or policy_dir() / DEFAULT_POLICY
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    return policy_from_mapping(data, source=str(source))


def policy_from_mapping(data: dict[str, Any], source: str = "policy") -> Policy:
    def need(key: str) -> Any:
        if key not in data:
            raise ValueError(f"{source}: missing {key}")
        return data[key]

    ceiling = need("evidence_ceiling")
    if ceiling not in ("contract_amount", "technology_amount"):
        raise ValueError(f"{source}: evidence_ceiling must be contract_amount or technology_amount")
    categories = need("categories")
    rules = {}
    for name in CATEGORIES:
        if name not in categories:
            raise ValueError(f"{source}: missing [categories.{name}]")
        raw = categories[name]
        key = f"{source}: categories.{name}"
        try:
            rate = Fraction(Decimal(str(raw["rate"])))
        except (KeyError, InvalidOperation, ValueError, OverflowError) as exc:
            raise ValueError(f'{key}.rate must be a decimal string such as "0.10"') from exc
        if not 0 <= rate <= 1:
            raise ValueError(f"{key}.rate must be between 0 and 1")
        try:
            cap_fen = parse_yuan(str(raw["cap"]))
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f'{key}.cap must be a positive yuan amount such as "500000.00"'
            ) from exc
        rules[name] = CategoryRule(rate=rate, cap_fen=cap_fen)
    first, last = int(need("first_year")), int(need("last_year"))
    if first > last:
        raise ValueError(f"{source}: first_year is after last_year")
    return Policy(
        version=str(need("version")),
        city_prefix=str(need("city_prefix")),
        first_year=first,
        last_year=last,
        registration_window_years=int(need("registration_window_years")),
        eligible_contract_types=frozenset(need("eligible_contract_types")),
        evidence_ceiling=cast(Any, ceiling),
        categories=rules,
    )
