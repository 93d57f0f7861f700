"""``tcr subsidy simulate``: a draft policy tried on one turnover year, printed as a table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from services.common.cli_tokens import add_token_options, required_token


def add_simulate_command(actions: Any) -> None:
    """Register ``tcr subsidy simulate`` on the subsidy subparsers."""
    simulate = actions.add_parser(
        "simulate",
        help="recompute a turnover year under a draft policy, beside the policy in force",
        description=(
            "Recompute --year under the draft policy file --policy from the real history at "
            "the subsidy store's applied position, beside the version in force: totals by "
            "category, beneficiaries gained and lost, the 20 largest changes. Asks the finance "
            "API with --finance URL (a finance or bureau token), or reads the subsidy store at "
            "--database-url (default $TCR_SUBSIDY_DATABASE_URL) under $TCR_POLICY_DIR. Nothing "
            "is stored. Exits 1 naming the setting when the draft breaks a rule."
        ),
    )
    simulate.add_argument("--policy", type=Path, required=True, help="the draft policy file")
    simulate.add_argument("--year", type=int, required=True, help="the turnover year")
    where = simulate.add_mutually_exclusive_group()
    where.add_argument("--finance", help="finance API URL, e.g. http://127.0.0.1:8001")
    where.add_argument("--database-url", help="the subsidy store to read instead")
    add_token_options(simulate, "a finance or bureau token for --finance")
    simulate.add_argument("--json", action="store_true", help="print the answer as JSON")
    simulate.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    import json

    draft = args.policy.read_text("utf-8")
    try:
        answer = _remote(args, draft) if args.finance else _local(args, draft)
    except _Refused as exc:
        print(f"tcr subsidy simulate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
    else:
        print(table(answer))
    return 0


class _Refused(Exception):
    """The draft or the year broke a rule: the message names the field."""


def _remote(args: argparse.Namespace, draft: str) -> dict[str, Any]:
    import httpx

    token = required_token(args, "tcr subsidy simulate --finance")
    response = httpx.post(
        args.finance.rstrip("/") + "/v1/simulations",
        json={"year": args.year, "policy": draft},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120.0,
    )
    if response.status_code in (400, 403, 404, 422):
        body = response.json()
        raise _Refused(f"{body.get('field')}: {body.get('message')}")
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def _local(args: argparse.Namespace, draft: str) -> dict[str, Any]:
    from services.common.db import make_engine
    from services.common.errors import DomainError
    from services.subsidy.settings import SubsidySettings
    from services.subsidy.simulations import Simulations

    settings = SubsidySettings()
    url = args.database_url or settings.subsidy_database_url.get_secret_value()
    engine = make_engine(url)
    try:
        return Simulations(engine, settings.schedule()).simulate(args.year, draft)
    except DomainError as exc:
        raise _Refused(f"{exc.field}: {exc.message}") from None
    finally:
        engine.dispose()


def table(answer: dict[str, Any]) -> str:
    """The simulation as people read it: totals by category, then the largest changes."""
    lines = [
        f"模拟 simulation of {answer['year']} at log position {answer['position']}: "
        f"in force {answer['policy_version'] or '(none)'}, draft {answer['draft_version']}",
        "",
        f"{'类别 category':<16}{'受益方 in force':>16}{'草案 draft':>12}"
        f"{'现行 in force (元)':>20}{'草案 draft (元)':>18}{'变化 change (元)':>18}",
    ]
    for category, total in answer["totals"].items():
        now, then = total["current"], total["draft"]
        lines.append(
            f"{category:<16}{now['beneficiaries']:>16}{then['beneficiaries']:>12}"
            f"{now['entitlement']:>20}{then['entitlement']:>18}{total['change']:>18}"
        )
    lines += [
        "",
        f"新增受益方 gained {answer['beneficiaries_gained']}, 失去 lost "
        f"{answer['beneficiaries_lost']}, 变化 changed {answer['beneficiaries_changed']}",
    ]
    if answer["largest_changes"]:
        lines += [
            "",
            f"{'受益方 beneficiary':<22}{'类别 category':<14}{'现行 (元)':>14}"
            f"{'草案 (元)':>14}{'变化 (元)':>14}  名称 name",
        ]
        lines += [
            f"{c['beneficiary']:<22}{c['category']:<14}{c['current']:>14}{c['draft']:>14}"
            f"{c['change']:>14}  {c['name']}"
            for c in answer["largest_changes"]
        ]
    return "\n".join(lines)
