"""The wheel alone runs the system: built from the checkout, installed (not editable) into a
fresh virtual environment, and run from a folder outside the checkout, it finds its schemas and
its policy, serves the registry, and exports and verifies a history.

Its dependencies come from the package index as for any user (pip's cache makes a second run
quick: about 30 s in all here).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Tokens, make_tokens
from tests.support.broker import free_port
from tests.support.parties import broker_body, contract_body

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["pyproject.toml", "README.md", "services", "schemas"]


# What the installed commands see: no PYTHONPATH, no variable of ours, nothing of the checkout.
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}"
    return done


def checkout_files() -> set[str]:
    """Every module and data file of the checkout, named as the wheel names them."""
    ignored = ("__pycache__", ".pyc")
    names = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "services").rglob("*")
        if path.is_file() and not any(part in str(path) for part in ignored)
    }
    names |= {
        f"services/schemas/{path.relative_to(ROOT / 'schemas')}"
        for path in (ROOT / "schemas").rglob("*")
        if path.is_file() and not any(part in str(path) for part in ignored)
    }
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout (a build writes build/ beside its sources)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), "."], source)
    (built,) = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def tcr(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tcr`` of a fresh virtual environment holding the wheel and its dependencies only."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], venv)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)], venv)
    return venv / "bin" / "tcr"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """An empty working directory, far from the checkout."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_the_wheel_holds_every_module_schema_and_policy_file_of_the_checkout(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())

    assert checkout_files() - shipped == set()


def test_the_installed_command_runs_from_its_environment_not_from_the_checkout(
    tcr: Path, outside: Path
) -> None:
    python = tcr.with_name("python")
    imported = "import services; print(services.__file__)"
    where = run([str(python), "-c", imported], outside, CLEAN_ENV)

    assert run([str(tcr), "--help"], outside, CLEAN_ENV).stdout.startswith("usage: tcr")
    assert Path(where.stdout.strip()).is_relative_to(tcr.parents[1])


@pytest.fixture
def served(tcr: Path, outside: Path, tmp_path: Path) -> Iterator[tuple[str, Tokens]]:
    """``tcr registry serve`` of the wheel on a SQLite file, a checkpoint every two entries."""
    tokens = make_tokens(tmp_path)
    port = free_port()
    env = {
        **CLEAN_ENV,
        "TCR_TOKENS_FILE": str(tokens.path),
        "TCR_SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem"),
        "TCR_CHECKPOINT_EVERY": "2",
    }
    argv = [str(tcr), "registry", "serve", "--port", str(port), "--no-access-log"]
    argv += ["--database-url", f"sqlite:///{tmp_path / 'registry.db'}"]
    log = tmp_path / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=outside, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"{url}/v1/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the registry did not answer /v1/health:\n{log.read_text()}")
            time.sleep(0.1)
        yield url, tokens
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


def test_the_installed_registry_serves_and_its_exported_history_verifies(
    tcr: Path, served: tuple[str, Tokens], outside: Path
) -> None:
    url, tokens = served
    with httpx.Client(base_url=url, headers=tokens.header("bureau")) as bureau:
        filed = bureau.post("/v1/brokers", json=broker_body("B-0001"))
        assert filed.status_code == 201, filed.text
    with httpx.Client(base_url=url, headers=tokens.header("station")) as station:
        registered = station.post("/v1/contracts", json=contract_body(brokers=["B-0001"]))
        assert registered.status_code == 201, registered.text
    with httpx.Client(base_url=url, headers=tokens.header("auditor")) as auditor:
        deadline = time.monotonic() + 20
        while not auditor.get("/v1/checkpoints").json():
            assert time.monotonic() < deadline, "no checkpoint was signed"
            time.sleep(0.1)

    def tcr_audit(*args: str) -> str:
        return run([str(tcr), "audit", *args], outside, CLEAN_ENV).stdout

    tcr_audit("export", "--registry", url, "--token", tokens.auditor, "--out", "bundle")
    verified = tcr_audit("verify", "bundle", "--checkpoint-every", "2")
    tcr_audit("report", "bundle", "--year", "2024", "--out", "report", "--checkpoint-every", "2")

    assert verified.startswith("verified: 2 entries"), verified
    assert (outside / "report" / "report.html").stat().st_size > 0
    assert sorted(p.name for p in outside.iterdir()) == ["bundle", "report"]
