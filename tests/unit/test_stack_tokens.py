"""The stack's principals: the subsidy feed reads the registry with a service token, not an
auditor's; the audit service reads as an auditor; the demo's stations hold tokens, so the
bureau may register their contracts."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.tokens import (
    DEMO_PRINCIPALS,
    add_principal,
    complete_demo_tokens,
    init_demo_tokens,
    load_principals,
)
from services.demo.population import STATIONS
from services.stack import StackSettings, build_children


def _env_of(children: list[object], name: str) -> dict[str, str]:
    return next(c.env for c in children if c.name == name)  # type: ignore[attr-defined]


def test_the_subsidy_feed_reads_with_the_service_token_and_the_audit_as_an_auditor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TCR_REGISTRY_TOKEN", raising=False)
    settings = StackSettings(var=tmp_path, kafka_bootstrap="127.0.0.1:9092")

    children = build_children(settings)

    saved = dict(
        line.split("=", 1)
        for line in (tmp_path / "local-tokens.txt").read_text(encoding="utf-8").splitlines()
    )
    for name in ("subsidy", "finance"):
        assert _env_of(children, name)["TCR_REGISTRY_TOKEN"] == saved["service"]
    assert _env_of(children, "audit")["TCR_REGISTRY_TOKEN"] == saved["auditor"]
    roles = {p.name: p.role for p in load_principals(tmp_path / "tokens.toml").values()}
    assert roles["service"] == "service"


def test_every_station_of_the_demo_history_holds_a_demo_token() -> None:
    demo_stations = {station for _, role, station in DEMO_PRINCIPALS if role == "station"}

    assert {s.station_id for s in STATIONS} <= demo_stations


def test_a_tokens_file_made_before_the_service_role_gains_the_missing_demo_principals(
    tmp_path: Path,
) -> None:
    path, saved = tmp_path / "tokens.toml", tmp_path / "local-tokens.txt"
    old = {"station-demo": add_principal(path, "station-demo", "station", "S0001")}
    saved.write_text("".join(f"{n}={t}\n" for n, t in old.items()), encoding="utf-8")

    added = complete_demo_tokens(path, saved)

    assert set(added) == {name for name, _, _ in DEMO_PRINCIPALS} - {"station-demo"}
    assert {p.name for p in load_principals(path).values()} == {n for n, _, _ in DEMO_PRINCIPALS}
    assert saved.read_text(encoding="utf-8").count("=") == len(DEMO_PRINCIPALS)
    assert complete_demo_tokens(path, saved) == {}


def test_a_tokens_file_not_made_for_local_use_is_never_completed(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    add_principal(path, "bureau", "bureau")

    assert complete_demo_tokens(path, tmp_path / "local-tokens.txt") == {}
    assert init_demo_tokens(path, tmp_path / "local-tokens.txt") is None
    assert [p.name for p in load_principals(path).values()] == ["bureau"]
