"""Log lines: JSON for collectors, text for people, the request's id on both."""

from __future__ import annotations

import contextvars
import logging

import orjson
import pytest

from services.common.logs import JsonFormatter, TextFormatter
from services.common.settings import LogSettings
from services.common.web import context


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("tcr.test", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_json_line_holds_time_level_logger_message_and_the_records_fields() -> None:
    line = orjson.loads(JsonFormatter().format(record("stored %s", status=201)))
    assert line["level"] == "INFO" and line["logger"] == "tcr.test"
    assert line["message"] == "stored %s"
    assert line["status"] == 201
    assert line["timestamp"].endswith("+00:00")


def test_a_line_logged_while_serving_a_request_carries_its_id() -> None:
    def serving() -> tuple[str, str]:
        context.begin("req-7")
        return JsonFormatter().format(record("hello")), TextFormatter().format(record("hello"))

    as_json, as_text = contextvars.copy_context().run(serving)  # as each request has its own
    assert orjson.loads(as_json)["request_id"] == "req-7"
    assert as_text.endswith("hello request_id=req-7")
    assert "request_id" not in orjson.loads(JsonFormatter().format(record("after")))


def test_services_log_json_unless_told_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TCR_LOG_FORMAT", raising=False)
    assert LogSettings().log_format == "json"
    monkeypatch.setenv("TCR_LOG_FORMAT", "text")
    assert LogSettings().log_format == "text"
    monkeypatch.setenv("TCR_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        LogSettings()
