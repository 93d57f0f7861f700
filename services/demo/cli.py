"""``tcr demo …``: generate a realistic history, load it into a registry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from services.common.cli_tokens import add_token_options, required_token
from services.demo.generate import (
    DEFAULT_PER_YEAR,
    DEFAULT_SEED,
    DEFAULT_YEARS,
    parse_years,
    yearly_target,
)


def add_demo_commands(services: Any) -> None:
    """Register ``tcr demo`` and its actions on the top-level subparsers."""
    demo = services.add_parser("demo", help="a realistic demo history: generate it, load it")
    actions = demo.add_subparsers(dest="action", required=True, metavar="ACTION")

    default_years = f"{DEFAULT_YEARS.start}-{DEFAULT_YEARS.stop - 1}"
    generate = actions.add_parser(
        "generate",
        help="write a deterministic history of contracts and evidence as batch commands",
        description=(
            "Write one POST /v1/batch command per line, in the order recorded: parties across "
            "the city's counties and other provinces, brokers, contracts of every type, "
            "invoices and payments across year ends, voids, withdrawals, amendments, "
            "cancellations, related parties, provincial funding. The same arguments always "
            "write the same bytes."
        ),
    )
    generate.add_argument(
        "--years",
        type=_years,
        default=DEFAULT_YEARS,
        help=f"registration years, e.g. 2020-2025 (default {default_years})",
    )
    generate.add_argument(
        "--contracts-per-year",
        type=int,
        default=DEFAULT_PER_YEAR,
        help=f"contracts registered each year (default {DEFAULT_PER_YEAR}: the city's turnover)",
    )
    generate.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    generate.add_argument("--out", type=Path, required=True, help="JSON lines file to write")
    generate.set_defaults(func=_generate)

    load = actions.add_parser(
        "load",
        help="post a history file through /v1/batch; a re-run skips what is stored",
        description=(
            "Post the file's commands in batches, each with an Idempotency-Key derived from "
            "the file's hash and the batch's index: running it again replays the batches "
            "stored before and posts the rest. Needs the science bureau's token, and finance's "
            "for the payouts it records."
        ),
    )
    load.add_argument("file", type=Path, help="history written by tcr demo generate")
    load.add_argument("--registry", required=True, help="registry URL, e.g. http://127.0.0.1:8000")
    add_token_options(load, "the science bureau's token")
    load.add_argument(
        "--finance-token-file",
        type=Path,
        metavar="PATH",
        help="read finance's token, which records the history's payouts, from this file's "
        "first line",
    )
    load.add_argument(
        "--batch-size", type=int, default=500, help="commands per request (default 500, max 1000)"
    )
    load.add_argument("--no-progress", action="store_true", help="no progress bar")
    load.add_argument(
        "--live",
        dest="backlog",
        action="store_false",
        help="record the entries as happening now; by default they are marked as a backlog "
        '(intake: "backlog"), a history loaded after the fact, which the audit counts apart '
        "from late recording",
    )
    load.set_defaults(func=_load)


def _years(text: str) -> range:
    try:
        return parse_years(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _yi(fen: int) -> str:
    return f"{fen / 100 / 1e8:.2f}亿"


def _generate(args: argparse.Namespace) -> int:
    from services.demo.generate import write_history

    if args.contracts_per_year < 1:
        print("tcr demo generate: --contracts-per-year must be at least 1", file=sys.stderr)
        return 2
    summary = write_history(args.out, args.years, args.contracts_per_year, args.seed)
    print(f"wrote {summary.commands:,} commands to {args.out}")
    print("  " + ", ".join(f"{op} {n:,}" for op, n in sorted(summary.ops.items())))
    for year in args.years:
        print(
            f"  {year}: {summary.contracts.get(year, 0):,} contracts, turnover "
            f"{_yi(summary.turnover.get(year, 0))} (aimed at "
            f"{_yi(yearly_target(year, args.contracts_per_year))}), "
            f"{summary.brokers_filed.get(year, 0)} brokers filed"
        )
    return 0


def _load(args: argparse.Namespace) -> int:
    from services.demo.load import LoadError, load_history

    try:
        summary = load_history(
            args.file,
            args.registry,
            required_token(args, "tcr demo load"),
            args.batch_size,
            progress=not args.no_progress,
            finance_token=_first_line(args.finance_token_file),
            backlog=args.backlog,
        )
    except (LoadError, OSError) as exc:
        print(f"tcr demo load: {exc}", file=sys.stderr)
        return 1
    print(f"loaded {args.file}: {summary.describe()}")
    return 0


def _first_line(path: Path | None) -> str | None:
    if path is None:
        return None
    with path.open(encoding="utf-8") as lines:
        return lines.readline().strip() or None
