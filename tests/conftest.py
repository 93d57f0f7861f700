"""Fixtures: every registry test runs on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.common.tokens import add_principal
from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from tests.support.databases import fresh_postgres_database


@pytest.fixture(scope="session", autouse=True)
def working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The whole run sees none of the developer's ``TCR_*`` variables and works in an empty
    folder, so a setting left at its default (``var/…``) never lands in the checkout."""
    folder = tmp_path_factory.mktemp("working-directory")
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("TCR_")]:
            patch.delenv(name)
        patch.chdir(folder)
        yield folder


@pytest.fixture(autouse=True)
def writes_only_under_tmp_path(working_directory: Path) -> Iterator[None]:
    """A test that writes into the working directory (a path left at its default) fails,
    naming what it wrote; the folder is emptied so that the next test is judged alone."""
    yield
    stray = sorted(str(p.relative_to(working_directory)) for p in working_directory.rglob("*"))
    for path in working_directory.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    assert not stray, f"written outside tmp_path, at a default path: {', '.join(stray)}"


# Screenshots of pages, kept for a person to look at after the run: the one place a test writes
# into the checkout, on purpose (var/ is ignored by git).
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where page tests leave their screenshots: ``var/screenshots/`` of the checkout."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty event store: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


@dataclass
class Tokens:
    station: str  # station S1
    other_station: str  # station S2
    bureau: str
    finance: str
    auditor: str
    service: str  # the subsidy feed's reader of the registry
    path: Path

    def header(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, who)}"}


def make_tokens(folder: Path) -> Tokens:
    """A tokens file in ``folder`` with one principal of each role (two stations)."""
    path = folder / "tokens.toml"
    return Tokens(
        station=add_principal(path, "station-s1", "station", "S1"),
        other_station=add_principal(path, "station-s2", "station", "S2"),
        bureau=add_principal(path, "bureau", "bureau"),
        finance=add_principal(path, "finance", "finance"),
        auditor=add_principal(path, "auditor", "auditor"),
        service=add_principal(path, "service", "service"),
        path=path,
    )


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return make_tokens(tmp_path)


@pytest.fixture
def client(database_url: str, tokens: Tokens) -> Iterator[TestClient]:
    """The registry's HTTP API over a real store, as the station S1 by default."""
    settings = RegistrySettings(
        registry_database_url=database_url,
        tokens_file=tokens.path,
        signing_key_file=tokens.path.with_name("signing-key.pem"),
    )
    with TestClient(create_app(settings), headers=tokens.header("station")) as test_client:
        yield test_client


@pytest.fixture
def reader(client: TestClient, tokens: Tokens) -> TestClient:
    """The same registry as ``client``, read as the auditor: the log and the proofs of its
    entries hold every station's contracts, so a station may not read them."""
    return TestClient(client.app, headers=tokens.header("auditor"))
