"""Policy files (``schemas/policy/*.toml``, one per version) into :class:`Policy` values and
their :class:`PolicySchedule`, checked on load."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, cast

from services.common.money import parse_yuan
from services.common.policy.model import CATEGORIES, CategoryRule, Policy
from services.common.policy.schedule import PolicySchedule
from services.common.schemas import schema_dir

DEFAULT_POLICY = "pingdingshan-2020.toml"


def policy_dir() -> Traversable:
    """The bundled policy files: ``schemas/policy/``."""
    return schema_dir() / "policy"


def load_policy(path: Path | None = None) -> Policy:
    """Read one policy file (default: the bundled Pingdingshan 2020 plan); a bad file names the
    key. An entry point takes the schedule in force from its settings (``TCR_POLICY_DIR``):
    ``PolicySettings.schedule()``."""
    source = path or policy_dir() / DEFAULT_POLICY
    return policy_from_text(source.read_text(encoding="utf-8"), source=str(source))


def load_schedule(directory: Path | Traversable | None = None) -> PolicySchedule:
    """Every policy file of a folder (default: the bundled ``schemas/policy/``) as one schedule;
    overlapping years, years no file holds, or two files of one version are refused."""
    return schedule_from_texts(policy_texts(directory or policy_dir()))


def policy_texts(directory: Path | Traversable) -> dict[str, str]:
    """The text of every ``*.toml`` of a folder, by file name: what an audit bundle carries."""
    if not directory.is_dir():
        raise ValueError(f"{directory}: not a folder of policy files")
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in directory.iterdir()
        if p.name.endswith(".toml") and p.is_file()
    }


def schedule_from_texts(texts: Mapping[str, str]) -> PolicySchedule:
    """The schedule of policy files' texts keyed by file name."""
    return PolicySchedule.of(
        {name: policy_from_text(text, source=name) for name, text in texts.items()}
    )


def policy_from_text(text: str, source: str = "policy") -> Policy:
    """A policy file's text (TOML) as a policy; a bad one names the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not TOML ({exc})") from None
    return policy_from_mapping(data, source=source)


class PolicyError(ValueError):
    """A policy file that breaks a rule, naming the setting (``categories.broker.rate``)."""

    def __init__(self, source: str, setting: str, rule: str) -> None:
        super().__init__(f"{source}: {setting} {rule}")
        self.setting = setting
        self.rule = rule


def policy_from_mapping(data: dict[str, Any], source: str = "policy") -> Policy:
    def need(key: str) -> Any:
        if key not in data:
            raise PolicyError(source, key, "is missing")
        return data[key]

    version = need("version")
    if not isinstance(version, str) or not version.strip():
        raise PolicyError(source, "version", 'must be a name such as "pingdingshan-2020.1"')
    prefix = need("city_prefix")
    if not isinstance(prefix, str) or not prefix.isdigit() or not 2 <= len(prefix) <= 6:
        raise PolicyError(source, "city_prefix", 'must be a region code prefix such as "4104"')
    window = need("registration_window_years")
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise PolicyError(source, "registration_window_years", "must be a whole number above 0")
    types = need("eligible_contract_types")
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise PolicyError(
            source, "eligible_contract_types", 'must be a list such as ["development"]'
        )
    ceiling = need("evidence_ceiling")
    if ceiling not in ("contract_amount", "technology_amount"):
        raise PolicyError(
            source, "evidence_ceiling", "must be contract_amount or technology_amount"
        )
    categories = need("categories")
    rules = {}
    for name in CATEGORIES:
        if not isinstance(categories, dict) or name not in categories:
            raise PolicyError(source, f"categories.{name}", f"is missing ([categories.{name}])")
        raw = categories[name]
        key = f"categories.{name}"
        try:
            rate = Fraction(Decimal(str(raw["rate"])))
        except (KeyError, TypeError, InvalidOperation, ValueError, OverflowError) as exc:
            raise PolicyError(
                source, f"{key}.rate", 'must be a decimal string such as "0.10"'
            ) from exc
        if not 0 <= rate <= 1:
            raise PolicyError(source, f"{key}.rate", "must be between 0 and 1")
        try:
            cap_fen = parse_yuan(str(raw["cap"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyError(
                source, f"{key}.cap", 'must be a positive yuan amount such as "500000.00"'
            ) from exc
        rules[name] = CategoryRule(rate=rate, cap_fen=cap_fen)
    first, last = _years(data, source)
    return Policy(
        version=version,
        city_prefix=prefix,
        first_year=first,
        last_year=last,
        registration_window_years=window,
        eligible_contract_types=frozenset(types),
        evidence_ceiling=cast(Any, ceiling),
        categories=rules,
    )


def _years(data: dict[str, Any], source: str) -> tuple[int, int]:
    """``applies_to = [first, last]``: the turnover years the version is in force for (a file
    from before schedules says ``first_year`` and ``last_year``)."""
    if "applies_to" not in data and "first_year" in data and "last_year" in data:
        span: Any = [data["first_year"], data["last_year"]]
    elif "applies_to" not in data:
        raise PolicyError(source, "applies_to", "is missing")
    else:
        span = data["applies_to"]
    if (
        not isinstance(span, list)
        or len(span) != 2
        or not all(isinstance(y, int) and not isinstance(y, bool) for y in span)
    ):
        raise PolicyError(
            source,
            "applies_to",
            "must be [first_turnover_year, last_turnover_year], such as [2020, 2025]",
        )
    if span[0] > span[1]:
        raise PolicyError(source, "applies_to", "must not start after it ends")
    return span[0], span[1]
