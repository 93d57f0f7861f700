"""Settings every process reads the same way: how it logs."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class LogSettings(BaseSettings):
    """``TCR_LOG_FORMAT``: json (one object per line, for collectors) or text (for people);
    ``TCR_ACCESS_LOG``: whether a server logs a line per request."""

    model_config = SettingsConfigDict(env_prefix="TCR_", extra="ignore")

    log_format: Literal["json", "text"] = "json"
    access_log: bool = True
