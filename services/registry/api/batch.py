"""The batch body: up to 1,000 commands, each the body of its op's route plus that route's path
parameters as fields, all derived from the command table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from services.common.web.fields import about
from services.registry.api.models import (
    EXAMPLE_REGISTRATION_NO,
    ContractCreate,
    Incoming,
    Number,
)
from services.registry.commands import COMMANDS

_PATH_FIELDS = {
    "registration_no": about("登记号 The contract's registration number", EXAMPLE_REGISTRATION_NO),
    "invoice_no": about("发票号码 The invoice's number", "INV-0001"),
    "serial_no": about("银行流水号 The transfer proof's serial number", "BANK-0001"),
}


def _examples(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The examples of whole bodies a model's schema carries."""
    extra = model.model_config.get("json_schema_extra")
    return cast(list[dict[str, Any]], extra.get("examples", [])) if isinstance(extra, dict) else []


def _in_batch(model: type[Incoming], params: tuple[str, ...]) -> type[Incoming]:
    """The route's body model with its path parameters as fields, and examples to match."""
    path_examples = {p: _PATH_FIELDS[p].examples[0] for p in params}
    extra: Any = {"examples": [{**path_examples, **example} for example in _examples(model)]}
    namespace = {
        "__doc__": model.__doc__,
        "__module__": __name__,
        "__annotations__": {p: Number for p in params},
        "model_config": ConfigDict(json_schema_extra=extra),
        **{p: _PATH_FIELDS[p] for p in params},
    }
    return type(f"{model.__name__}InBatch", (model,), namespace)


_BATCH_MODELS = {op: _in_batch(c.request, c.path) for op, c in COMMANDS.items()}


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
    """One command: ``op`` names the route, ``body`` is that route's body with its path
    parameters (registration_no, invoice_no, serial_no) as fields."""

    op: Op = about("操作 The route the command stands for", "register_contract")
    body: dict[str, Any] = Field(description="请求体 That route's body")

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # The document names each op's body; the server validates it after reading ``op``,
        # so that an error names the command's index and the field within its body.
        return {
            "description": cls.__doc__,
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "op": {"const": op},
                        "body": handler(model.__pydantic_core_schema__),
                    },
                    "required": ["op", "body"],
                    "additionalProperties": False,
                }
                for op, model in _BATCH_MODELS.items()
            ],
        }


class BatchCreate(Incoming):
    """批量 Up to 1,000 commands stored atomically, in order: all of them or none."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "commands": [
                        {
                            "op": "register_contract",
                            "body": _examples(ContractCreate)[0],
                        },
                        {
                            "op": "record_invoice",
                            "body": _examples(_BATCH_MODELS["record_invoice"])[0],
                        },
                    ]
                }
            ]
        }
    )

    commands: list[BatchCommand] = Field(
        min_length=1, max_length=1000, description="命令 The commands, 1 to 1,000"
    )
