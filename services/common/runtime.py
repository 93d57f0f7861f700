"""Process-wide settings of a long-running service."""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable
from typing import Any

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


def serve(app_factory: str, args: Any) -> int:
    """Serve an ASGI application factory (``module:function``) with the CLI's --host, --port,
    --workers, --log-level and --no-access-log."""
    import uvicorn

    uvicorn.run(
        app_factory,
        factory=True,
        host=args.host,
        port=args.port,
        workers=getattr(args, "workers", 1),
        log_level=args.log_level,
        access_log=getattr(args, "access_log", True),
    )
    return 0


def run_until_signalled(run: Callable[[threading.Event], None]) -> None:
    """Run a long-lived loop until SIGINT or SIGTERM sets its stop event."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    settle_heap()
    run(stop)
