"""Settings reach every entry point: the policy folder (``TCR_POLICY_DIR``) or file
(``TCR_POLICY_FILE``) named is the one
the audit's commands, the subsidy consumer and the stack compute with, and a command-line option
reaches the server it configures without passing through the environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from fractions import Fraction
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from services.audit.settings import AuditSettings
from services.cli import main
from services.common.settings import PolicySettings
from services.common.web import api
from services.registry.settings import RegistrySettings
from services.stack import StackSettings
from services.subsidy.app import create_projector
from services.subsidy.settings import SubsidySettings
from tests.conftest import make_tokens
from tests.support.broker import free_port
from tests.support.policy_facts import LOCAL_FIRM, contract, contract_events, numbered
from tests.support.policy_versions import two_versions

TCR = str(Path(sys.executable).with_name("tcr"))
BUNDLED = (files("services.schemas") / "policy" / "pingdingshan-2020.toml").read_text("utf-8")


@pytest.fixture
def doubled_absorption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``TCR_POLICY_FILE``: the bundled plan with an absorption rate of 20 % instead of 10 %."""
    rate = r'(\[categories\.absorption\].*\nrate = )"0\.10"'
    doubled, changed = re.subn(rate, r'\1"0.20"', BUNDLED)
    assert changed == 1
    path = tmp_path / "policy.toml"
    path.write_text(doubled, "utf-8")
    monkeypatch.setenv("TCR_POLICY_FILE", str(path))
    return path


def test_tcr_audit_replay_computes_with_the_policy_file(
    doubled_absorption: Path, tmp_path: Path
) -> None:
    bought = contract(buyer=LOCAL_FIRM, settled=[(contract().registered_on, 1_200_000_00)])
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    lines = [json.dumps(e, ensure_ascii=False) for e in numbered(contract_events(bought))]
    (bundle / "events.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    (bundle / "checkpoints.json").write_text("[]", "utf-8")
    (bundle / "public-key.pem").write_text("", "utf-8")
    out = tmp_path / "replay.json"

    assert main(["audit", "replay", str(bundle), "--no-verify", "--out", str(out)]) == 0
    replayed: dict[str, Any] = json.loads(out.read_text("utf-8"))

    absorption = [e for e in replayed["years"]["2024"] if e["category"] == "absorption"]
    assert [e["entitlement"] for e in absorption] == ["240000.00"]


def test_the_subsidy_consumer_computes_with_the_policy_file(
    doubled_absorption: Path, tmp_path: Path
) -> None:
    _, store, feed = create_projector(
        SubsidySettings(subsidy_database_url=f"sqlite:///{tmp_path / 'subsidy.db'}")
    )
    try:
        assert store.schedule.for_year(2024).categories["absorption"].rate == Fraction(1, 5)
    finally:
        feed.close()
        store.close()


ENTRY_POINTS = [PolicySettings, SubsidySettings, AuditSettings, StackSettings]


@pytest.mark.parametrize("settings", ENTRY_POINTS)
def test_every_entry_points_settings_give_the_policy_file(
    doubled_absorption: Path, settings: type[PolicySettings]
) -> None:
    assert settings().schedule().for_year(2024).categories["absorption"].rate == Fraction(1, 5)


@pytest.mark.parametrize("settings", [*ENTRY_POINTS, RegistrySettings])
def test_every_entry_points_settings_give_the_policy_folder_year_by_year(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: type[PolicySettings]
) -> None:
    monkeypatch.setenv("TCR_POLICY_DIR", str(two_versions(tmp_path / "policy")))

    schedule = settings().schedule()

    assert (schedule.version_of(2023), schedule.version_of(2024)) == (
        "pingdingshan-2020.1",
        "pingdingshan-2024.1",
    )


def test_a_policy_folder_and_a_policy_file_together_are_refused(
    tmp_path: Path, doubled_absorption: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TCR_POLICY_DIR", str(two_versions(tmp_path / "policy")))

    with pytest.raises(ValueError, match="TCR_POLICY_DIR or TCR_POLICY_FILE, not both"):
        PolicySettings().schedule()


def test_without_a_policy_file_the_bundled_plan_is_in_force() -> None:
    assert PolicySettings().schedule().for_year(2024).categories["absorption"].rate == Fraction(
        1, 10
    )


def test_the_database_url_option_reaches_the_registry_and_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Any] = []
    monkeypatch.setattr(api, "server_app", lambda create_app, settings, log_settings: settings)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: built.append(app()))
    monkeypatch.setenv("TCR_REGISTRY_DATABASE_URL", f"sqlite:///{tmp_path / 'from-env.db'}")
    given = f"sqlite:///{tmp_path / 'given.db'}"
    environment = dict(os.environ)

    assert main(["registry", "serve", "--database-url", given]) == 0

    assert [s.registry_database_url.get_secret_value() for s in built] == [given]
    assert dict(os.environ) == environment


def test_two_registry_workers_use_the_database_url_option_over_the_environment(
    tmp_path: Path,
) -> None:
    tokens = make_tokens(tmp_path)
    port = free_port()
    env = {
        **os.environ,
        "TCR_TOKENS_FILE": str(tokens.path),
        "TCR_SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem"),
        "TCR_REGISTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'from-env.db'}",
    }
    argv = [TCR, "registry", "serve", "--port", str(port), "--workers", "2", "--no-access-log"]
    argv += ["--database-url", f"sqlite:///{tmp_path / 'given.db'}"]
    log = tmp_path / "registry.log"
    with log.open("wb") as out:
        server = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=out)
    try:
        answered = []
        deadline = time.monotonic() + 30
        while len(answered) < 4 and time.monotonic() < deadline:  # both workers, most likely
            try:
                answered.append(httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code)
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=20)

    assert answered == [200] * 4, log.read_text()
    assert (tmp_path / "given.db").exists()
    assert not (tmp_path / "from-env.db").exists()
