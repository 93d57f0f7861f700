"""Every refusal speaks Chinese beside English: each domain error raised anywhere in the
services, each kind in the refusal table, each rule the shared checks word, and each schema
error the registry's bodies can give."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import services
from services.common.codes import credit_code_problem, region_code_problem
from services.common.errors import DomainError
from services.common.money import AmountError, parse_yuan
from services.common.text import text_problem
from services.common.web.refusals import REFUSALS, refusal
from services.common.wording import check_in_chinese, schema_error_in_chinese
from services.registry.api import models as m
from services.registry.api.batch import BatchCreate

SERVICES = Path(services.__file__).parent
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _domain_errors() -> dict[str, type[DomainError]]:
    """Every DomainError class the services define, by name (each module imported)."""
    for module in pkgutil.walk_packages([str(SERVICES)], "services."):
        if not module.name.endswith(("__main__", ".cli")):
            importlib.import_module(module.name)
    found: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending += cls.__subclasses__()
    return found


def _raised_without_chinese() -> list[str]:
    """Calls constructing a DomainError (by its base constructor) with no Chinese message."""
    worded_by_base = {
        name for name, cls in _domain_errors().items() if cls.__init__ is DomainError.__init__
    }
    missing = []
    for path in sorted(SERVICES.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        others = _imported_non_errors(tree)  # a name shared with another class (runtime's)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in worded_by_base or name in others:
                continue
            zh = node.args[2] if len(node.args) >= 3 else None
            zh = zh or next((k.value for k in node.keywords if k.arg == "message_zh"), None)
            if zh is None or (_literal(zh) is not None and not CHINESE.search(_literal(zh) or "")):
                missing.append(f"{path.relative_to(SERVICES.parent)}:{node.lineno} {name}")
    return missing


def _imported_non_errors(tree: ast.Module) -> set[str]:
    """The names a module imports that are not domain errors."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if not (isinstance(value, type) and issubclass(value, DomainError)):
                    names.add(alias.asname or alias.name)
    return names


def _literal(node: ast.expr) -> str | None:
    """The text of a string or f-string literal (its constant parts), or None for any other."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return None


def test_every_domain_error_the_services_raise_words_its_rule_in_chinese() -> None:
    assert _raised_without_chinese() == []


def test_the_walk_over_the_services_finds_the_errors_it_checks() -> None:
    assert {"InvalidCommand", "NotFound", "Conflict", "Forbidden", "Unavailable"} <= set(
        _domain_errors()
    )


@pytest.mark.parametrize("kind", list(REFUSALS), ids=lambda k: k.__name__)
def test_every_kind_of_refusal_answers_with_message_zh(kind: type[DomainError]) -> None:
    status, body = refusal(kind("field", "the rule", "规则"))

    assert body["message_zh"] == "规则"
    assert status >= 400


BAD_CHECKS = [
    credit_code_problem("12345"),
    credit_code_problem("12410400MB000000I"[:17] + "I"),
    credit_code_problem("12410400MB00000010"),
    region_code_problem("41040"),
    text_problem("a\u202eb"),
    text_problem("a\ud800b"),
    text_problem("a\tb"),
    text_problem("a\x00b", multiline=True),
]


@pytest.mark.parametrize("message", BAD_CHECKS)
def test_every_rule_of_the_shared_checks_has_its_chinese(message: str | None) -> None:
    assert message is not None
    assert CHINESE.search(check_in_chinese(message) or ""), message


@pytest.mark.parametrize("text", ["12.345", "abc", "0", "0.00"])
def test_every_refusal_of_an_amount_has_its_chinese(text: str) -> None:
    with pytest.raises(AmountError) as refused:
        parse_yuan(text)

    assert CHINESE.search(check_in_chinese(str(refused.value)) or "")


# Bodies that break every kind of schema rule the registry's models state.
BAD_BODIES: list[tuple[type[Any], dict[str, Any]]] = [
    (m.ContractCreate, {}),  # every field missing
    (
        m.ContractCreate,
        {
            "registration_no": "a/b",
            "station_id": "-x",
            "registered_on": "2024-3-1",
            "signed_on": "2999-01-01",
            "title": "x" * 501,
            "contract_type": "sale",
            "domain": "",
            "seller": "nobody",
            "buyer": {"credit_code": 1, "name": "b", "kind": "x", "region_code": "1", "x": 1},
            "brokers": "B-1",
            "contract_amount": 12,
            "technology_amount": "1.234",
            "related_party": "no",
            "unknown": True,
        },
    ),
    (m.PayoutCreate, {"payout_no": "P", "year": 1999, "paid_on": "2024-02-30",
                      "basis_position": -1, "lines": []}),
    (m.PayoutCreate, {"payout_no": "P", "year": 2024.5, "paid_on": "2024-01-01",
                      "basis_position": "x", "lines": [{}] * 5001}),
    (BatchCreate, {"commands": []}),
    (BatchCreate, {"commands": [{"op": "no_such_op", "body": {}}]}),
]  # fmt: skip


@pytest.mark.parametrize(("model", "body"), BAD_BODIES)
def test_every_schema_error_of_the_registrys_bodies_is_worded_in_chinese(
    model: type[Any], body: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)

    for error in refused.value.errors():
        chinese = schema_error_in_chinese(error)
        assert CHINESE.search(chinese), error
        assert not chinese.startswith("不符合要求"), (error["type"], error["msg"])
