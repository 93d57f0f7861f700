"""The audit HTTP API over a live registry: auditors only, and every answer from the live feed.

The registry runs as a real ``tcr registry serve`` process on a SQLite file; the audit app runs
in-process. The subsidy service it compares against is a stand-in serving entitlements computed
from the same feed, exactly or with one amount altered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.audit.app import create_app
from services.audit.application import Audit
from services.audit.live import LiveAudit
from services.audit.settings import AuditSettings
from services.audit.sources import RegistrySource
from services.common.policy.engine import entitlements
from services.common.policy.facts import FactsBuilder
from services.common.policy.loader import load_policy, load_schedule
from services.common.policy.present import entitlement_json
from services.common.tokens import add_principal
from tests.support.broker import free_port
from tests.support.parties import (
    LOCAL_ENTERPRISE,
    OUTSIDE_ENTERPRISE,
    UNIVERSITY,
    broker_body,
    contract_body,
    invoice_body,
    transfer_body,
)

TCR = str(Path(sys.executable).with_name("tcr"))
C1, C2 = "2024410400000001", "2024410400000002"
PATHS = [
    "/v1/verify",
    "/v1/replay",
    "/v1/compare",
    "/v1/report?year=2024",
    "/v1/findings?year=2024",
    "/v1/report.html?year=2024",
]


@dataclass
class LiveRegistry:
    url: str
    tokens_file: Path
    tokens: dict[str, str]
    head: int
    c1_last: int  # the position of C1's last event, before C2's

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[who]}"}
        )


def _batch(client: httpx.Client, commands: list[dict[str, Any]]) -> int:
    response = client.post("/v1/batch", json={"commands": commands})
    assert response.status_code == 201, response.text
    last: int = response.json()["positions"][1]
    return last


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    """``tcr registry serve`` on a fresh SQLite file, holding a small history of 2024."""
    folder = tmp_path_factory.mktemp("live")
    tokens_file = folder / "tokens.toml"
    tokens = {
        "station": add_principal(tokens_file, "station-s1", "station", "S1"),
        "bureau": add_principal(tokens_file, "bureau", "bureau"),
        "finance": add_principal(tokens_file, "finance", "finance"),
        "auditor": add_principal(tokens_file, "auditor", "auditor"),
    }
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCR_")}
    env.update(
        TCR_TOKENS_FILE=str(tokens_file),
        TCR_REGISTRY_DATABASE_URL=f"sqlite:///{folder / 'registry.db'}",
        TCR_SIGNING_KEY_FILE=str(folder / "signing-key.pem"),
        TCR_CHECKPOINT_EVERY="3",
    )
    argv = [TCR, "registry", "serve", "--port", str(port), "--no-access-log"]
    with (folder / "registry.log").open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    live = LiveRegistry(f"http://127.0.0.1:{port}", tokens_file, tokens, 0, 0)
    try:
        _wait(lambda: _healthy(live.url), process, folder / "registry.log")
        with live.client("bureau") as bureau, live.client("station") as station:
            _batch(bureau, [{"op": "file_broker", "body": broker_body("B-0001")}])
            live.c1_last = _batch(station, _output_contract())
            live.head = _batch(station, _absorption_contract())
        with live.client("auditor") as auditor:
            _wait(
                lambda: len(auditor.get("/v1/checkpoints").json()) >= live.head // 3,
                process,
                folder / "registry.log",
            )
        yield live
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _output_contract() -> list[dict[str, Any]]:
    """C1: the local university sells to a local firm through broker B-0001, half paid."""
    return [
        {"op": "register_contract", "body": contract_body(C1, brokers=["B-0001"])},
        {"op": "record_invoice", "body": {**invoice_body(), "registration_no": C1}},
        {"op": "record_transfer_proof", "body": {**transfer_body(), "registration_no": C1}},
    ]


def _absorption_contract() -> list[dict[str, Any]]:
    """C2: a local firm buys from outside the city, fully paid and invoiced."""
    parties = {"seller": OUTSIDE_ENTERPRISE, "buyer": LOCAL_ENTERPRISE}
    amounts = {"contract_amount": "500000.00", "technology_amount": "500000.00"}
    invoice = invoice_body(
        "INV-C2",
        "500000.00",
        issuer_credit_code=OUTSIDE_ENTERPRISE["credit_code"],
        recipient_credit_code=LOCAL_ENTERPRISE["credit_code"],
    )
    proof = transfer_body(
        "BANK-C2",
        "500000.00",
        payer_credit_code=LOCAL_ENTERPRISE["credit_code"],
        payee_credit_code=OUTSIDE_ENTERPRISE["credit_code"],
    )
    return [
        {"op": "register_contract", "body": contract_body(C2, **parties, **amounts)},
        {"op": "record_invoice", "body": {**invoice, "registration_no": C2}},
        {"op": "record_transfer_proof", "body": {**proof, "registration_no": C2}},
    ]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/health").status_code == 200
    except httpx.TransportError:
        return False


def _wait(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the registry did not get ready:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


def _feed(registry: LiveRegistry) -> list[dict[str, Any]]:
    with registry.client("auditor") as client:
        page = client.get("/v1/events", params={"after": 0, "limit": 5000}).json()
    events: list[dict[str, Any]] = page["events"]
    return events


def subsidy_stand_in(
    registry: LiveRegistry, alter: str | None = None, *, in_the_past: bool = False
) -> httpx.MockTransport:
    """Serves ``GET /v1/entitlements`` computed from the registry's feed, now or as of a
    ``position``, each row's contracts only with ``include=claims``; ``alter`` names a
    beneficiary whose entitlement it serves one fen higher, now (or, ``in_the_past``, only in
    its answers as of a past position)."""
    policy = load_policy()

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/entitlements"
        assert request.headers["Authorization"] == f"Bearer {registry.tokens['auditor']}"
        year = int(request.url.params["year"])
        position = request.url.params.get("position")
        history = _feed(registry)
        if position is not None:  # as known at that position, as the subsidy service answers
            history = [e for e in history if e["position"] <= int(position)]
        facts = FactsBuilder().apply_all(history).facts()
        served = [entitlement_json(e) for e in entitlements(facts, year, policy)]
        for e in served:
            if e["beneficiary"] == alter and in_the_past == (position is not None):
                whole, cents = e["entitlement"].split(".")
                e["entitlement"] = f"{whole}.{int(cents) + 1:02d}"
            if request.url.params.get("include") != "claims":  # as the service: on request
                e["contracts"] = e["excluded"] = None
        return httpx.Response(
            200,
            json={
                "year": year,
                "policy_version": policy.version,
                "position": int(position) if position is not None else facts.position,
                "entitlements": served,
                "next_cursor": None,
            },
        )

    return httpx.MockTransport(handle)


def auditor_settings(registry: LiveRegistry) -> AuditSettings:
    """The audit's settings over the live registry, read with the auditor's token."""
    return AuditSettings(
        tokens_file=registry.tokens_file,
        registry_url=registry.url,
        registry_token=registry.tokens["auditor"],
        subsidy_url="http://subsidy.test",
    )


@pytest.fixture
def audit(registry: LiveRegistry) -> Iterator[TestClient]:
    """The audit API in-process, reading the live registry as the auditor."""
    settings = auditor_settings(registry)
    app = create_app(settings, subsidy_transport=subsidy_stand_in(registry))
    with TestClient(app, headers={"Authorization": f"Bearer {registry.tokens['auditor']}"}) as c:
        yield c


# -- who may ask -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_the_audit_api_without_a_token_answers_401(audit: TestClient, path: str) -> None:
    response = audit.get(path, headers={"Authorization": ""})
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthenticated"


def test_an_unknown_token_answers_401(audit: TestClient) -> None:
    response = audit.get("/v1/verify", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401


@pytest.mark.parametrize("who", ["station", "bureau", "finance"])
@pytest.mark.parametrize("path", PATHS)
def test_only_auditors_may_use_the_audit_api(
    audit: TestClient, registry: LiveRegistry, who: str, path: str
) -> None:
    response = audit.get(path, headers={"Authorization": f"Bearer {registry.tokens[who]}"})
    assert response.status_code == 403, response.text
    assert "auditor" in response.json()["message"]


def test_health_needs_no_token_and_shows_the_registry_head(
    audit: TestClient, registry: LiveRegistry
) -> None:
    response = audit.get("/v1/health", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json()["registry_head"] == registry.head
    assert response.json()["policy_version"] == load_policy().version


# -- what it answers ---------------------------------------------------------------------------


def test_verify_proves_the_live_log_unaltered(audit: TestClient, registry: LiveRegistry) -> None:
    response = audit.get("/v1/verify")
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert verdict["ok"] is True
    assert verdict["checked"] == verdict["last_position"] == registry.head
    assert verdict["checkpoints_verified"] >= 1
    assert verdict["problem"] is None


def _entitlements(answer: dict[str, Any], year: str) -> dict[tuple[str, str], str]:
    return {(e["category"], e["beneficiary"]): e["entitlement"] for e in answer["years"][year]}


def test_replay_recomputes_every_years_entitlements_from_the_live_log(
    audit: TestClient, registry: LiveRegistry
) -> None:
    response = audit.get("/v1/replay")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["position"] == registry.head
    assert set(answer["years"]) == {str(y) for y in range(2020, 2026)}
    assert _entitlements(answer, "2024") == {
        ("absorption", LOCAL_ENTERPRISE["credit_code"]): "50000.00",
        ("output", UNIVERSITY["credit_code"]): "60000.00",
        ("broker", "B-0001"): "6000.00",
    }

    earlier = audit.get("/v1/replay", params={"until": registry.c1_last}).json()
    assert earlier["position"] == registry.c1_last
    # Before C2 the local firm held only C1, bought from a local seller: excluded, nothing due.
    assert _entitlements(earlier, "2024")[("absorption", LOCAL_ENTERPRISE["credit_code"])] == "0.00"


def test_replay_as_of_needs_a_time_zone(audit: TestClient) -> None:
    response = audit.get("/v1/replay", params={"as_of": "2025-03-31T00:00:00"})
    assert response.status_code == 422
    assert response.json()["field"] == "as_of"
    before_anything = audit.get("/v1/replay", params={"as_of": "2020-01-01T00:00:00+08:00"})
    assert before_anything.json()["years"]["2024"] == []


def test_report_gives_the_figures_and_findings_of_the_live_log(
    audit: TestClient, registry: LiveRegistry
) -> None:
    response = audit.get("/v1/report", params={"year": 2024})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["report_year"] == 2024 and report["position"] == registry.head
    assert report["verdict"]["ok"] is True
    turnover = {row["year"]: row for row in report["turnover"]}
    assert (turnover[2024]["contracts"], turnover[2024]["amount"]) == (2, "1700000.00")
    subsidies = {row["year"]: row for row in report["subsidies"]}[2024]
    assert subsidies["total"] == "116000.00"
    assert [b["filed"] for b in report["brokers"] if b["year"] == 2024] == [1]
    # C1 is paid 600,000 of 1,200,000 and invoiced as much: no finding on its evidence yet.
    findings = audit.get("/v1/findings", params={"year": 2024}).json()
    kinds = {(f["registration_no"], f["kind"]) for f in findings["findings"]}
    assert not {k for _, k in kinds} & {"chain_break", "paid_not_invoiced", "invoiced_not_paid"}
    assert findings["total"] == sum(report["findings_by_kind"].values()) == len(kinds) > 0
    assert "findings" not in report  # they page through /v1/findings


def test_findings_page_in_the_reports_order_and_a_stale_cursor_is_refused(
    audit: TestClient, registry: LiveRegistry
) -> None:
    whole = audit.get("/v1/findings", params={"year": 2024, "limit": 10_000}).json()
    assert whole["total"] >= 2, "too few findings to page"
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"year": 2024, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = audit.get("/v1/findings", params=params).json()
        pages += page["findings"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == whole["findings"]

    stale = f"{registry.head - 1}.1"
    response = audit.get("/v1/findings", params={"year": 2024, "cursor": stale})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "cursor"
    for bad in ("x", "1.", "..", "1.2.3"):
        refused = audit.get("/v1/findings", params={"year": 2024, "cursor": bad})
        assert refused.status_code == 422, bad


def test_report_html_is_the_page(audit: TestClient) -> None:
    response = audit.get("/v1/report.html", params={"year": 2024})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<svg" in response.text and "Tamper-evident chain verified" in response.text


def test_a_report_year_before_the_plan_is_refused(audit: TestClient) -> None:
    response = audit.get("/v1/report", params={"year": 2019})
    assert response.status_code == 422
    assert response.json()["field"] == "year"


def test_compare_finds_no_difference_when_the_subsidy_service_serves_the_log(
    audit: TestClient, registry: LiveRegistry
) -> None:
    response = audit.get("/v1/compare")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["differences"] == []
    now = [y for y in answer["years"] if not y["as_of_position"]]
    assert [y["year"] for y in now] == list(range(2020, 2026))
    assert all(y["position"] == registry.head for y in now)
    assert {y["year"]: y["entitlements"] for y in now}[2024] == 3
    past = {y["position"] for y in answer["years"] if y["as_of_position"]}
    assert past == {registry.head * q // 4 for q in (1, 2, 3)}


def test_compare_names_a_past_version_the_subsidy_service_serves_wrong(
    registry: LiveRegistry,
) -> None:
    settings = auditor_settings(registry)
    wrong = subsidy_stand_in(registry, alter=UNIVERSITY["credit_code"], in_the_past=True)
    headers = {"Authorization": f"Bearer {registry.tokens['auditor']}"}
    with TestClient(create_app(settings, subsidy_transport=wrong), headers=headers) as client:
        answer = client.get("/v1/compare").json()
    assert answer["differences"], "a wrong materialised version went unnoticed"
    assert {d["position"] for d in answer["differences"]} <= {
        registry.head * q // 4 for q in (1, 2, 3)
    }
    assert all(d["beneficiary"] == UNIVERSITY["credit_code"] for d in answer["differences"])


def test_compare_names_the_entitlement_the_subsidy_service_serves_wrong(
    registry: LiveRegistry,
) -> None:
    settings = auditor_settings(registry)
    wrong = subsidy_stand_in(registry, alter=UNIVERSITY["credit_code"])
    headers = {"Authorization": f"Bearer {registry.tokens['auditor']}"}
    with TestClient(create_app(settings, subsidy_transport=wrong), headers=headers) as client:
        answer = client.get("/v1/compare").json()
    (difference,) = answer["differences"]
    assert (difference["year"], difference["category"]) == (2024, "output")
    assert difference["beneficiary"] == UNIVERSITY["credit_code"]
    assert difference["fields"] == ["entitlement"]


def test_an_unreachable_registry_answers_503(registry: LiveRegistry) -> None:
    settings = AuditSettings(
        tokens_file=registry.tokens_file,
        registry_url=f"http://127.0.0.1:{free_port()}",
        registry_token=registry.tokens["auditor"],
    )
    headers = {"Authorization": f"Bearer {registry.tokens['auditor']}"}
    with TestClient(create_app(settings), headers=headers) as client:
        response = client.get("/v1/verify")
        health = client.get("/v1/health")
    assert response.status_code == 503
    assert response.json()["field"] == "registry"
    assert health.status_code == 200 and health.json()["registry_head"] is None


# -- a history that does not verify ------------------------------------------------------------


class AlteredRegistry(RegistrySource):
    """The live feed as a registry that rewrote entry 2 after signing its checkpoints serves it."""

    def envelopes(self) -> Iterator[dict[str, Any]]:
        for envelope in super().envelopes():
            if envelope["position"] == 2:
                envelope["payload"]["title"] = "rewritten"
            yield envelope


@pytest.fixture
def audit_of_an_altered_log(registry: LiveRegistry) -> Iterator[TestClient]:
    settings = auditor_settings(registry)
    app = create_app(settings, subsidy_transport=subsidy_stand_in(registry))
    app.state.audit = LiveAudit(
        Audit(load_schedule()),
        lambda: AlteredRegistry(registry.url, registry.tokens["auditor"]),
        lambda: httpx.Client(
            base_url="http://subsidy.test",
            headers={"Authorization": f"Bearer {registry.tokens['auditor']}"},
            transport=subsidy_stand_in(registry),
        ),
        registry.url,
    )
    with TestClient(app, headers={"Authorization": f"Bearer {registry.tokens['auditor']}"}) as c:
        yield c


@pytest.mark.parametrize("path", [p for p in PATHS if p != "/v1/verify"])
def test_a_history_that_does_not_verify_is_refused_naming_the_verdict(
    audit_of_an_altered_log: TestClient, path: str
) -> None:
    response = audit_of_an_altered_log.get(path)

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "verdict"
    assert "refused: the history does not verify" in body["message"]
    assert "TAMPERING DETECTED at position 2" in body["message"]


def test_verify_says_where_an_altered_history_breaks(audit_of_an_altered_log: TestClient) -> None:
    verdict = audit_of_an_altered_log.get("/v1/verify").json()

    assert verdict["ok"] is False and verdict["position"] == 2
    assert verdict["message"].startswith("TAMPERING DETECTED at position 2")
