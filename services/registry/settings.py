"""The registry's settings, read once from the environment at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrySettings(BaseSettings):
    """The store, the tokens, the writer's group size, the checkpoint signing key and interval."""

    model_config = SettingsConfigDict(env_prefix="TCR_", extra="ignore")

    registry_database_url: str = "sqlite:///var/registry.db"
    tokens_file: Path = Path("var/tokens.toml")
    registry_max_group_events: int = 2000
    signing_key_file: Path = Path("var/registry-signing-key.pem")
    checkpoint_every: int = 1000


class RelaySettings(BaseSettings):
    """The relay: the registry's store to follow, the Kafka topic to publish to, and where its
    metrics are served (``TCR_RELAY_METRICS_PORT``; unset, they are not)."""

    model_config = SettingsConfigDict(env_prefix="TCR_", extra="ignore")

    registry_database_url: str = "sqlite:///var/registry.db"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic: str = "tcr.events"
    kafka_partitions: int = 3
    relay_metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
