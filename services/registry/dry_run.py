"""A dry run of commands: each checked by its handler against the store's state as if the
earlier ones had been stored, every refusal collected, nothing written.

The same handlers as the writer's, in a unit of work of its own that is never saved: a
refused command is undone (a savepoint) and the next goes on, so one mistake does not hide
the next, and a later command sees what the accepted earlier ones did.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from services.common.errors import DomainError, rule_of
from services.common.tokens import Principal
from services.registry.commands import Command, needs
from services.registry.event_store import EventStore
from services.registry.unit_of_work import AggregateCache, UnitOfWork
from services.registry.writer import run_command


@dataclass(frozen=True)
class Problem:
    """One command's error or warning: its index, the field and the rule, in two languages."""

    index: int
    field: str | None
    rule: str
    message: str
    message_zh: str

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Checked:
    """What a dry run found: every error and every warning, in command order."""

    errors: list[Problem]
    warnings: list[Problem]


def check_commands(
    engine: Engine,
    store: EventStore,
    who: Principal,
    commands: Sequence[Command | None],
    *,
    years: range = range(0),
    stations: Callable[[], Collection[str]] | None = None,
) -> Checked:
    """Run each command (None: one already refused by its schema, skipped) and roll all back."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    session = Session(engine)
    try:
        session.begin()
        # A cache of its own: the writer's holds committed state only it may hand out.
        uow = UnitOfWork(session, store, AggregateCache(), years, stations)
        wanted = [needs(c) for c in commands if c is not None]
        uow.prefetch([i for ids, _ in wanted for i in ids], [k for _, ks in wanted for k in ks])
        for index, command in enumerate(commands):
            if command is None:
                continue
            savepoint = uow.savepoint()
            try:
                aggregate = run_command(uow, who, command)
            except DomainError as error:
                uow.roll_back(savepoint)
                errors.append(_problem(index, error))
                continue
            uow.took_event(aggregate)
            uow.release(savepoint)
            warnings += [Problem(index=index, **w) for w in uow.take_warnings()]
    finally:
        session.rollback()
        session.close()
    return Checked(errors, warnings)


def _problem(index: int, error: DomainError) -> Problem:
    return Problem(index, error.field, rule_of(error), error.message, error.message_zh)
