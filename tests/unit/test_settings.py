"""Settings: read from TCR_* once, checked then, secrets kept out of sight, and a value given to
the constructor (a command-line option) outranking the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.audit.settings import AuditSettings
from services.registry.settings import RegistrySettings, RelaySettings
from services.subsidy.settings import SubsidySettings

PASSWORD = "s3cret-pw"
PRODUCTION_URL = f"postgresql+psycopg://postgres:{PASSWORD}@postgres:5432/registry"


def refusal(monkeypatch: pytest.MonkeyPatch, settings: type[object], **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        settings()
    return str(refused.value)


def test_a_database_password_is_kept_out_of_the_settings_repr() -> None:
    settings = RegistrySettings(registry_database_url=PRODUCTION_URL)

    assert PASSWORD not in repr(settings)
    assert settings.registry_database_url.get_secret_value() == PRODUCTION_URL


def test_tokens_are_kept_out_of_the_settings_repr() -> None:
    settings = AuditSettings(registry_token="tok-registry", subsidy_token="tok-subsidy")

    assert "tok-" not in repr(settings)


def test_a_database_url_that_is_no_url_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = refusal(
        monkeypatch, RegistrySettings, TCR_REGISTRY_DATABASE_URL=f"postgres:{PASSWORD}@postgres"
    )

    assert "registry_database_url" in refused
    assert "must be a database URL" in refused
    assert PASSWORD not in refused


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://registry", "http://"])
def test_a_service_url_must_be_http(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    refused = refusal(monkeypatch, SubsidySettings, TCR_REGISTRY_URL=url)

    assert "registry_url" in refused
    assert "must be an http(s) URL" in refused


@pytest.mark.parametrize("bootstrap", ["kafka", "kafka:port", "kafka:9092,:9093", "kafka:70000"])
def test_a_kafka_bootstrap_must_be_hosts_and_ports(
    monkeypatch: pytest.MonkeyPatch, bootstrap: str
) -> None:
    refused = refusal(monkeypatch, RelaySettings, TCR_KAFKA_BOOTSTRAP=bootstrap)

    assert "kafka_bootstrap" in refused


def test_several_kafka_brokers_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TCR_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")

    assert RelaySettings().kafka_bootstrap == "kafka-1:9092,kafka-2:9092"


@pytest.mark.parametrize(
    ("settings", "variable", "value"),
    [
        (RelaySettings, "TCR_RELAY_METRICS_PORT", "0"),
        (SubsidySettings, "TCR_CONSUMER_METRICS_PORT", "65536"),
        (RegistrySettings, "TCR_CHECKPOINT_EVERY", "0"),
        (RegistrySettings, "TCR_REGISTRY_MAX_GROUP_EVENTS", "-5"),
        (RelaySettings, "TCR_KAFKA_PARTITIONS", "0"),
        (AuditSettings, "TCR_CHECKPOINT_EVERY", "0"),
        (SubsidySettings, "TCR_GAP_GRACE_SECONDS", "-1"),
    ],
)
def test_ports_and_counts_out_of_range_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, settings: type[object], variable: str, value: str
) -> None:
    refused = refusal(monkeypatch, settings, **{variable: value})

    assert variable.removeprefix("TCR_").lower() in refused


def test_a_value_given_to_the_constructor_outranks_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TCR_REGISTRY_DATABASE_URL", "sqlite:///from-the-environment.db")
    monkeypatch.setenv("TCR_CHECKPOINT_EVERY", "7")

    settings = RegistrySettings(registry_database_url="sqlite:///given.db")

    assert settings.registry_database_url.get_secret_value() == "sqlite:///given.db"
    assert settings.checkpoint_every == 7
