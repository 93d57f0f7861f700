"""Registry routes: parse, call the application, answer. Nothing else happens here."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from services.common.tokens import Principal
from services.common.web.auth import authenticate, require_roles
from services.common.web.openapi import refusals
from services.common.web.params import MAX_POSITION
from services.registry.api import models as m
from services.registry.api.batch import BatchCreate, batch_args
from services.registry.api.listing import router as listing_router
from services.registry.application import Registry
from services.registry.commands import Command
from services.registry.writer import request_digest

router = APIRouter(prefix="/v1")

Caller = Annotated[Principal, Depends(authenticate)]
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


@router.post("/contracts", status_code=201, response_model=m.EventRecorded, responses=_WRITE)
async def register_contract(
    request: Request, body: m.ContractCreate, who: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Register a contract certified by a registration station (认定登记)."""
    return await _store(request, who, [Command("register_contract", body.to_args())], body, key)


@router.post(
    "/contracts/{registration_no}/amendments",
    status_code=201,
    response_model=m.EventRecorded,
    responses=_ON_CONTRACT,
)
async def amend_contract(
    request: Request,
    registration_no: RegistrationNo,
    body: m.ContractAmendment,
    who: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Record a change of amounts, brokers, related-party flag or title (变更登记)."""
    command = Command("amend_contract", body.to_args(registration_no))
    return await _store(request, who, [command], body, key)


@router.post(
    "/contracts/{registration_no}/cancellation",
    status_code=201,
    response_model=m.EventRecorded,
    responses=_ON_CONTRACT,
)
async def cancel_contract(
    request: Request,
    registration_no: RegistrationNo,
    body: m.ContractCancellation,
    who: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Cancel a registration (注销登记); the contract then counts for nothing."""
    command = Command("cancel_contract", body.to_args(registration_no))
    return await _store(request, who, [command], body, key)


@router.post(
    "/contracts/{registration_no}/invoices",
    status_code=201,
    response_model=m.EventRecorded,
    responses=_ON_CONTRACT,
)
async def record_invoice(
    request: Request,
    registration_no: RegistrationNo,
    body: m.InvoiceCreate,
    who: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Record an invoice (发票) issued by the seller to the buyer."""
    command = Command("record_invoice", body.to_args(registration_no))
    return await _store(request, who, [command], body, key)


@router.post(
    "/contracts/{registration_no}/invoices/{invoice_no}/void",
    status_code=201,
    response_model=m.EventRecorded,
    responses=_ON_CONTRACT,
)
async def void_invoice(
    request: Request,
    registration_no: RegistrationNo,
    invoice_no: InvoiceNo,
    body: m.InvoiceVoid,
    who: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Void an invoice (红冲)."""
    command = Command("void_invoice", body.to_args(registration_no, invoice_no))
    return await _store(request, who, [command], body, key)


@router.post(
    "/contracts/{registration_no}/transfer-proofs",
    status_code=201,
    response_model=m.EventRecorded,
    responses=_ON_CONTRACT,
)
async def record_transfer_proof(
    request: Request,
    registration_no: RegistrationNo,
    body: m.TransferProofCreate,
    who: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Record a bank transfer proof (转账凭证) of a payment from the buyer to the seller."""
    command = Command("record_transfer_proof", body.to_args(registration_no))
    return await _store(request, who, [command], body, key)


@router.post(
    "/contracts/{registration_no}/transfer-proofs/{serial_no}/withdraw",
    status_code=201,
    response_model=m.EventRecorded,
    responses=_ON_CONTRACT,
)
async def withdraw_transfer_proof(
    request: Request,
    registration_no: RegistrationNo,
    serial_no: SerialNo,
    body: m.TransferProofWithdrawal,
    who: Caller,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Withdraw a transfer proof recorded in error."""
    command = Command("withdraw_transfer_proof", body.to_args(registration_no, serial_no))
    return await _store(request, who, [command], body, key)


@router.post("/brokers", status_code=201, response_model=m.EventRecorded, responses=_WRITE)
async def file_broker(
    request: Request, body: m.BrokerCreate, who: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """File a technology broker (技术经纪人备案); the science bureau only."""
    return await _store(request, who, [Command("file_broker", body.to_args())], body, key)


@router.post(
    "/provincial-funding", status_code=201, response_model=m.EventRecorded, responses=_WRITE
)
async def record_provincial_funding(
    request: Request, body: m.ProvincialFundingCreate, who: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Record provincial funding already granted (不重复支持); the science bureau only."""
    command = Command("record_provincial_funding", body.to_args())
    return await _store(request, who, [command], body, key)


@router.post("/payouts", status_code=201, response_model=m.EventRecorded, responses=_WRITE)
async def record_payout(
    request: Request, body: m.PayoutCreate, who: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    """Record a payout of a turnover year's subsidies as paid (兑付); finance only."""
    return await _store(request, who, [Command("record_payout", body.to_args())], body, key)


@router.post("/batch", status_code=201, response_model=m.BatchRecorded, responses=_ON_CONTRACT)
async def batch(
    request: Request,
    body: BatchCreate,
    who: Caller,
    key: IdempotencyKey = None,
    intake: Annotated[
        Literal["live", "backlog"],
        Query(
            description="录入方式 live, or backlog: a history loaded after the fact (补录), "
            'marked intake: "backlog" in each envelope',
            examples=["live"],
        ),
    ] = "live",
) -> JSONResponse:
    """Store up to 1,000 commands atomically, in order: all of them or none."""
    commands = []
    for index, command in enumerate(body.commands):
        try:
            commands.append(Command(command.op, batch_args(command.op, dict(command.body))))
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", "commands", index, "body", *e["loc"])} for e in exc.errors()]
            ) from None
    marks = {"intake": "backlog"} if intake == "backlog" else None
    return await _store(request, who, commands, body, key, batch=True, marks=marks)


@router.get("/contracts/{registration_no}", responses=refusals(404))
def get_contract(request: Request, registration_no: RegistrationNo, who: Caller) -> dict[str, Any]:
    """A contract's current state: status, parties, amounts, evidence and totals."""
    return registry(request).contract(registration_no)


@router.get("/events", response_model=m.LogPagePublic)
def get_events(
    request: Request,
    who: Caller,
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
    """The log in order, hashed; page on with ``after=next_after``."""
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


@router.get("/proofs/inclusion", response_model=m.InclusionProofPublic, responses=_PROOF)
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
    """The audit path showing the entry at ``position`` is in the tree of ``tree_size``."""
    return registry(request).checkpoints.inclusion(position, tree_size)


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
