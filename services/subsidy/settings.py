"""The subsidy service's settings, read once from the environment at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class SubsidySettings(BaseSettings):
    """Its own store, where events come from (Kafka, the registry feed), the policy, and where
    the consumer's metrics are served (``TCR_CONSUMER_METRICS_PORT``; unset, they are not)."""

    model_config = SettingsConfigDict(env_prefix="TCR_", extra="ignore")

    subsidy_database_url: str = "sqlite:///var/subsidy.db"
    tokens_file: Path = Path("var/tokens.toml")
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic: str = "tcr.events"
    kafka_group: str = "tcr-subsidy"
    registry_url: str = "http://127.0.0.1:8000"
    registry_token: str = ""
    policy_file: Path | None = None
    # A hole in the chain older than this is filled from the registry feed.
    gap_grace_seconds: float = 1.0
    consumer_metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
