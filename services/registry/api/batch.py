"""The batch body: up to 1,000 commands, each the body of its op's route plus that route's path
parameters as fields, all derived from the command table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, create_model

from services.registry.api.models import Incoming, Number
from services.registry.commands import COMMANDS

_BATCH_MODELS: dict[str, type[Incoming]] = {
    op: create_model(  # type: ignore[call-overload]
        f"{c.request.__name__}InBatch",
        __base__=c.request,
        **{p: (Number, ...) for p in c.path if p not in c.request.model_fields},
    )
    for op, c in COMMANDS.items()
}


def batch_args(op: str, body: dict[str, Any]) -> dict[str, Any]:
    """Validate one batch command's body for its op and return the domain's arguments."""
    declared = COMMANDS[op]
    parsed = _BATCH_MODELS[op].model_validate(body)
    # Already validated: rebuild the route's own body model without validating again.
    base = declared.request
    own = base.model_construct(**{f: getattr(parsed, f) for f in base.model_fields})
    return own.to_args(*(getattr(parsed, p) for p in declared.path))  # type: ignore[attr-defined,no-any-return]


if TYPE_CHECKING:
    Op = str
else:
    Op = Literal[tuple(COMMANDS)]  # every op of the command table, in its order


class BatchCommand(Incoming):
    op: Op
    body: dict[str, Any]


class BatchCreate(Incoming):
    commands: list[BatchCommand] = Field(min_length=1, max_length=1000)
