"""The finance API in-process over a subsidy store."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.subsidy.settings import SubsidySettings
from tests.conftest import Tokens


def finance_client(store_url: str, tokens: Tokens) -> TestClient:
    """A client of the finance API over the store at ``store_url``, as finance."""
    # Imported here, after tests.support.stack has imported kafka-python with its import-time
    # DeprecationWarning silenced (pytest turns warnings into errors).
    from services.subsidy.app import create_app

    settings = SubsidySettings(
        subsidy_database_url=store_url,
        tokens_file=tokens.path,
        registry_url="http://127.0.0.1:9",  # no registry: health reports its head unknown
    )
    return TestClient(create_app(settings), headers=tokens.header("finance"))
