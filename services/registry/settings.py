"""The registry's settings, read once from the environment at start-up."""

from __future__ import annotations

from pathlib import Path
from secrets import token_urlsafe

from pydantic import Field, SecretStr

from services.common.settings import (
    DatabaseUrl,
    KafkaBootstrap,
    PolicySettings,
    Port,
    PositiveInt,
    TcrSettings,
)

DEFAULT_DATABASE_URL = SecretStr("sqlite:///var/registry.db")


class RegistrySettings(PolicySettings):
    """The store, the tokens, the writer's group size, the checkpoint signing key and interval,
    the policy (whose years a payout may be of) and the station page's session secret."""

    registry_database_url: DatabaseUrl = DEFAULT_DATABASE_URL
    tokens_file: Path = Path("var/tokens.toml")
    registry_max_group_events: PositiveInt = 2000
    signing_key_file: Path = Path("var/registry-signing-key.pem")
    checkpoint_every: PositiveInt = 1000
    # Seals the station page's session cookies. Unset, one is drawn when the settings are read
    # (a restart signs clerks out); replicas behind one address must be given one value.
    session_secret: SecretStr = Field(default_factory=lambda: SecretStr(token_urlsafe(32)))


class RelaySettings(TcrSettings):
    """The relay: the registry's store to follow, the Kafka topic to publish to, and where its
    metrics are served (``TCR_RELAY_METRICS_PORT``; unset, they are not)."""

    registry_database_url: DatabaseUrl = DEFAULT_DATABASE_URL
    kafka_bootstrap: KafkaBootstrap = "127.0.0.1:9092"
    kafka_topic: str = "tcr.events"
    kafka_partitions: PositiveInt = 3
    relay_metrics_port: Port | None = None
    metrics_host: str = "127.0.0.1"
