"""The registry's use cases: one handler per command, run inside a unit of work, and the
command table that declares each op once.

A handler authorises the principal, loads or creates the aggregate, and calls one aggregate
method, which checks the invariants and triggers one event. Arguments are already parsed:
ISO date strings, integer fen, plain dicts for parties.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.common.tokens import Principal
from services.registry.api import models as m
from services.registry.domain import (
    Broker,
    Contract,
    DemonstrationInstitution,
    OneTimeGrant,
    Payout,
    ProvincialFunding,
    broker_aggregate_id,
    contract_aggregate_id,
    funding_aggregate_id,
    grant_aggregate_id,
    institution_aggregate_id,
    payout_aggregate_id,
)
from services.registry.errors import Conflict, Forbidden, InvalidCommand, NotFound
from services.registry.unit_of_work import UnitOfWork
from services.registry.visibility import may_read

__all__ = ["COMMANDS", "HANDLERS", "Command", "CommandType", "Principal", "needs"]

WRITER_ROLES = frozenset({"station", "bureau"})


@dataclass(frozen=True)
class Command:
    """One operation with its parsed arguments, as posted alone or inside a batch."""

    op: str
    args: dict[str, Any]


Handler = Callable[[UnitOfWork, Principal, dict[str, Any]], Aggregate]


def register_contract(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Register a contract certified by a registration station (认定登记)."""
    station_id = args["station_id"]
    if who.role == "station" and station_id != who.station_id:
        raise Forbidden(
            "station_id",
            f"station {who.station_id} may register only under its own id",
            f"登记机构 {who.station_id} 只能以本机构编号登记",
        )
    if not uow.station_exists(station_id):
        raise InvalidCommand(
            "station_id",
            f"no registration station {station_id} holds a token: register under the id of "
            "a station in the tokens file",
            f"登记机构 {station_id} 不存在（令牌文件中没有该机构）",
            rule="unknown_station",
        )
    registration_no = args["registration_no"]
    if uow.get(contract_aggregate_id(registration_no)) is not None:
        raise Conflict(
            "registration_no",
            f"registration number {registration_no} is already used",
            f"登记号 {registration_no} 已被使用",
        )
    uow.claim("registration", registration_no, registration_no, field="registration_no")
    contract = uow.add(Contract(principal=who.name, **args))
    _warn_unfiled_brokers(uow, args["brokers"])
    return contract


def amend_contract(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Record a change of amounts, brokers, related-party flag or title (变更登记)."""
    contract = _contract_for(uow, who, args)
    contract.amend(principal=who.name, **args)
    _warn_unfiled_brokers(uow, args["changes"].get("brokers", []))
    return contract


def cancel_contract(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Cancel a registration (注销登记); the contract then counts for nothing."""
    contract = _contract_for(uow, who, args)
    contract.cancel(principal=who.name, **args)
    return contract


def record_invoice(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Record an invoice (发票) issued by the seller to the buyer."""
    contract = _contract_for(uow, who, args)
    contract.check_open()
    uow.claim("invoice", args["invoice_no"], args["registration_no"], field="invoice_no")
    contract.record_invoice(principal=who.name, **args)
    return contract


def void_invoice(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Void an invoice (红冲)."""
    contract = _contract_for(uow, who, args)
    contract.void_invoice(principal=who.name, **args)
    return contract


def record_transfer_proof(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Record a bank transfer proof (转账凭证) of a payment from the buyer to the seller."""
    contract = _contract_for(uow, who, args)
    contract.check_open()
    uow.claim("serial", args["serial_no"], args["registration_no"], field="serial_no")
    contract.record_transfer_proof(principal=who.name, **args)
    return contract


def withdraw_transfer_proof(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Withdraw a transfer proof recorded in error."""
    contract = _contract_for(uow, who, args)
    contract.withdraw_transfer_proof(principal=who.name, **args)
    return contract


def file_broker(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """File a technology broker (技术经纪人备案); the science bureau only."""
    if uow.get(broker_aggregate_id(args["broker_id"])) is not None:
        raise Conflict(
            "broker_id",
            f"broker {args['broker_id']} is already filed",
            f"技术经纪人 {args['broker_id']} 已备案",
        )
    return uow.add(Broker(principal=who.name, **args))


def record_provincial_funding(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Record provincial funding already granted (不重复支持); the science bureau only."""
    if uow.get(funding_aggregate_id(args["credit_code"], args["year"], args["programme"])):
        raise Conflict(
            "programme",
            f"funding of {args['credit_code']} by {args['programme']} for {args['year']} "
            "is already recorded",
            f"{args['credit_code']} {args['year']} 年度的{args['programme']}资助已登记",
        )
    return uow.add(ProvincialFunding(principal=who.name, **args))


def record_payout(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Record a payout of a turnover year's subsidies as paid (兑付); finance only."""
    years = uow.years
    if args["year"] not in years:
        raise InvalidCommand(
            "year",
            f"must be a turnover year of the policy in force ({years[0]}–{years[-1]})",
            f"须为现行政策适用的年度（{years[0]}–{years[-1]}）",
        )
    head = uow.head()
    if args["basis_position"] > head:
        raise InvalidCommand(
            "basis_position",
            f"must not be beyond the log's head ({head})",
            f"不得超过日志当前位置（{head}）",
        )
    payout_no = args["payout_no"]
    if uow.get(payout_aggregate_id(payout_no)) is not None:
        raise Conflict(
            "payout_no", f"payout {payout_no} is already recorded", f"兑付 {payout_no} 已登记"
        )
    uow.claim("payout", payout_no, payout_no, field="payout_no")
    return uow.add(Payout(principal=who.name, **args))


def recognise_institution(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Recognise a technology-transfer demonstration institution at a level (技术转移示范机构
    认定); the science bureau only."""
    code, level = args["credit_code"], args["level"]
    if uow.get(institution_aggregate_id(code, level)) is not None:
        raise Conflict(
            "level",
            f"{code} is already recognised at {level} level",
            f"{code} 已获该级别（{level}）示范机构认定",
        )
    return uow.add(DemonstrationInstitution(principal=who.name, **args))


DEMONSTRATION = "demonstration_institution"  # the programme granted once per institution


def decide_grant(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
    """Record a one-time grant decided by the bureau (一次性补助); the science bureau only."""
    grant_no, code = args["grant_no"], args["credit_code"]
    if uow.get(grant_aggregate_id(grant_no)) is not None:
        raise Conflict(
            "grant_no", f"grant {grant_no} is already recorded", f"补助编号 {grant_no} 已登记"
        )
    uow.claim("grant", grant_no, grant_no, field="grant_no")
    if args["programme"] == DEMONSTRATION:
        institution = uow.get(institution_aggregate_id(code, "provincial"))
        if not isinstance(institution, DemonstrationInstitution):
            raise InvalidCommand(
                "credit_code",
                f"{code} is not recognised as a provincial demonstration institution "
                "(省级技术转移示范机构): recognise it first",
                f"{code} 尚未认定为省级技术转移示范机构：请先登记认定",
            )
        institution.check_recognised_by(args["decided_on"])
        earlier = uow.holder("demonstration", code)
        if earlier is not None:
            raise InvalidCommand(
                "programme",
                f"{code} already received its one-time demonstration grant ({earlier})",
                f"{code} 已获得示范机构一次性补助（{earlier}）",
            )
        uow.claim("demonstration", code, grant_no, field="programme")
    return uow.add(OneTimeGrant(principal=who.name, **args))


@dataclass(frozen=True)
class CommandType:
    """One operation, declared once: its route, who may run it, what the API parses for it,
    what runs, what it records, and what a group prefetches for it. Everything keyed by op or
    by event type derives from :data:`COMMANDS`, the op's own route included
    (``services.registry.api.routes``: its description is the handler's docstring)."""

    route: str  # POST path under /v1; its {parameters} are :attr:`path`, in order
    roles: frozenset[str]  # the roles that may run it; any other is refused (403)
    request: type[m.Incoming]  # the API's body (services.registry.api.models)
    path: tuple[str, ...]  # the route's path parameters, given as body fields in a batch
    handler: Handler
    aggregate: type[Aggregate]  # whose event it records
    event: str  # the event type it records: the aggregate's ``@event`` name
    subject: str  # the payload field that is the envelope's ``subject``
    target: Callable[[dict[str, Any]], UUID]  # the aggregate it loads or creates
    claims: tuple[tuple[str, str], ...] = ()  # (kind, argument): the unique numbers it claims

    def authorise(self, who: Principal) -> None:
        """Refuse a principal whose role the table does not name for this op."""
        if who.role not in self.roles:
            names = " and ".join(_ROLE_NAMES.get(r, r) for r in sorted(self.roles))
            names_zh = "、".join(_ROLE_NAMES_ZH.get(r, r) for r in sorted(self.roles))
            raise Forbidden(
                None,
                f"only {names} may do this (role {who.role})",
                f"只有{names_zh}可以办理此事项（当前角色 {who.role}）",
            )


# How a refusal names the roles that may: "only the science bureau may do this".
_ROLE_NAMES = {"bureau": "the science bureau", "finance": "finance", "station": "stations"}
_ROLE_NAMES_ZH = {"bureau": "科技局", "finance": "财政部门", "station": "登记机构"}
_BUREAU = frozenset({"bureau"})


def _contract(args: dict[str, Any]) -> UUID:
    return contract_aggregate_id(args["registration_no"])


def _broker(args: dict[str, Any]) -> UUID:
    return broker_aggregate_id(args["broker_id"])


def _funding(args: dict[str, Any]) -> UUID:
    return funding_aggregate_id(args["credit_code"], args["year"], args["programme"])


def _payout(args: dict[str, Any]) -> UUID:
    return payout_aggregate_id(args["payout_no"])


def _institution(args: dict[str, Any]) -> UUID:
    return institution_aggregate_id(args["credit_code"], args["level"])


def _grant(args: dict[str, Any]) -> UUID:
    return grant_aggregate_id(args["grant_no"])


_NO = "registration_no"


def _on_contract(
    route: str,
    request: type[m.Incoming],
    handler: Handler,
    event: str,
    path: tuple[str, ...] = (_NO,),
    claims: tuple[tuple[str, str], ...] = (),
) -> CommandType:
    """An op on one contract: about its registration number, loading that contract."""
    return CommandType(
        route, WRITER_ROLES, request, path, handler, Contract, event, _NO, _contract, claims
    )


_ON = "/contracts/{registration_no}"

COMMANDS: dict[str, CommandType] = {
    "register_contract": _on_contract(
        "/contracts", m.ContractCreate, register_contract, "ContractRegistered", path=(),
        claims=(("registration", "registration_no"),),
    ),
    "amend_contract": _on_contract(
        f"{_ON}/amendments", m.ContractAmendment, amend_contract, "ContractAmended"
    ),
    "cancel_contract": _on_contract(
        f"{_ON}/cancellation", m.ContractCancellation, cancel_contract, "ContractCancelled"
    ),
    "record_invoice": _on_contract(
        f"{_ON}/invoices", m.InvoiceCreate, record_invoice, "InvoiceRecorded",
        claims=(("invoice", "invoice_no"),),
    ),
    "void_invoice": _on_contract(
        f"{_ON}/invoices/{{invoice_no}}/void", m.InvoiceVoid, void_invoice, "InvoiceVoided",
        path=(_NO, "invoice_no"),
    ),
    "record_transfer_proof": _on_contract(
        f"{_ON}/transfer-proofs", m.TransferProofCreate, record_transfer_proof,
        "TransferProofRecorded", claims=(("serial", "serial_no"),),
    ),
    "withdraw_transfer_proof": _on_contract(
        f"{_ON}/transfer-proofs/{{serial_no}}/withdraw", m.TransferProofWithdrawal,
        withdraw_transfer_proof, "TransferProofWithdrawn", path=(_NO, "serial_no"),
    ),
    "file_broker": CommandType(
        route="/brokers", roles=_BUREAU, request=m.BrokerCreate, path=(), handler=file_broker,
        aggregate=Broker, event="BrokerFiled", subject="broker_id", target=_broker,
    ),
    "record_provincial_funding": CommandType(
        route="/provincial-funding", roles=_BUREAU, request=m.ProvincialFundingCreate, path=(),
        handler=record_provincial_funding, aggregate=ProvincialFunding,
        event="ProvincialFundingRecorded", subject="credit_code", target=_funding,
    ),
    "record_payout": CommandType(
        route="/payouts", roles=frozenset({"finance"}), request=m.PayoutCreate, path=(),
        handler=record_payout, aggregate=Payout, event="PayoutRecorded", subject="payout_no",
        target=_payout, claims=(("payout", "payout_no"),),
    ),
    "recognise_institution": CommandType(
        route="/demonstration-institutions", roles=_BUREAU,
        request=m.DemonstrationInstitutionCreate, path=(), handler=recognise_institution,
        aggregate=DemonstrationInstitution, event="DemonstrationInstitutionRecognised",
        subject="credit_code", target=_institution,
    ),
    "decide_grant": CommandType(
        route="/one-time-grants", roles=_BUREAU, request=m.OneTimeGrantCreate, path=(),
        handler=decide_grant, aggregate=OneTimeGrant, event="OneTimeGrantDecided",
        subject="grant_no", target=_grant,
        # The second is looked up for a demonstration grant (one per institution).
        claims=(("grant", "grant_no"), ("demonstration", "credit_code")),
    ),
}  # fmt: skip


def _authorised(declared: CommandType) -> Handler:
    """The op's handler behind the table's role check (the check comes first, as it always
    did: a reader learns nothing about what is stored)."""
    handler = declared.handler

    def run(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Aggregate:
        declared.authorise(who)
        return handler(uow, who, args)

    return run


# What the writer runs for each op (a dict of its own, so a test may wrap one handler).
HANDLERS: dict[str, Handler] = {op: _authorised(c) for op, c in COMMANDS.items()}


def needs(command: Command) -> tuple[list[UUID], list[tuple[str, str]]]:
    """The aggregates and claims a command will look up, so a group can fetch them at once;
    nothing for an op the table does not hold (the writer refuses it)."""
    declared = COMMANDS.get(command.op)
    if declared is None:
        return [], []
    args = command.args
    brokers = args.get("brokers") or args.get("changes", {}).get("brokers") or []
    ids = [declared.target(args), *(broker_aggregate_id(b) for b in brokers)]
    return ids, [(kind, args[name]) for kind, name in declared.claims]


def _contract_for(uow: UnitOfWork, who: Principal, args: dict[str, Any]) -> Contract:
    registration_no = args["registration_no"]
    contract = uow.get(contract_aggregate_id(registration_no))
    # Another station's contract is answered as one that does not exist: existence does not
    # leak (services.registry.visibility).
    if not isinstance(contract, Contract) or not may_read(who, contract.station_id):
        raise no_contract(registration_no)
    return contract


def no_contract(registration_no: str) -> NotFound:
    """The refusal of a contract not registered, or registered by a station the caller is not:
    the two are worded alike, so a station cannot tell them apart."""
    return NotFound(
        "registration_no",
        f"no contract registered as {registration_no}",
        f"没有登记号为 {registration_no} 的合同",
    )


def _warn_unfiled_brokers(uow: UnitOfWork, brokers: list[str]) -> None:
    """A broker not filed yet is accepted (the bureau may file it later), with a warning: its
    share is forfeited unless it is filed."""
    for index, broker_id in enumerate(brokers):
        if uow.get(broker_aggregate_id(broker_id)) is None:
            uow.warn(
                f"brokers.{index}",
                "broker_not_filed",
                f"broker {broker_id} is not filed with the science bureau yet: accepted, but "
                "its subsidy is forfeited unless it is filed",
                f"技术经纪人 {broker_id} 尚未在科技局备案：已受理，但备案前不享受经纪人奖补",
            )
