"""What a client would be told of a submission made to the registry application directly."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from services.common.errors import DomainError
from services.common.web.refusals import refusal


@dataclass(frozen=True)
class Answer:
    """A submission's outcome as the API answers it: 201 and the receipt, or a refusal."""

    status: int
    body: dict[str, Any]


def answered(future: Future[dict[str, Any]], timeout: float = 60) -> Answer:
    """Wait for a submission's outcome and say it as the API would."""
    try:
        receipt = future.result(timeout)
    except DomainError as error:
        return Answer(*refusal(error))
    return Answer(201, receipt)
