"""Registry routes: parse, call the application, answer. Nothing else happens here."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from services.common.tokens import Principal
from services.common.web.auth import authenticate, require_roles
from services.common.web.errors import described
from services.common.web.openapi import refusals
from services.common.web.params import MAX_POSITION
from services.registry.api import models as m
from services.registry.api.batch import BatchCommand, BatchCreate, batch_args
from services.registry.api.listing import router as listing_router
from services.registry.application import Registry
from services.registry.commands import COMMANDS, Command, CommandType
from services.registry.visibility import READS_EVERYTHING
from services.registry.writer import request_digest

router = APIRouter(prefix="/v1")

Caller = Annotated[Principal, Depends(authenticate)]
# The log and the proofs of its entries hold every station's contracts: not for a station.
WholeLogReader = Annotated[Principal, Depends(require_roles(*sorted(READS_EVERYTHING)))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=256,
        description="Retry-safe key, kept per principal",
    ),
]
# 401, 400, 413, 422 and 503 are added to every operation by the document itself.
_WRITE = {201: {"description": "已记录 Stored"}, **refusals(403, 409)}
_ON_CONTRACT = {**_WRITE, **refusals(404)}
RegistrationNo = Annotated[
    str,
    Path(description="登记号 The contract's registration number", examples=["2024410400000001"]),
]
InvoiceNo = Annotated[str, Path(description="发票号码 Invoice number", examples=["INV-0001"])]
SerialNo = Annotated[str, Path(description="银行流水号 Bank serial number", examples=["BANK-0001"])]


def registry(request: Request) -> Registry:
    app: Registry = request.app.state.registry
    return app


async def _store(
    request: Request,
    who: Principal,
    commands: list[Command],
    body: m.Incoming,
    key: str | None,
    *,
    batch: bool = False,
    marks: dict[str, str] | None = None,
) -> JSONResponse:
    digest = request_digest(request.url.path, body.model_dump(mode="json")) if key else None
    future = registry(request).submit(
        who, commands, batch=batch, idempotency_key=key, request_sha256=digest, marks=marks
    )
    # A refusal raises its domain error, which the error table answers.
    return JSONResponse(await asyncio.wrap_future(future), status_code=201)


# Path parameters of the command routes, as the document describes them.
PATH_PARAMETERS: dict[str, Any] = {
    "registration_no": RegistrationNo,
    "invoice_no": InvoiceNo,
    "serial_no": SerialNo,
}


def _command_route(op: str, declared: CommandType) -> Callable[..., Awaitable[JSONResponse]]:
    """The POST route of one row of the command table: its path parameters and body become
    the command's arguments (``to_args``), stored as one submission."""

    async def store(request: Request, **params: Any) -> JSONResponse:
        body, who, key = params["body"], params["who"], params["key"]
        args = body.to_args(*(params[name] for name in declared.path))
        return await _store(request, who, [Command(op, args)], body, key)

    # FastAPI reads the parameters from the signature: request, the path's, body, caller, key.
    keyword = inspect.Parameter.KEYWORD_ONLY
    store.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", keyword, annotation=Request),
            *(inspect.Parameter(n, keyword, annotation=PATH_PARAMETERS[n]) for n in declared.path),
            inspect.Parameter("body", keyword, annotation=declared.request),
            inspect.Parameter("who", keyword, annotation=Caller),
            inspect.Parameter("key", keyword, annotation=IdempotencyKey, default=None),
        ],
        return_annotation=JSONResponse,
    )
    store.__name__ = op
    store.__doc__ = declared.handler.__doc__
    return store


for _op, _declared in COMMANDS.items():
    router.add_api_route(
        _declared.route,
        _command_route(_op, _declared),
        methods=["POST"],
        name=_op,
        status_code=201,
        response_model=m.EventRecorded,
        # A command on a record named in its path may find none there.
        responses=_ON_CONTRACT if _declared.path else _WRITE,
    )


@router.post(
    "/batch",
    status_code=201,
    response_model=m.BatchRecorded,
    responses={
        **_ON_CONTRACT,
        200: {
            "model": m.BatchChecked,
            "description": "试运行结果 With dry_run=true: every error of every command, those "
            "that break their body's schema included, each with its index; nothing stored",
        },
    },
)
async def batch(
    request: Request,
    body: BatchCreate,
    who: Caller,
    key: IdempotencyKey = None,
    dry_run: Annotated[
        bool,
        Query(
            description="试运行 Check every command (schema and state, in order, as if the "
            "earlier ones were stored) and answer 200 with every error; nothing is stored",
            examples=[True],
        ),
    ] = False,
    intake: Annotated[
        Literal["live", "backlog"],
        Query(
            description="录入方式 live, or backlog: a history loaded after the fact (补录), "
            'marked intake: "backlog" in each envelope',
            examples=["live"],
        ),
    ] = "live",
) -> JSONResponse:
    """Store up to 1,000 commands atomically, in order: all of them or none; with
    ``dry_run=true``, check them all and store nothing."""
    parsed = [_parse(command) for command in body.commands]
    if dry_run:
        return JSONResponse(await asyncio.to_thread(_dry_run, registry(request), who, parsed))
    commands = []
    for index, command in enumerate(parsed):
        if isinstance(command, ValidationError):
            raise RequestValidationError(
                [
                    {**e, "loc": ("body", "commands", index, "body", *e["loc"])}
                    for e in command.errors()
                ]
            )
        commands.append(command)
    marks = {"intake": "backlog"} if intake == "backlog" else None
    return await _store(request, who, commands, body, key, batch=True, marks=marks)


def _parse(command: BatchCommand) -> Command | ValidationError:
    """A batch command's op and arguments, or why its body breaks the op's schema."""
    try:
        return Command(command.op, batch_args(command.op, dict(command.body)))
    except ValidationError as exc:
        return exc


def _dry_run(
    app: Registry, who: Principal, parsed: list[Command | ValidationError]
) -> dict[str, Any]:
    refused = [
        {"index": index, **e}
        for index, command in enumerate(parsed)
        if isinstance(command, ValidationError)
        for e in described(command.errors())
    ]
    commands = [c if isinstance(c, Command) else None for c in parsed]
    checked = app.check(who, commands)
    errors = sorted(
        [*refused, *(p.as_json() for p in checked.errors)], key=lambda e: int(e["index"])
    )
    return {
        "valid": not errors,
        "commands": len(commands),
        "errors": errors,
        "warnings": [p.as_json() for p in checked.warnings],
    }


@router.get("/contracts/{registration_no}", responses=refusals(404))
def get_contract(request: Request, registration_no: RegistrationNo, who: Caller) -> dict[str, Any]:
    """A contract's current state: status, parties, amounts, evidence and totals."""
    return registry(request).contract(registration_no, who)


@router.get("/events", response_model=m.LogPagePublic, responses=refusals(403))
def get_events(
    request: Request,
    who: WholeLogReader,
    after: Annotated[
        int,
        Query(
            ge=0, le=MAX_POSITION, description="已读位置 Last position already read", examples=[0]
        ),
    ] = 0,
    limit: Annotated[
        int, Query(ge=1, le=5000, description="条数 Entries per page", examples=[1000])
    ] = 1000,
) -> Response:
    """The log in order, hashed; page on with ``after=next_after``. Every station's
    contracts are in it: not for station tokens (403)."""
    page = registry(request).read_log(after, limit)
    return Response(orjson.dumps(page), media_type="application/json")


@router.get("/health", response_model=m.HealthPublic)
def health(request: Request) -> dict[str, Any]:
    """Liveness and the log head; needs no token."""
    return {"status": "ok", "head": registry(request).head()}


# -- checkpoints and proofs ------------------------------------------------------------------

_PROOF = refusals(404)


@router.get("/checkpoints", response_model=list[m.CheckpointPublic])
def list_checkpoints(request: Request, who: Caller) -> list[dict[str, Any]]:
    """Every signed checkpoint (Merkle tree head), smallest tree first."""
    return registry(request).checkpoints.all()


@router.get("/checkpoints/latest", response_model=m.CheckpointPublic, responses=_PROOF)
def latest_checkpoint(request: Request, who: Caller) -> dict[str, Any]:
    """The checkpoint of the largest tree."""
    return registry(request).checkpoints.latest()


@router.get("/checkpoints/public-key", response_model=m.PublicKeyPublic)
def checkpoint_public_key(request: Request) -> dict[str, str]:
    """The Ed25519 key that signs checkpoints; needs no token (it is what auditors trust)."""
    return {"algorithm": "Ed25519", "public_key_pem": registry(request).checkpoints.public_key}


@router.post(
    "/checkpoints", status_code=201, response_model=m.CheckpointPublic, responses=refusals(403)
)
def issue_checkpoint(
    request: Request, who: Annotated[Principal, Depends(require_roles("bureau", "auditor"))]
) -> dict[str, Any]:
    """Sign a checkpoint of the whole log now (bureau and auditors)."""
    return registry(request).checkpoints.issue()


@router.get(
    "/proofs/inclusion", response_model=m.InclusionProofPublic, responses=refusals(403, 404)
)
def inclusion_proof(
    request: Request,
    who: Caller,
    position: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_POSITION,
            description="日志位置 The entry's log position, at most tree_size",
            examples=[1],
        ),
    ],
    tree_size: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_POSITION,
            description="树大小 Size of the tree (a checkpoint's), at most the log's size",
            examples=[1],
        ),
    ],
) -> dict[str, Any]:
    """The audit path showing the entry at ``position`` is in the tree of ``tree_size``; a
    station has it only for an entry about a contract of its own (else 403)."""
    return registry(request).inclusion(who, position, tree_size)


@router.get("/proofs/consistency", response_model=m.ConsistencyProofPublic, responses=_PROOF)
def consistency_proof(
    request: Request,
    who: Caller,
    first: Annotated[
        int,
        Query(
            alias="from",
            ge=1,
            le=MAX_POSITION,
            description="较小树 Size of the smaller tree, at most to",
            examples=[1],
        ),
    ],
    second: Annotated[
        int,
        Query(
            alias="to",
            ge=1,
            le=MAX_POSITION,
            description="较大树 Size of the larger tree, at most the log's size",
            examples=[1],
        ),
    ],
) -> dict[str, Any]:
    """The proof that the tree of ``from`` leaves is a prefix of the tree of ``to`` leaves."""
    return registry(request).checkpoints.consistency(first, second)


router.include_router(listing_router)  # GET /v1/contracts
