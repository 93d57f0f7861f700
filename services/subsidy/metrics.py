"""The subsidy consumer's metrics: how far it has applied the log, and how far behind it is.

Lag is counted in log positions against the highest head known (the registry feed's answer,
or the highest position delivered), never from Kafka's end offsets, which the bundled broker
answers wrongly when several records share a batch.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge

APPLIED = Gauge("tcr_consumer_applied_position", "The subsidy store's applied log position.")
HEAD = Gauge("tcr_consumer_log_head", "The highest registry log position the consumer knows of.")
LAG = Gauge("tcr_consumer_lag_events", "Log positions known but not yet applied (head − applied).")
DELIVERED = Counter(
    "tcr_consumer_delivered_events", "Envelopes handed to the store, by source (kafka, feed).",
    ["source"],
)  # fmt: skip

SKIPPED = Counter(
    "tcr_consumer_skipped_events",
    "Entries of event types this consumer does not know, applied as nothing, by type.",
    ["type"],
)

_known = {"head": 0, "applied": 0}


def applied(position: int, seen: int) -> None:
    """The store applied up to ``position``; ``seen`` is the highest position delivered."""
    _known["applied"] = position
    APPLIED.set(position)
    registry_head(seen)


def registry_head(head: int) -> None:
    _known["head"] = max(_known["head"], head)
    HEAD.set(_known["head"])
    LAG.set(max(0, _known["head"] - _known["applied"]))


def delivered(source: str, count: int) -> None:
    DELIVERED.labels(source).inc(count)


def skipped(by_type: Mapping[str, int]) -> None:
    """Entries of unknown types were applied as nothing (committed)."""
    for kind, count in by_type.items():
        SKIPPED.labels(kind).inc(count)
