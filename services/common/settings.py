"""What every service's settings share: read from ``TCR_*`` variables once, at start-up, and
checked then; a command-line option is passed to the constructor, where it outranks the
environment (nothing writes the environment)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # imported where used: a command that reads only a token needs no policy
    from services.common.policy.model import Policy


def _database_url(url: SecretStr) -> SecretStr:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url.get_secret_value())
    except ArgumentError:
        raise ValueError(
            "must be a database URL such as sqlite:///var/registry.db or "
            "postgresql+psycopg://user@host:5432/name"
        ) from None
    return url


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as http://127.0.0.1:8000")
    return url


def _bootstrap(servers: str) -> str:
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, or several separated by commas")
    return servers


# A URL that may carry a password (PostgreSQL's, in production): kept out of reprs and logs.
DatabaseUrl = Annotated[SecretStr, AfterValidator(_database_url)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
KafkaBootstrap = Annotated[str, AfterValidator(_bootstrap)]
Port = Annotated[int, Field(ge=1, le=65535)]
PositiveInt = Annotated[int, Field(ge=1)]


class TcrSettings(BaseSettings):
    """``TCR_<FIELD>`` for each field; one environment serves every service, so variables of
    the others are ignored. A bad value stops the start naming the variable and the rule,
    without echoing what was given (it may be a secret)."""

    model_config = SettingsConfigDict(env_prefix="TCR_", extra="ignore", hide_input_in_errors=True)


class LogSettings(TcrSettings):
    """``TCR_LOG_FORMAT``: json (one object per line, for collectors) or text (for people);
    ``TCR_ACCESS_LOG``: whether a server logs a line per request."""

    log_format: Literal["json", "text"] = "json"
    access_log: bool = True


class TokenSettings(TcrSettings):
    """``TCR_TOKEN``: the bearer token a command-line client sends."""

    token: SecretStr = SecretStr("")


class PolicySettings(TcrSettings):
    """``TCR_POLICY_FILE``: the policy in force; unset, the bundled Pingdingshan 2020 plan."""

    policy_file: Path | None = None

    def policy(self) -> Policy:
        """The policy in force: every entry point (APIs, consumer, CLI, stack) takes it here."""
        from services.common.policy.loader import load_policy

        return load_policy(self.policy_file)
