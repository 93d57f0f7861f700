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
    from services.common.policy.schedule import PolicySchedule


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
    """``TCR_POLICY_DIR``: the folder of policy files, one per version, each with the turnover
    years it applies to; unset, the bundled ``schemas/policy/``. ``TCR_POLICY_FILE``: a single
    policy file for all its years instead (not both)."""

    policy_dir: Path | None = None
    policy_file: Path | None = None

    def schedule(self) -> PolicySchedule:
        """The policy schedule in force: every entry point (APIs, consumer, CLI, stack) takes it
        here; a folder whose versions overlap or leave a gap stops the start naming the files."""
        from services.common.policy.loader import schedule_from_texts

        return schedule_from_texts(self.policy_files())

    def policy_files(self) -> dict[str, str]:
        """The text of each policy file in force, by file name (what an audit bundle carries)."""
        from services.common.policy.loader import policy_dir, policy_texts

        if self.policy_file is not None and self.policy_dir is not None:
            raise ValueError("give TCR_POLICY_DIR or TCR_POLICY_FILE, not both")
        if self.policy_file is not None:
            return {self.policy_file.name: self.policy_file.read_text("utf-8")}
        return policy_texts(self.policy_dir or policy_dir())
