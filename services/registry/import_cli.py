"""``tcr registry import``: upload a spreadsheet to a registry, and say what it found."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from services.common.cli_tokens import add_token_options, required_token

_MAX_LISTED = 200  # problems printed; the rest are counted (the workbook marks them all)
XLSX_NAMES = (".xlsx", ".xlsm")


def add_import_command(actions: Any) -> None:
    """``tcr registry import`` on the registry's subparsers."""
    parser = actions.add_parser(
        "import",
        help="import a spreadsheet of contracts, invoices and transfer proofs (dry run first)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Upload an XLSX workbook (sheets 合同, 发票, 转账凭证, columns as in the template\n"
            "from GET /v1/imports/template.xlsx) or a CSV of one sheet to the registry.\n"
            "Every row is checked against every rule the API applies; all problems are listed\n"
            "with sheet, row, column and rule. Without --dry-run the whole file is stored in\n"
            "one transaction, or nothing when any row has a problem.\n\n"
            "Exit status: 0 valid (dry run) or stored; 1 problems found or refused; 2 usage."
        ),
        epilog=(
            "examples:\n"
            "  export TCR_TOKEN=…   # a station's or the bureau's token\n"
            "  tcr registry import 2024登记.xlsx --dry-run --registry http://127.0.0.1:8000\n"
            "  tcr registry import 2024登记.xlsx --registry http://127.0.0.1:8000\n"
            "  tcr registry import invoices.csv --sheet 发票 --registry http://127.0.0.1:8000\n"
            "  tcr registry import 2019-2023.xlsx --backlog --registry http://127.0.0.1:8000"
        ),
    )
    parser.add_argument("file", type=Path, help="the .xlsx workbook or .csv file")
    parser.add_argument("--dry-run", action="store_true", help="check every row and store nothing")
    parser.add_argument(
        "--sheet",
        help="the sheet a CSV holds (合同, 发票 or 转账凭证; guessed from its columns when "
        "not given), or the one sheet of a workbook to read",
    )
    parser.add_argument(
        "--backlog",
        action="store_true",
        help='a history loaded after the fact: each entry is marked intake "backlog", which '
        "the audit counts apart from late recording",
    )
    parser.add_argument(
        "--errors-xlsx",
        type=Path,
        metavar="PATH",
        help="with --dry-run: also save the workbook with every bad cell marked and commented",
    )
    parser.add_argument(
        "--registry", required=True, help="registry URL, e.g. http://127.0.0.1:8000"
    )
    add_token_options(parser, "a station's or the science bureau's token")
    parser.set_defaults(func=run_import_command)


def run_import_command(args: argparse.Namespace) -> int:
    import httpx

    token = required_token(args, "tcr registry import")
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"tcr registry import: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    params: dict[str, str] = {"dry_run": "true" if args.dry_run else "false"}
    if args.sheet:
        params["sheet"] = args.sheet
    if args.backlog:
        params["intake"] = "backlog"
    what = "checking" if args.dry_run else "checking and storing"
    print(f"{what} {args.file.name} ({len(data) / 1024:,.0f} KiB) at {args.registry} …",
          file=sys.stderr, flush=True)  # fmt: skip
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    files = {"file": (args.file.name, data)}
    try:
        with httpx.Client(base_url=args.registry.rstrip("/"), timeout=600.0) as client:
            response = client.post("/v1/imports", params=params, files=files, headers=headers)
            found = response.status_code == 200 and bool(_json(response).get("errors"))
            if args.dry_run and args.errors_xlsx and found:
                marked = client.post(
                    "/v1/imports", params={**params, "errors": "xlsx"}, files=files,
                    headers=headers,
                )  # fmt: skip
                args.errors_xlsx.write_bytes(marked.raise_for_status().content)
    except httpx.HTTPError as exc:
        print(f"tcr registry import: the registry did not answer: {exc}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    body = _json(response)
    if response.status_code not in (200, 201, 422) or "rows" not in body:
        print(
            f"tcr registry import: refused ({response.status_code} {body.get('error', '')}): "
            f"{body.get('message', response.text[:300])}"
            + (f"\n  {body['message_zh']}" if body.get("message_zh") else ""),
            file=sys.stderr,
        )
        return 1
    print(summary(args.file.name, body, args.dry_run, seconds))
    if args.errors_xlsx and body["errors"] and args.dry_run:
        print(f"the workbook with the bad cells marked: {args.errors_xlsx}")
    return 0 if not body["errors"] else 1


def summary(name: str, report: dict[str, Any], dry_run: bool, seconds: float) -> str:
    """What a report says, for a person: a line of counts, then each problem."""
    rows, valid, errors = report["rows"], report["valid"], report["errors"]
    digest = report["file_sha256"][:12]
    if report.get("stored"):
        return (
            f"stored {name}: {rows:,} rows as {report['events']:,} events at log positions "
            f"{report['first_position']:,}–{report['last_position']:,} (file sha256 {digest}…, "
            f"{seconds:.1f} s) / 已导入 {rows:,} 行"
        )
    lines = []
    if not errors:
        lines.append(
            f"dry run of {name}: {rows:,} rows, all valid; nothing stored — run again without "
            f"--dry-run to store them ({seconds:.1f} s) / 试导入：{rows:,} 行全部无误，未导入"
        )
    else:
        stored = "dry run, nothing stored" if dry_run else "nothing stored"
        lines.append(
            f"{name}: {len(errors):,} problems in {rows - valid:,} of {rows:,} rows ({stored}) / "
            f"{rows:,} 行中 {rows - valid:,} 行有 {len(errors):,} 个问题，未导入"
        )
        lines.append(f"  {'sheet':<5} {'row':>6}  {'column':<14} {'rule':<24} problem")
        for p in errors[:_MAX_LISTED]:
            lines.append(
                f"  {p['sheet']:<5} {p['row']:>6}  {p['column'] or '(row)':<14} {p['rule']:<24} "
                f"{p['message_zh']} — {p['message']}"
            )
        if len(errors) > _MAX_LISTED:
            lines.append(f"  … and {len(errors) - _MAX_LISTED:,} more (see --errors-xlsx)")
    for w in report.get("warnings", []):
        lines.append(f"  warning: {w['sheet']} row {w['row']}: {w['message_zh']} — {w['message']}")
    return "\n".join(lines)


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
