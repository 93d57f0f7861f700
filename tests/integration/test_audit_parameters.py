"""The audit API refuses parameters it cannot use with a 422 naming them, before reading the log.

The app is not started and its registry address leads nowhere: a refusal must not need either.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.audit.app import create_app
from services.audit.settings import AuditSettings
from services.common.tokens import add_principal


@pytest.fixture
def auditor(tmp_path: Path) -> TestClient:
    tokens = tmp_path / "tokens.toml"
    token = add_principal(tokens, "auditor", "auditor")
    app = create_app(AuditSettings(tokens_file=tokens, registry_url="http://127.0.0.1:9"))
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"as_of": "9999-12-31T23:59:59-14:00"}, "as_of"),
        ({"as_of": "0001-01-01T00:00:00+14:00"}, "as_of"),
        ({"as_of": "2025-03-31T00:00:00"}, "as_of"),
        ({"as_of": "not a time"}, "as_of"),
        ({"until": str(2**63)}, "until"),
        ({"until": "-1"}, "until"),
    ],
)
def test_replay_refuses_an_unusable_parameter_with_422_naming_it(
    auditor: TestClient, params: dict[str, str], field: str
) -> None:
    response = auditor.get("/v1/replay", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid"
    assert body["field"] == field
    assert body["message"]
