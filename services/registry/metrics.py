"""The registry's metrics: the writer's groups and refusals, checkpoints issued.

The writer and the checkpointer call these few functions and know nothing of Prometheus;
refusals are also logged here, at info, with the rule they broke.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import Future
from typing import Any

from prometheus_client import Counter, Histogram

from services.common.errors import DomainError
from services.common.web.context import current
from services.common.web.refusals import refusal

log = logging.getLogger("tcr.registry.refusals")

_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

GROUP_SUBMISSIONS = Histogram(
    "tcr_registry_writer_group_submissions", "Submissions (requests) the writer ran as one group.",
    buckets=_SIZES,
)  # fmt: skip
GROUP_EVENTS = Histogram(
    "tcr_registry_writer_group_events", "Commands (events) in one writer group.", buckets=_SIZES
)
GROUP_SECONDS = Histogram(
    "tcr_registry_writer_group_seconds",
    "Time from a group's first statement to its answers, commit and any retries included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REFUSALS = Counter(
    "tcr_registry_refusals",
    "Writes the registry refused, by error (conflict, invalid, not_found…) and field.",
    ["error", "field"],
)
CHECKPOINTS = Counter("tcr_registry_checkpoints_issued", "Signed checkpoints stored.")


def watch(future: Future[Any], principal: str) -> None:
    """Count and log a submission's answer when the writer gives it (call when queued, in
    the request's context, whose id the log line then carries)."""
    request = current()
    request_id = request.request_id if request is not None else None

    def answered(done: Future[Any]) -> None:
        error = None if done.cancelled() else done.exception()
        if isinstance(error, DomainError):
            status, body = refusal(error)
            if 400 <= status < 500:
                _refused(principal, body, request_id)

    future.add_done_callback(answered)


def _refused(principal: str, body: dict[str, object], request_id: str | None) -> None:
    error, field = str(body.get("error")), body.get("field")
    # Fields name the model's attributes; digits (a batch index, a list item) are folded so
    # that the series stay few whatever the requests.
    label = re.sub(r"\d+", "N", str(field))[:64] if field is not None else ""
    REFUSALS.labels(error, label).inc()
    log.info(
        "write refused: %s on %s: %s",
        error,
        field,
        body.get("message"),
        extra={
            "rule": error,
            "field": field,
            "index": body.get("index"),
            "principal": principal,
            "request_id": request_id,
        },
    )


def group_done(submissions: int, events: int, seconds: float) -> None:
    GROUP_SUBMISSIONS.observe(submissions)
    GROUP_EVENTS.observe(events)
    GROUP_SECONDS.observe(seconds)


def checkpoint_issued() -> None:
    CHECKPOINTS.inc()
