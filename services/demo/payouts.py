"""The demo's payouts (兑付): finance pays each turnover year's entitlements on 30 June of the
next year, as the history known that day entitles them, and a year later settles what changed
since (补拨 what is owed, 追回 what was overpaid), so the balances show both.

The entitlements are the policy engine's, over the facts folded from the history's commands
so far; the positions are those of the commands on an empty registry.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from services.common.money import format_fen, parse_yuan
from services.common.policy.engine import entitlements, one_time_entitlements
from services.common.policy.facts import FactsBuilder
from services.common.policy.loader import load_schedule

# The event each op of the history records, as the registry's command table names it (the
# demo's test holds the two equal).
EVENTS = {
    "register_contract": "ContractRegistered",
    "amend_contract": "ContractAmended",
    "cancel_contract": "ContractCancelled",
    "record_invoice": "InvoiceRecorded",
    "void_invoice": "InvoiceVoided",
    "record_transfer_proof": "TransferProofRecorded",
    "withdraw_transfer_proof": "TransferProofWithdrawn",
    "file_broker": "BrokerFiled",
    "record_provincial_funding": "ProvincialFundingRecorded",
    "recognise_institution": "DemonstrationInstitutionRecognised",
    "decide_grant": "OneTimeGrantDecided",
}
_AMOUNTS = frozenset({"contract_amount", "technology_amount", "amount"})
_AMENDMENT_FIELDS = frozenset({"registration_no", "amended_on", "reason"})
PAYDAY = (6, 30)  # month, day of the year after the turnover year


def payout_days(years: Sequence[int], today: date) -> list[tuple[date, int, int]]:
    """(day, turnover year, round) of each payout: the first in Y+1, the settlement in Y+2,
    for the years in force whose settlement day has passed."""
    schedule = load_schedule()
    days = []
    for year in years:
        if schedule.in_force(year) and date(year + 2, *PAYDAY) <= today:
            days += [(date(year + 1, *PAYDAY), year, 1), (date(year + 2, *PAYDAY), year, 2)]
    return sorted(days)


def with_payouts(
    dated: Sequence[tuple[date, dict[str, Any]]], years: Sequence[int], today: date
) -> Iterator[dict[str, Any]]:
    """The commands in order, with a payout at each payday settling what the history known
    that day entitles against what was paid before; eleven weeks after each payout, two of
    the contracts it paid for are cancelled (注销), so that the next settlement recovers them
    (追回), and those after the last one stay to be recovered."""
    schedule = load_schedule()
    builder = FactsBuilder()
    net: dict[tuple[int, str, str], int] = {}  # paid minus recovered, fen
    last_day = {
        c["body"]["registration_no"]: day for day, c in dated if "registration_no" in c["body"]
    }
    queue = [(day, i, c) for i, (day, c) in enumerate(dated)]  # in order already: a heap
    added = len(queue)
    position = 0

    def until(day: date) -> Iterator[dict[str, Any]]:
        nonlocal position
        while queue and queue[0][0] <= day:
            _, _, command = heapq.heappop(queue)
            position += 1
            builder.apply(_envelope(position, command))
            yield command

    for day, year, round_ in payout_days(years, today):
        yield from until(day)
        facts = builder.facts()
        policy = schedule.for_year(year)
        found = entitlements(facts, year, policy)
        granted = one_time_entitlements(facts, year, policy)  # paid as decided, like the rest
        owed: dict[tuple[int, str, str], int] = {
            (year, e.category, e.beneficiary): e.entitlement_fen for e in found + granted
        }
        lines = []
        for key in sorted(owed.keys() | {k for k in net if k[0] == year}):
            outstanding = owed.get(key, 0) - net.get(key, 0)
            if outstanding:
                lines.append(
                    {
                        "beneficiary": key[2],
                        "category": key[1],
                        "amount": format_fen(abs(outstanding)),
                        "kind": "payment" if outstanding > 0 else "recovery",
                    }
                )
                net[key] = owed.get(key, 0)
        # A payout holds at most MAX_PAYOUT_LINES lines (the API's limit): a national-size
        # round is paid in several, numbered -1, -2, … (a round that fits keeps its number).
        basis = position
        parts = [lines[i : i + MAX_PAYOUT_LINES] for i in range(0, len(lines), MAX_PAYOUT_LINES)]
        for part_no, part in enumerate(parts, start=1):
            number = f"ZF-{day.year}-{year}-{round_}"
            if len(parts) > 1:
                number += f"-{part_no}"
            body = {"payout_no": number, "year": year, "paid_on": day.isoformat(),
                    "basis_position": basis, "lines": part}  # fmt: skip
            position += 1
            yield {"op": "record_payout", "body": body}
        paid_for = sorted(
            {c.registration_no for e in found if e.entitlement_fen for c in e.contracts}
            - {no for no, last in last_day.items() if last > day}
        )
        cancelled_on = day + timedelta(weeks=11)
        for no in paid_for[len(paid_for) // 3 :: max(len(paid_for) // 2, 1)][:2]:
            if cancelled_on <= today:
                last_day[no] = cancelled_on
                body = {"registration_no": no, "cancelled_on": cancelled_on.isoformat(),
                        "reason": "合同未实际履行 Not performed"}  # fmt: skip
                added += 1
                heapq.heappush(
                    queue, (cancelled_on, added, {"op": "cancel_contract", "body": body})
                )
    yield from until(date.max)


MAX_PAYOUT_LINES = 5000  # PayoutCreate.lines' max_length


def _envelope(position: int, command: dict[str, Any]) -> dict[str, Any]:
    op, body = command["op"], command["body"]
    if op == "amend_contract":
        changes = {k: v for k, v in body.items() if k not in _AMENDMENT_FIELDS}
        payload = {k: body[k] for k in _AMENDMENT_FIELDS} | {"changes": _in_fen(changes)}
    else:
        payload = _in_fen(body)
    # The bodies the demo writes hold no field a later version of a type added.
    return {"position": position, "type": EVENTS[op], "schema_version": 1, "payload": payload}


def _in_fen(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{name}_fen" if name in _AMOUNTS else name: parse_yuan(value)
        if name in _AMOUNTS
        else value
        for name, value in fields.items()
    }
