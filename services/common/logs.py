"""Logging as every process of the system does it: one line per record, quiet libraries.

Services log JSON, one object per line (``timestamp``, ``level``, ``logger``, ``message``, the
request's id when there is one, and the record's own fields); people at a terminal may prefer
text (``TCR_LOG_FORMAT=text``), which the CLI's one-off commands use.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from services.common.web.context import current

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
Format = Literal["json", "text"]

# The attributes every LogRecord has; anything else was passed as ``extra`` and is logged
# (but uvicorn's copy of its message with terminal colours).
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields (``extra=``), and the id of the request it was logged for."""
    found = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    request = current()
    if request is not None and "request_id" not in found:
        found["request_id"] = request.request_id
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The classic line, its fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in fields(record).items())
        return f"{text} {extra}" if extra else text


def configure_logging(
    log_format: Format = "text", level: int = logging.INFO, access_log: bool = True
) -> None:
    """Log to stderr in ``log_format``; called again, only the format and level change."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_tcr", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._tcr = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.setLevel(level)
    logging.getLogger("tcr.http").setLevel(logging.INFO if access_log else logging.WARNING)
    # kafka-python narrates every connection, httpx every request: keep their warnings only.
    for noisy in ("kafka", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
