"""The audit service's settings, read once from the environment at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from services.audit.verify import DEFAULT_CHECKPOINT_EVERY
from services.common.settings import HttpUrl, PolicySettings, PositiveInt


class VerifySettings(PolicySettings):
    """What ``tcr audit`` reads besides its options: the policy, and ``TCR_CHECKPOINT_EVERY``
    (the registry's own setting: a longer tail after the last signed checkpoint fails verify)."""

    checkpoint_every: PositiveInt = DEFAULT_CHECKPOINT_EVERY


class AuditSettings(VerifySettings):
    """Who may call, where the live history and finance's answers come from, and the policy."""

    tokens_file: Path = Path("var/tokens.toml")
    registry_url: HttpUrl = "http://127.0.0.1:8000"
    registry_token: SecretStr = SecretStr("")
    subsidy_url: HttpUrl = "http://127.0.0.1:8001"
    # Empty: the registry token is used (an auditor token reads both services).
    subsidy_token: SecretStr = SecretStr("")
