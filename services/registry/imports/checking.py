"""Every row against every rule: cells read into the API's request models (the field rules,
kept in one place), then the commands run through the registry's own handlers against its
real state in a transaction that is rolled back (the state rules: duplicates, evidence over
the contract amount, parties, unknown contracts), each command alone behind a savepoint so
that one refusal does not hide the next, and run again as if it kept each rule it broke, so that
one refusal does not hide the next rule of the same row either."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from services.common.db import make_read_only_engine
from services.common.errors import DomainError
from services.common.tokens import Principal
from services.registry.api.batch import batch_args
from services.registry.commands import HANDLERS, Command, needs
from services.registry.domain import (
    Contract,
    broker_aggregate_id,
    contract_aggregate_id,
    number_key,
)
from services.registry.imports.cells import CellProblem, cell_value, empty
from services.registry.imports.columns import (
    CONTRACTS,
    NUMBER_FIELD,
    OPS,
    SHEETS,
    Placed,
    column_named,
)
from services.registry.imports.reading import RawSheet
from services.registry.imports.report import ImportProblem
from services.registry.imports.rules import field_rule, state_rule
from services.registry.unit_of_work import AggregateCache, UnitOfWork

if TYPE_CHECKING:
    from services.registry.application import Registry


@dataclass(slots=True)
class Row:
    """One data row: where it is, the command it stands for (None when a field is bad)."""

    sheet: str
    number: int
    headers: dict[str, str]  # API field → the header as written in the file
    registration_no: str | None = None
    claimed: str | None = None  # the number the row claims registry-wide
    command: Command | None = None
    problems: list[ImportProblem] = field(default_factory=list)

    def problem(self, field_name: str, rule: str, message: str, message_zh: str) -> None:
        column = self.headers.get(field_name, "")
        self.problems.append(
            ImportProblem(self.sheet, self.number, column, field_name, rule, message, message_zh)
        )


@dataclass
class Checked:
    """The rows of a file, each with its problems; header problems and warnings apart."""

    rows: list[Row]
    header_problems: list[ImportProblem]
    warnings: list[ImportProblem]

    @property
    def errors(self) -> list[ImportProblem]:
        return self.header_problems + [p for r in self.rows for p in r.problems]

    @property
    def commands(self) -> list[Command]:
        return [r.command for r in self.rows if r.command is not None]


def read_rows(sheets: Iterable[RawSheet], who: Principal) -> Checked:
    """Each row's cells through the API's request model, as the rows are read (their cells are
    not kept); duplicates within the file. Rows in the order 合同, 发票, 转账凭证."""
    checked = Checked([], [], [])
    by_sheet: dict[str, list[Row]] = {name: [] for name in SHEETS}
    for raw in sheets:
        placed, problems, missing = _columns(raw)
        checked.header_problems += problems
        headers = {c.field: c.header for c in SHEETS[raw.name]}
        headers |= {p.column.field: p.header for p in placed}
        # Each column with where its value goes: body[side][name], or body[name].
        reads = [(p, p.column.field.rpartition(".")) for p in placed]
        rows = by_sheet[raw.name]
        for number, cells in raw.rows:
            row = Row(raw.name, number, headers)
            _parse(row, reads, cells, missing, who)
            rows.append(row)
    checked.rows = [row for rows in by_sheet.values() for row in rows]
    _duplicates_in_file(checked.rows)
    return checked


def _columns(raw: RawSheet) -> tuple[list[Placed], list[ImportProblem], set[str]]:
    placed: list[Placed] = []
    problems: list[ImportProblem] = []
    seen: dict[str, str] = {}

    def header_problem(header: str, field_name: str, rule: str, en: str, zh: str) -> None:
        problems.append(ImportProblem(raw.name, raw.header_row, header, field_name, rule, en, zh))

    for index, header in enumerate(raw.headers):
        if not header:
            continue
        found = column_named(raw.name, header)
        if found is None:
            header_problem(
                header, "", "unknown_column",
                f"sheet {raw.name} has no column {header!r}; see the template's columns",
                f"工作表“{raw.name}”没有“{header}”这一列，请对照模板的列名",
            )  # fmt: skip
            continue
        column, scale = found
        if column.field in seen:
            header_problem(
                header, column.field, "duplicate_column",
                f"column {header!r} gives {column.field} again (first as {seen[column.field]!r})",
                f"“{header}”与“{seen[column.field]}”重复",
            )  # fmt: skip
            continue
        seen[column.field] = header
        placed.append(Placed(column, index, header, scale))
    missing = {c.field for c in SHEETS[raw.name] if c.field not in seen}
    for column in SHEETS[raw.name]:
        if column.field in missing and column.required and column.field != "station_id":
            header_problem(
                column.header, column.field, "missing_column",
                f"sheet {raw.name} lacks the column {column.header} ({column.field})",
                f"工作表“{raw.name}”缺少“{column.header}”列",
            )  # fmt: skip
    return placed, problems, missing


def _parse(
    row: Row,
    reads: list[tuple[Placed, tuple[str, str, str]]],
    cells: tuple[Any, ...],
    missing: set[str],
    who: Principal,
) -> None:
    body: dict[str, Any] = {}
    reported: set[str] = set()
    width = len(cells)
    for p, (side, _, name) in reads:
        value = cells[p.index] if p.index < width else None
        if value is None or empty(value):
            continue
        try:
            read = cell_value(p.column, value, p.scale)
        except CellProblem as problem:
            reported.add(p.column.field)
            row.problem(p.column.field, problem.rule, problem.message, problem.message_zh)
            continue
        (body.setdefault(side, {}) if side else body)[name] = read
    if row.sheet == CONTRACTS and "station_id" not in body and who.station_id:
        body["station_id"] = who.station_id  # a station's own rows need not say whose
    for side in ("seller", "buyer"):
        if row.sheet == CONTRACTS:
            body.setdefault(side, {})
    row.registration_no = _text(body.get("registration_no"))
    row.claimed = _text(body.get(NUMBER_FIELD[row.sheet]))
    op = OPS[row.sheet]
    try:
        args = batch_args(op, body)
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
            if name in reported or (error["type"] == "missing" and name in missing):
                continue
            reported.add(name)
            row.problem(name, *field_rule(dict(error)))
        return
    if not row.problems:
        row.command = Command(op, args)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _duplicates_in_file(rows: list[Row]) -> None:
    """A number given twice in the file: the second (and later) rows name the first."""
    first: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.claimed is None:
            continue
        key = (row.sheet, number_key(row.claimed))
        if key not in first:
            first[key] = row.number
            continue
        name = NUMBER_FIELD[row.sheet]
        row.problem(
            name, "duplicate_in_file",
            f"{row.claimed} is given twice in this file: first in row {first[key]}",
            f"编号 {row.claimed} 在本文件中重复：已见于第 {first[key]} 行",
        )  # fmt: skip


def check_state(registry: Registry, who: Principal, checked: Checked) -> None:
    """Run each row's command through the registry's handlers against its real state, in a
    transaction rolled back at the end; a refusal is the row's problem and undoes that command
    alone, so every row is judged, on every rule it breaks (:func:`_judge`). Evidence whose
    contract row is bad is not judged (warned); nor is a row whose cells break field rules (it
    has no command to run)."""
    numbered = [(r, r.registration_no) for r in checked.rows if r.sheet == CONTRACTS]
    good = {number_key(no) for r, no in numbered if no and r.command is not None}
    bad_contracts = {number_key(no) for r, no in numbered if no and r.command is None} - good
    engine = _reader(registry.engine)
    session = Session(engine)
    try:
        session.begin()
        uow = UnitOfWork(session, registry.event_store, AggregateCache())
        ids, claims = [], []
        for command in checked.commands:
            wanted_ids, wanted_claims = needs(command)
            ids += wanted_ids
            claims += wanted_claims
        uow.prefetch(ids, claims)
        for row in checked.rows:
            if row.command is None:
                continue
            if (
                row.sheet != CONTRACTS
                and row.registration_no
                and number_key(row.registration_no) in bad_contracts
            ):
                row.command = None
                checked.warnings.append(
                    ImportProblem(
                        row.sheet,
                        row.number,
                        row.headers["registration_no"],
                        "registration_no",
                        "contract_row_invalid",
                        f"not checked against contract {row.registration_no}: its row in "
                        "this file has errors",
                        f"合同 {row.registration_no} 在本文件中的行有错误，此行未能与之核对",
                    )
                )
                continue
            _judge(uow, who, row, row.command)
    finally:
        session.rollback()
        session.close()
        if engine is not registry.engine:
            engine.dispose()


def _judge(uow: UnitOfWork, who: Principal, row: Row, command: Command) -> None:
    """Run a row's command through its handler; a refusal is the row's problem. The handler
    stops at the first rule broken, so where that rule is independent of the others the
    command runs again as if the row kept it (:func:`_as_if_kept`), until it passes or breaks
    a rule after which nothing more can be judged: every rule the row breaks is named. Only a
    row without a problem leaves its event staged, for the rows after it to be judged with."""
    args: dict[str, Any] | None = command.args
    if any(p.rule == "duplicate_in_file" for p in row.problems):  # judged as if its own
        args = _as_if_kept("duplicate_in_file", NUMBER_FIELD[row.sheet], command.args, uow, who)
    broken: set[tuple[str, str | None]] = set()
    while args is not None:
        savepoint = uow.savepoint()
        try:
            aggregate = HANDLERS[command.op](uow, who, args)
        except DomainError as error:
            uow.roll_back(savepoint)
            rule, message, message_zh = state_rule(error, None)
            if (rule, error.field) in broken:  # kept already, broken again: judged enough
                return
            broken.add((rule, error.field))
            row.problem(error.field or "", rule, message, message_zh)
            args = _as_if_kept(rule, error.field, args, uow, who)
            continue
        uow.took_event(aggregate)
        if row.problems:  # it passed only as if it kept the rules it broke
            uow.roll_back(savepoint)
        else:
            uow.release(savepoint)
        return


# The counterpart a piece of evidence names, by its field: the contract's seller or buyer.
_PARTY_OF = {
    "issuer_credit_code": "seller",
    "recipient_credit_code": "buyer",
    "payer_credit_code": "buyer",
    "payee_credit_code": "seller",
}


def _as_if_kept(
    rule: str, field_name: str | None, args: dict[str, Any], uow: UnitOfWork, who: Principal
) -> dict[str, Any] | None:
    """A command's arguments changed so that they keep ``rule``, which they broke at
    ``field_name``, and nothing else: run again, they show the next rule the row breaks. None
    where the rest cannot be judged: evidence naming a contract that does not exist, that the
    station may not see or that is cancelled has nothing to be checked against (one error is
    right); so has a rule not named here."""
    kept = dict(args)
    if rule in ("duplicate_in_registry", "duplicate_in_file") and field_name in (
        "registration_no",
        "invoice_no",
        "serial_no",
    ):
        kept[field_name] = f"~{uuid4().hex}"  # a number nobody holds
        if field_name != "registration_no":
            # A number the registry or the file holds already is most often the same invoice
            # or payment given again: counting its amount a second time would name a rule
            # the row does not break.
            kept["amount_fen"] = 0
        return kept
    if rule == "own_station" and field_name == "station_id" and who.station_id:
        kept["station_id"] = who.station_id
        return kept
    if rule == "signed_before_registered":
        kept["signed_on"] = args["registered_on"]
        return kept
    if rule == "parties_differ":
        kept["buyer"] = {**args["buyer"], "credit_code": f"~{args['buyer']['credit_code']}"}
        return kept
    if rule == "technology_within_contract":
        kept["technology_amount_fen"] = args["contract_amount_fen"]
        return kept
    if rule == "brokers_unique":
        kept["brokers"] = list(dict.fromkeys(args["brokers"]))
        return kept
    if rule == "evidence_over_contract_amount":
        kept["amount_fen"] = 0
        return kept
    if rule in ("party_match", "not_before_signing"):  # evidence, against its contract
        contract = uow.get(contract_aggregate_id(args["registration_no"]))
        if not isinstance(contract, Contract):
            return None
        if field_name in _PARTY_OF:
            kept[field_name] = getattr(contract, _PARTY_OF[field_name])["credit_code"]
            return kept
        if field_name in ("issued_on", "paid_on"):
            kept[field_name] = contract.signed_on
            return kept
    # contract_unknown, contract_cancelled, own_station of a role, an unknown station id, and
    # any rule not named above: reported alone.
    return None


def _reader(engine: Engine) -> Engine:
    """What a check reads the registry through: on SQLite a read-only engine, since the
    registry's own begins every transaction with the write lock (BEGIN IMMEDIATE), which
    would hold every write back for as long as a large file is checked."""
    if engine.dialect.name != "sqlite":
        return engine
    return make_read_only_engine(engine.url.render_as_string(hide_password=False))


def broker_warnings(registry: Registry, checked: Checked) -> None:
    """A warning for each contract row naming a broker not filed yet: accepted (it may be
    filed later), but its share is forfeited for any year it is not filed by."""
    named = {
        broker: broker_aggregate_id(broker)
        for row in checked.rows
        if row.sheet == CONTRACTS and row.command is not None
        for broker in row.command.args.get("brokers", [])
    }
    if not named:
        return
    engine = _reader(registry.engine)
    try:
        with Session(engine) as session:
            filed = registry.event_store.load(session, named.values())
    finally:
        if engine is not registry.engine:
            engine.dispose()
    for row in checked.rows:
        if row.sheet != CONTRACTS or row.command is None:
            continue
        for broker in row.command.args.get("brokers", []):
            if filed.get(named[broker]) is None:
                checked.warnings.append(
                    ImportProblem(
                        row.sheet, row.number, row.headers["brokers"], "brokers",
                        "broker_not_filed",
                        f"broker {broker} is not filed yet: its share is forfeited for any year "
                        "it is not filed by",
                        f"技术经纪人 {broker} 尚未备案：未备案年度的奖补份额将被放弃",
                    )
                )  # fmt: skip


def problem_order(problems: list[ImportProblem]) -> list[ImportProblem]:
    """Sheet by sheet (合同, 发票, 转账凭证), row by row."""
    order = {name: i for i, name in enumerate(SHEETS)}
    return sorted(problems, key=lambda p: (order.get(p.sheet, len(order)), p.row))
