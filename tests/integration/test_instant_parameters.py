"""The shared instant parameters, as any service's route takes them (subsidy: as_of, since)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from services.common.web.api import build_api
from services.common.web.params import optional_instant, required_instant


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    router = APIRouter()

    @router.get("/v1/changes")
    async def changes(
        since: Annotated[datetime, Depends(required_instant("since", "After this"))],
        as_of: Annotated[datetime | None, Depends(optional_instant("as_of", "As known then"))],
    ) -> dict[str, str | None]:
        return {"since": since.isoformat(), "as_of": as_of.isoformat() if as_of else None}

    app = build_api(title="t", description="d", router=router, tokens_file=tmp_path / "t.toml")
    return TestClient(app)


def test_instants_arrive_in_utc(client: TestClient) -> None:
    response = client.get(
        "/v1/changes", params={"since": "2025-03-31T08:00:00+08:00", "as_of": "2025-04-01T00:00Z"}
    )
    assert response.json() == {
        "since": "2025-03-31T00:00:00+00:00",
        "as_of": "2025-04-01T00:00:00+00:00",
    }
    assert client.get("/v1/changes", params={"since": "2025-03-31T00:00Z"}).json()["as_of"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "9999-12-31T23:59:59-14:00"}, "since"),
        ({"since": "2025-01-01T00:00Z", "as_of": "0001-01-01T00:00:00+14:00"}, "as_of"),
        ({"since": "2025-01-01T00:00:00"}, "since"),
        ({}, "since"),
    ],
)
def test_an_unusable_instant_is_a_422_naming_the_parameter(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/v1/changes", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
