"""Logging as every process of the system does it: one line per record, quiet libraries."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr once per process (uvicorn workers included)."""
    root = logging.getLogger()
    if not any(getattr(h, "_tcr", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler._tcr = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(level)
    # kafka-python narrates every connection, httpx every request: keep their warnings only.
    for noisy in ("kafka", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
