"""The subsidy service's settings, read once from the environment at start-up."""

from __future__ import annotations

from pathlib import Path
from secrets import token_urlsafe

from pydantic import Field, SecretStr

from services.common.settings import (
    DatabaseUrl,
    HttpUrl,
    KafkaBootstrap,
    PolicySettings,
    Port,
)


class SubsidySettings(PolicySettings):
    """Its own store, where events come from (Kafka, the registry feed), the policy, and where
    the consumer's metrics are served (``TCR_CONSUMER_METRICS_PORT``; unset, they are not)."""

    subsidy_database_url: DatabaseUrl = SecretStr("sqlite:///var/subsidy.db")
    tokens_file: Path = Path("var/tokens.toml")
    # Finished XLSX exports, kept so the same answer is not written twice (workbook_cache);
    # unset, or a folder that cannot be written, they are not kept. `tcr stack` keeps them
    # under its --var.
    exports_cache_dir: Path | None = None
    kafka_bootstrap: KafkaBootstrap = "127.0.0.1:9092"
    kafka_topic: str = "tcr.events"
    kafka_group: str = "tcr-subsidy"
    registry_url: HttpUrl = "http://127.0.0.1:8000"
    registry_token: SecretStr = SecretStr("")
    # A hole in the chain older than this is filled from the registry feed.
    gap_grace_seconds: float = Field(default=1.0, ge=0)
    consumer_metrics_port: Port | None = None
    metrics_host: str = "127.0.0.1"
    # Seals the finance page's session cookies. Unset, one is drawn when the settings are read:
    # nothing to configure or leak, and a restart signs officers out. The workers of one
    # `tcr subsidy serve` share it (each is handed these settings pickled); replicas behind one
    # address must be given one value, or a cookie sealed by one is refused by the next.
    session_secret: SecretStr = Field(default_factory=lambda: SecretStr(token_urlsafe(32)))
