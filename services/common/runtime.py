"""Process-wide settings of a long-running service."""

from __future__ import annotations

import gc
import os
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
    --workers, --log-level and --no-access-log.

    Uvicorn's own records go through our handler (JSON by default) and its access log stays
    off: the application logs each request itself, with its id, route, principal and duration.
    """
    import uvicorn

    from services.common.logs import configure_logging
    from services.common.metrics import prepare_workers
    from services.common.settings import LogSettings

    if not getattr(args, "access_log", True):
        os.environ["TCR_ACCESS_LOG"] = "false"  # the workers read their settings again
    log_settings = LogSettings()
    configure_logging(log_settings.log_format, access_log=log_settings.access_log)
    workers = getattr(args, "workers", 1)
    remove_metrics_folder = prepare_workers(workers)
    try:
        uvicorn.run(
            app_factory,
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            log_level=args.log_level,
            log_config=None,
            access_log=False,
        )
    finally:
        remove_metrics_folder()
    return 0


def run_until_signalled(run: Callable[[threading.Event], None]) -> None:
    """Run a long-lived loop until SIGINT or SIGTERM sets its stop event."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    settle_heap()
    run(stop)
