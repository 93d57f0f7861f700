"""The relay's metrics: the position Kafka acknowledged, the log's head, the lag between.

Lag is counted in log positions, never from Kafka's end offsets (the bundled broker answers
those wrongly when several records share a batch).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RELAY_POSITION = Gauge(
    "tcr_relay_position", "Last log position Kafka acknowledged and the relay saved."
)
RELAY_HEAD = Gauge("tcr_relay_log_head", "The registry log's head as the relay last read it.")
RELAY_LAG = Gauge("tcr_relay_lag_events", "Log positions not yet published (head − position).")
RELAY_PUBLISHED = Counter("tcr_relay_published_events", "Events the relay produced to Kafka.")

_relay = {"head": 0, "position": 0}


def relay_at(position: int) -> None:
    """The relay (re)started from, or saved, ``position``."""
    _relay["position"] = position
    RELAY_POSITION.set(position)
    RELAY_LAG.set(max(0, _relay["head"] - position))


def relay_read(head: int) -> None:
    _relay["head"] = head
    RELAY_HEAD.set(head)
    RELAY_LAG.set(max(0, head - _relay["position"]))


def relay_published(position: int, events: int) -> None:
    RELAY_PUBLISHED.inc(events)
    relay_at(position)
