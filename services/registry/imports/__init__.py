"""Spreadsheet import (issue 13): a station's XLSX or CSV of contracts, invoices and transfer
proofs, checked row by row against every rule the API applies, and stored all at once or not
at all. No HTTP here but in :mod:`services.registry.imports.routes`."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING

from services.common.errors import DomainError, Forbidden, Invalid
from services.common.tokens import Principal
from services.registry.imports.checking import (
    Checked,
    broker_warnings,
    check_state,
    problem_order,
    read_rows,
)
from services.registry.imports.reading import each_sheet
from services.registry.imports.report import ImportProblem, ImportReport
from services.registry.imports.workbooks import errors_workbook, template_xlsx

if TYPE_CHECKING:
    from services.registry.application import Registry

__all__ = [
    "INTAKES",
    "ImportProblem",
    "ImportReport",
    "errors_workbook",
    "run_import",
    "template_xlsx",
]

INTAKES = ("live", "backlog")  # backlog: a history loaded after the fact
_WRITERS = frozenset({"station", "bureau"})


def run_import(
    registry: Registry,
    who: Principal,
    data: bytes,
    *,
    filename: str,
    sheet: str | None = None,
    dry_run: bool = True,
    intake: str = "live",
) -> ImportReport:
    """Check every row of an uploaded file and, unless ``dry_run``, store the whole file in one
    transaction (each event marked with the file's SHA-256, and ``intake``) — or nothing, when
    any row has a problem. Blocking: callers in an event loop use a thread."""
    if who.role not in _WRITERS:
        raise Forbidden(None, f"role {who.role} may not import", "只有登记机构和科技局可以导入")
    if intake not in INTAKES:
        raise Invalid("intake", "must be live or backlog", "应为 live 或 backlog")
    digest = hashlib.sha256(data).hexdigest()
    checked = read_rows(each_sheet(data, filename, sheet), who)
    broker_warnings(registry, checked)
    if dry_run or checked.errors:
        check_state(registry, who, checked)
        return _report(digest, checked)
    commands = checked.commands
    if not commands:
        raise Invalid("file", "the file holds no data rows", "文件中没有数据行")
    counted = _report(digest, checked)
    del checked  # the writer's transaction holds every event: leave it the rows' memory
    marks = {"import_sha256": digest}
    if intake == "backlog":
        marks["intake"] = "backlog"
    try:
        # The writer runs the same handlers: a file that breaks no rule is stored without a
        # separate pass over the registry's state.
        receipt = registry.submit(who, commands, batch=True, marks=marks).result()
    except DomainError:
        # A row breaks a state rule (or the registry changed since a dry run): judge every row.
        del commands
        checked = read_rows(each_sheet(data, filename, sheet), who)
        broker_warnings(registry, checked)
        check_state(registry, who, checked)
        report = _report(digest, checked)
        if report.errors:
            return report
        raise
    first, last = receipt["positions"]
    return replace(
        counted, stored=True, events=receipt["count"], first_position=first, last_position=last
    )


def _report(digest: str, checked: Checked) -> ImportReport:
    errors = problem_order(checked.errors)
    return ImportReport(
        file_sha256=digest,
        rows=len(checked.rows),
        valid=sum(1 for r in checked.rows if not r.problems),
        errors=errors,
        warnings=problem_order(checked.warnings),
    )
