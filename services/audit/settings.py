"""The audit service's settings, read once from the environment at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.audit.verify import DEFAULT_CHECKPOINT_EVERY


class AuditSettings(BaseSettings):
    """Who may call, where the live history and finance's answers come from, and the policy."""

    model_config = SettingsConfigDict(env_prefix="TCR_", extra="ignore")

    tokens_file: Path = Path("var/tokens.toml")
    registry_url: str = "http://127.0.0.1:8000"
    registry_token: str = ""
    subsidy_url: str = "http://127.0.0.1:8001"
    # Empty: the registry token is used (an auditor token reads both services).
    subsidy_token: str = ""
    policy_file: Path | None = None
    # The registry's own setting: a longer tail after the last signed checkpoint fails verify.
    checkpoint_every: int = Field(default=DEFAULT_CHECKPOINT_EVERY, ge=1)
