"""Policy over time: a folder of policy files, one version per range of turnover years.

A 2024 version leaves 2020–2023 byte-identical and changes 2024 exactly as worked by hand
below; a folder whose versions overlap, leave a gap or repeat a version stops the start; a draft
simulated on the real history equals what a finance service with the draft in force serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.audit.replay import replay
from services.common.errors import NotFound
from services.common.policy.facts import FactsBuilder
from services.common.policy.loader import load_schedule
from services.common.settings import PolicySettings
from services.subsidy.application import Subsidy
from services.subsidy.balances import Balances
from services.subsidy.settings import SubsidySettings
from services.subsidy.simulations import Simulations
from services.subsidy.store import EntryStore
from tests.conftest import Tokens
from tests.support.policy_facts import (
    LOCAL_FIRM,
    LOCAL_UNIVERSITY,
    OUTSIDE_FIRM,
    YUAN,
    broker,
    broker_filed,
    contract,
    contract_events,
    numbered,
)
from tests.support.policy_versions import BUNDLED, FROM_2024, UNTIL_2023, version
from tests.support.policy_versions import two_versions as policy_folder

BROKER = "B-0001"

# A known-answer history, worked by hand below.
# C1: an outside firm sells to a local firm, registered 2023, one broker filed in 2022;
#     600,000 yuan paid and invoiced in 2023, 800,000 in 2024.
# C2: a local university sells to the same local firm, registered 2024; 3,000,000 in 2024
#     (output for the university; no absorption, the seller being local).
C1 = contract(
    "2023410400000001",
    seller=OUTSIDE_FIRM,
    buyer=LOCAL_FIRM,
    registered_on=date(2023, 3, 1),
    brokers=[BROKER],
    amount_fen=2_000_000 * YUAN,
    settled=[(date(2023, 5, 1), 600_000 * YUAN), (date(2024, 5, 1), 800_000 * YUAN)],
)
C2 = contract(
    "2024410400000002",
    seller=LOCAL_UNIVERSITY,
    buyer=LOCAL_FIRM,
    registered_on=date(2024, 2, 1),
    amount_fen=4_000_000 * YUAN,
    settled=[(date(2024, 6, 1), 3_000_000 * YUAN)],
)
LOG = numbered(
    [broker_filed(broker(BROKER, date(2022, 1, 10))), *contract_events(C1), *contract_events(C2)]
)


# By hand. 2023, under pingdingshan-2020.1 (10 %, 10 %, 1 %):
#   absorption, the local firm: 600,000 × 10 % = 60,000.00;  broker: 600,000 × 1 % = 6,000.00.
# 2024, under pingdingshan-2024.1 (15 % capped at 100,000; 20 % capped at 400,000; 2 %):
#   absorption: C1's 800,000 × 15 % = 120,000.00, capped to 100,000.00 (C2 left out: seller local)
#   output, the university: 3,000,000 × 20 % = 600,000.00, capped to 400,000.00
#   broker: 800,000 × 2 % = 16,000.00
# 2024 under the bundled policy alone: 80,000.00, 300,000.00 and 8,000.00.
HAND_2023 = {
    ("absorption", LOCAL_FIRM.credit_code): ("60000.00", "60000.00", False),
    ("broker", BROKER): ("6000.00", "6000.00", False),
}
HAND_2024 = {
    ("absorption", LOCAL_FIRM.credit_code): ("120000.00", "100000.00", True),
    ("output", LOCAL_UNIVERSITY.credit_code): ("600000.00", "400000.00", True),
    ("broker", BROKER): ("16000.00", "16000.00", False),
}


def amounts(answer: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str, bool]]:
    return {
        (e["category"], e["beneficiary"]): (e["gross"], e["entitlement"], e["capped"])
        for e in answer["entitlements"]
    }


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    return policy_folder(tmp_path / "policy")


@pytest.fixture
def stores(
    database_url: str, tmp_path: Path, two_versions: Path
) -> Iterator[tuple[EntryStore, EntryStore]]:
    """The same log in two stores: under the bundled policy alone (a SQLite file, or a
    PostgreSQL database), and under two versions."""
    one = EntryStore(database_url, load_schedule())
    two = EntryStore(
        f"sqlite:///{tmp_path / 'two.db'}", PolicySettings(policy_dir=two_versions).schedule()
    )
    try:
        for store in (one, two):
            store.add(LOG)
        yield one, two
    finally:
        one.close()
        two.close()


def test_a_2024_version_leaves_every_earlier_answer_byte_identical(
    stores: tuple[EntryStore, EntryStore],
) -> None:
    one, two = (Subsidy(s, s.schedule) for s in stores)
    balances = [Balances(s, s.schedule) for s in stores]

    for year in range(2020, 2024):
        assert json.dumps(two.entitlements(year)) == json.dumps(one.entitlements(year))
        assert json.dumps(balances[1].balances(year)) == json.dumps(balances[0].balances(year))
    for code in (LOCAL_FIRM.credit_code, BROKER):
        assert json.dumps(two.beneficiary(code, 2023)) == json.dumps(one.beneficiary(code, 2023))
    assert amounts(two.entitlements(2023)) == HAND_2023


def test_2024_is_computed_under_its_own_version_as_worked_by_hand(
    stores: tuple[EntryStore, EntryStore],
) -> None:
    one, two = (Subsidy(s, s.schedule) for s in stores)

    answer = two.entitlements(2024)
    assert answer["policy_version"] == "pingdingshan-2024.1"
    assert amounts(answer) == HAND_2024
    assert {k: v[1] for k, v in amounts(one.entitlements(2024)).items()} == {
        ("absorption", LOCAL_FIRM.credit_code): "80000.00",
        ("output", LOCAL_UNIVERSITY.credit_code): "300000.00",
        ("broker", BROKER): "8000.00",
    }
    [explained] = two.beneficiary(LOCAL_FIRM.credit_code, 2024)["entitlements"]
    assert (explained["rate"], explained["cap"]) == ("0.15", "100000.00")
    assert explained["policy_version"] == "pingdingshan-2024.1"
    assert two.entitlements(2023)["policy_version"] == "pingdingshan-2020.1"
    assert Balances(stores[1], stores[1].schedule).draft(2024)["policy_version"] == (
        "pingdingshan-2024.1"
    )


def test_the_audit_recomputes_each_year_under_its_own_version(two_versions: Path) -> None:
    schedule = PolicySettings(policy_dir=two_versions).schedule()
    replayed = replay(FactsBuilder().apply_all(LOG).facts(), schedule)

    assert replayed["policy_versions"]["2023"] == "pingdingshan-2020.1"
    assert replayed["policy_versions"]["2024"] == "pingdingshan-2024.1"
    by_key = {(e["category"], e["beneficiary"]): e for e in replayed["years"]["2024"]}
    assert {k: (e["gross"], e["entitlement"], e["capped"]) for k, e in by_key.items()} == HAND_2024


def test_a_year_outside_every_version_is_not_found_as_before(
    stores: tuple[EntryStore, EntryStore],
) -> None:
    two = Subsidy(stores[1], stores[1].schedule)

    with pytest.raises(NotFound) as refused:
        two.entitlements(2026)
    assert refused.value.field == "year"
    assert refused.value.message == (
        "2026 is outside the years in force of policy pingdingshan-2020.1, "
        "pingdingshan-2024.1 (2020–2025)"
    )


@pytest.mark.parametrize(
    ("second", "named"),
    [
        ((2023, 2025), r"a\.toml \(2020–2023\) and b\.toml \(2023–2025\) both apply to 2023"),
        ((2025, 2025), r"no policy file applies to 2024, between a\.toml .* and b\.toml"),
    ],
)
def test_versions_that_overlap_or_leave_a_gap_stop_the_start_naming_the_files_and_years(
    tmp_path: Path, tokens: Tokens, second: tuple[int, int], named: str
) -> None:
    from services.subsidy.app import create_app

    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / "a.toml").write_text(UNTIL_2023, "utf-8")
    (folder / "b.toml").write_text(version(BUNDLED, "v2", second), "utf-8")
    settings = SubsidySettings(
        policy_dir=folder,
        subsidy_database_url=f"sqlite:///{tmp_path / 'subsidy.db'}",
        tokens_file=tokens.path,
    )

    with pytest.raises(ValueError, match=named):
        create_app(settings)


def test_two_files_of_one_version_are_refused_naming_both(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(UNTIL_2023, "utf-8")
    (tmp_path / "b.toml").write_text(version(BUNDLED, "pingdingshan-2020.1", (2024, 2025)), "utf-8")

    with pytest.raises(ValueError, match=r"a\.toml and b\.toml are both version pingdingshan"):
        PolicySettings(policy_dir=tmp_path).schedule()


def test_a_single_policy_file_still_works_for_all_its_years(tmp_path: Path) -> None:
    path = tmp_path / "only.toml"
    path.write_text(
        FROM_2024.replace("applies_to = [2024, 2025]", "first_year = 2020\nlast_year = 2025"),
        "utf-8",
    )

    schedule = PolicySettings(policy_file=path).schedule()

    assert schedule.versions_by_year() == {str(y): "pingdingshan-2024.1" for y in range(2020, 2026)}


def test_a_store_computed_under_another_schedule_is_rebuilt(
    tmp_path: Path, two_versions: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'subsidy.db'}"
    store = EntryStore(url, load_schedule())
    store.add(LOG)
    store.close()

    reopened = EntryStore(url, PolicySettings(policy_dir=two_versions).schedule())
    try:
        assert reopened.head().position == 0  # to be filled again from the registry feed
        reopened.add(LOG)
        assert amounts(Subsidy(reopened, reopened.schedule).entitlements(2024)) == HAND_2024
    finally:
        reopened.close()


def test_a_store_from_before_schedules_is_kept_under_the_bundled_one(tmp_path: Path) -> None:
    from sqlalchemy import delete

    from services.subsidy import tables

    url = f"sqlite:///{tmp_path / 'subsidy.db'}"
    store = EntryStore(url, load_schedule())
    store.add(LOG)
    with store.engine.begin() as conn:
        conn.execute(delete(tables.schedule))  # as a store written before schedules
    store.close()

    reopened = EntryStore(url, load_schedule())
    try:
        assert reopened.head().position == len(LOG)
    finally:
        reopened.close()


# -- simulation -----------------------------------------------------------------------------------


def test_a_simulation_equals_what_a_service_with_the_draft_in_force_serves(
    stores: tuple[EntryStore, EntryStore],
) -> None:
    in_force, adopted = stores
    served_now = Subsidy(in_force, in_force.schedule).entitlements(2024)
    served_adopted = Subsidy(adopted, adopted.schedule).entitlements(2024)

    simulated = Simulations(in_force.engine, in_force.schedule).simulate(2024, FROM_2024)

    assert simulated["position"] == served_now["position"] == len(LOG)
    assert (simulated["policy_version"], simulated["draft_version"]) == (
        "pingdingshan-2020.1",
        "pingdingshan-2024.1",
    )
    assert {c: t["current"] for c, t in simulated["totals"].items()} == served_now["totals"]
    assert {c: t["draft"] for c, t in simulated["totals"].items()} == served_adopted["totals"]
    adopted_amounts = {k: v[1] for k, v in amounts(served_adopted).items()}
    now_amounts = {k: v[1] for k, v in amounts(served_now).items()}
    assert {
        (c["category"], c["beneficiary"]): (c["current"], c["draft"])
        for c in simulated["largest_changes"]
    } == {k: (now_amounts[k], adopted_amounts[k]) for k in adopted_amounts}
    assert [c["change"] for c in simulated["largest_changes"]] == [
        "100000.00",
        "20000.00",
        "8000.00",
    ]  # largest first
    assert (simulated["beneficiaries_gained"], simulated["beneficiaries_lost"]) == (0, 0)


def test_a_simulation_counts_beneficiaries_gained_and_lost(
    stores: tuple[EntryStore, EntryStore],
) -> None:
    in_force = stores[0]
    no_brokers = version(BUNDLED, "draft", (2020, 2025), broker=("0", "200000.00"))
    only_brokers = version(
        BUNDLED, "draft", (2020, 2025), absorption=("0", "1.00"), output=("0", "1.00")
    )
    simulations = Simulations(in_force.engine, in_force.schedule)

    lost = simulations.simulate(2024, no_brokers)
    kept = simulations.simulate(2024, only_brokers)

    assert (lost["beneficiaries_gained"], lost["beneficiaries_lost"]) == (0, 1)
    assert (kept["beneficiaries_gained"], kept["beneficiaries_lost"]) == (0, 2)
    assert lost["totals"]["broker"]["draft"]["entitlement"] == "0.00"


def test_a_simulation_of_a_year_no_version_governs_yet_compares_with_nothing(
    stores: tuple[EntryStore, EntryStore],
) -> None:
    in_force = stores[0]
    draft_2026 = version(BUNDLED, "draft-2026", (2026, 2026))

    simulated = Simulations(in_force.engine, in_force.schedule).simulate(2026, draft_2026)

    assert simulated["policy_version"] is None
    assert simulated["largest_changes"] == []  # nothing was paid in 2026


def test_the_bureau_and_finance_simulate_over_http_and_bad_drafts_are_refused_naming_the_setting(
    stores: tuple[EntryStore, EntryStore], tokens: Tokens
) -> None:
    from tests.support.finance import finance_client

    in_force = stores[0]
    url = in_force.engine.url.render_as_string(hide_password=False)
    expected = Simulations(in_force.engine, in_force.schedule).simulate(2024, FROM_2024)
    bad_rate = FROM_2024.replace('rate = "0.15"', 'rate = "fifteen"')

    with finance_client(url, tokens) as client:
        for role in ("finance", "bureau"):
            answer = client.post(
                "/v1/simulations",
                json={"year": 2024, "policy": FROM_2024},
                headers=tokens.header(role),
            )
            assert answer.status_code == 200, answer.text
            assert answer.json() == expected
        for role in ("auditor", "station"):
            refused = client.post(
                "/v1/simulations",
                json={"year": 2024, "policy": FROM_2024},
                headers=tokens.header(role),
            )
            assert refused.status_code == 403, refused.text
        bad = client.post("/v1/simulations", json={"year": 2024, "policy": bad_rate})
        outside = client.post("/v1/simulations", json={"year": 2023, "policy": FROM_2024})
        not_toml = client.post("/v1/simulations", json={"year": 2024, "policy": "rate = ="})

    assert bad.status_code == 422, bad.text
    assert bad.json()["field"] == "policy.categories.absorption.rate"
    assert outside.status_code == 422, outside.text
    assert outside.json()["field"] == "year"
    assert not_toml.status_code == 422
    assert not_toml.json()["field"] == "policy"
    # the policy in force and what finance serves are untouched
    assert Subsidy(in_force, in_force.schedule).entitlements(2024)["policy_version"] == (
        "pingdingshan-2020.1"
    )


def test_tcr_subsidy_simulate_prints_the_same_as_a_table(
    stores: tuple[EntryStore, EntryStore], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import main

    in_force = stores[0]
    url = in_force.engine.url.render_as_string(hide_password=False)
    expected = Simulations(in_force.engine, in_force.schedule).simulate(2024, FROM_2024)
    draft, bad = tmp_path / "draft.toml", tmp_path / "bad.toml"
    draft.write_text(FROM_2024, "utf-8")
    bad.write_text(FROM_2024.replace("applies_to = [2024, 2025]", "applies_to = 2024"), "utf-8")
    command = ["subsidy", "simulate", "--year", "2024", "--database-url", url, "--policy"]

    assert main([*command, str(draft), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    assert main([*command, str(draft)]) == 0
    printed = capsys.readouterr().out
    assert "in force pingdingshan-2020.1, draft pingdingshan-2024.1" in printed
    for change in expected["largest_changes"]:
        row = f"{change['current']:>14}{change['draft']:>14}{change['change']:>14}"
        assert f"{change['beneficiary']:<22}{change['category']:<14}{row}" in printed
    assert main([*command, str(bad)]) == 1
    assert "policy.applies_to: the draft policy file breaks a rule: applies_to must be" in (
        capsys.readouterr().err
    )


def test_tcr_subsidy_simulate_asks_a_running_finance_service(
    tmp_path: Path, tokens: Tokens, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import subprocess
    import sys
    import time

    import httpx

    from services.cli import main
    from tests.support.broker import free_port

    url = f"sqlite:///{tmp_path / 'subsidy.db'}"
    store = EntryStore(url, load_schedule())
    store.add(LOG)
    expected = Simulations(store.engine, store.schedule).simulate(2024, FROM_2024)
    store.close()
    draft = tmp_path / "draft.toml"
    draft.write_text(FROM_2024, "utf-8")
    port = free_port()
    env = {**os.environ, "TCR_SUBSIDY_DATABASE_URL": url, "TCR_TOKENS_FILE": str(tokens.path)}
    argv = [str(Path(sys.executable).with_name("tcr")), "subsidy", "serve", "--port", str(port)]
    log = tmp_path / "finance.log"
    with log.open("wb") as out:
        server = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=out)
    finance = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{finance}/v1/health", headers=tokens.header("finance"))
                break
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.1)
        command = ["subsidy", "simulate", "--policy", str(draft), "--year", "2024"]
        command += ["--finance", finance, "--token", tokens.bureau, "--json"]
        code = main(command)
        printed = capsys.readouterr().out
        refused = main([*command[:5], "2023", *command[6:]])
    finally:
        server.terminate()
        server.wait(timeout=20)

    assert code == 0, log.read_text()
    assert json.loads(printed) == expected
    assert refused == 1
    assert "year: 2023 is outside the draft's applies_to" in capsys.readouterr().err
