"""The whole system end to end: ``tcr stack`` on PostgreSQL and on its SQLite defaults, driven
only over HTTP and the ``tcr`` command line, against entitlements worked out by hand."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import history as h
from tests.e2e.conftest import TCR, RunningStack

pytestmark = pytest.mark.e2e

CATCH_UP_TIMEOUT = 120.0
Served = dict[tuple[int, str, str], dict[str, Any]]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _post_all(
    client: httpx.Client, stack: RunningStack, items: tuple[h.Post | h.Batch, ...]
) -> None:
    writers = {"bureau": stack.tokens["bureau"], "station": stack.tokens["station-demo"]}
    for item in items:
        path, body = item.request()
        response = client.post(path, json=body, headers=_auth(writers[item.who]))
        assert response.status_code == 201, f"POST {path} → {response.status_code} {response.text}"


def _wait_caught_up(client: httpx.Client, stack: RunningStack) -> int:
    """Wait until the finance API has applied the registry's whole log; returns the head."""
    head = client.get(f"{stack.registry}/v1/health").raise_for_status().json()["head"]
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        health = client.get(f"{stack.finance}/v1/health").raise_for_status().json()
        if health["applied_position"] == head and health["registry_head"] == head:
            return int(head)
        time.sleep(0.25)
    pytest.fail(
        f"subsidy did not catch up with registry head {head} in {CATCH_UP_TIMEOUT:.0f}s: "
        f"{health}\n{stack.log_tail()}"
    )


def _served(client: httpx.Client, stack: RunningStack, head: int) -> Served:
    """Every entitlement of every year in force, as the finance API serves it."""
    served: Served = {}
    for year in h.YEARS_IN_FORCE:
        response = client.get(
            f"{stack.finance}/v1/entitlements",
            params={"year": year, "include": "claims"},
            headers=_auth(stack.tokens["finance"]),
        )
        assert response.status_code == 200, f"{year}: {response.status_code} {response.text}"
        answer = response.json()
        assert answer["position"] == head, f"{year} answered at {answer['position']}, not {head}"
        for e in answer["entitlements"]:
            key = (year, e["category"], e["beneficiary"])
            assert key not in served, f"{key} served twice"
            served[key] = e
    return served


def _differences(served: Served) -> list[str]:
    """Everything the finance API serves that differs from the hand-worked tables."""
    problems = []
    non_zero = {k for k, e in served.items() if e["entitlement"] != "0.00"}
    for key in sorted(non_zero - h.EXPECTED.keys()):
        problems.append(f"{key}: unexpected entitlement {served[key]['entitlement']}")
    for key in sorted(h.EXPECTED.keys() - non_zero):
        got = served[key]["entitlement"] if key in served else "absent"
        problems.append(f"{key}: expected {h.EXPECTED[key].entitlement}, served {got}")
    for key in sorted(h.EXPECTED.keys() & non_zero):
        want, got = h.EXPECTED[key], served[key]
        fed = {c["registration_no"]: c["evidenced"] for c in got["contracts"]}
        actual = (got["turnover"], got["gross"], got["entitlement"], got["capped"], fed)
        wanted = (want.turnover, want.gross, want.entitlement, want.capped, want.contracts)
        if actual != wanted:
            problems.append(f"{key}: expected {wanted}, served {actual}")
    for key, reasons in sorted(h.EXCLUDED.items()):
        excluded = served.get(key, {}).get("excluded", [])
        listed = {(x["registration_no"], x["reason"]) for x in excluded}
        if not reasons <= listed:
            problems.append(f"{key}: must exclude {sorted(reasons - listed)}, lists {listed}")
    for key, e in served.items():
        if any(c["registration_no"] == h.CANCELLED for c in e["contracts"]):
            problems.append(f"{key}: cancelled {h.CANCELLED} still feeds it")
    return problems


def _tcr(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TCR, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_whole_system_pays_exactly_the_hand_worked_entitlements_and_audits_clean(
    stack: RunningStack, tmp_path: Path
) -> None:
    with httpx.Client(base_url=stack.registry, timeout=30) as client:
        _post_all(client, stack, h.HISTORY)
        head = _wait_caught_up(client, stack)
        before = _served(client, stack, head)
        assert h.ABSENT_BEFORE_LATE_INVOICE not in before, "paid but not invoiced must not count"

        _post_all(client, stack, (h.LATE_INVOICE,))
        head = _wait_caught_up(client, stack)
        problems = _differences(_served(client, stack, head))
        assert not problems, "\n".join(problems)

        checkpoint = client.post("/v1/checkpoints", headers=_auth(stack.tokens["auditor"]))
        assert checkpoint.status_code == 201, checkpoint.text
        assert checkpoint.json()["tree_size"] == head
        key = client.get("/v1/checkpoints/public-key").raise_for_status().json()
    public_key = tmp_path / "registry-public-key.pem"
    public_key.write_text(key["public_key_pem"], encoding="utf-8")

    bundle = tmp_path / "bundle"
    auditor = stack.tokens["auditor"]
    export = _tcr(
        "audit", "export", "--registry", stack.registry, f"--token={auditor}", "--out", bundle
    )
    assert export.returncode == 0, export.stdout + export.stderr
    verify = _tcr("audit", "verify", bundle, "--public-key", public_key)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"verified: {head} entries" in verify.stdout
    compare = _tcr("audit", "compare", bundle, "--subsidy", stack.finance, f"--token={auditor}")
    assert compare.returncode == 0, compare.stdout + compare.stderr

    assert stack.stop() == 0, f"tcr stack did not stop cleanly:\n{stack.log_tail()}"
    assert stack.survivors == [], f"children outlived the stack: {stack.survivors}"


def test_the_stack_keeps_its_signing_key_under_var_and_writes_nothing_elsewhere(
    sqlite_stack: RunningStack,
) -> None:
    stray = sorted(
        str(p.relative_to(sqlite_stack.workdir)) for p in sqlite_stack.workdir.rglob("*")
    )
    assert stray == [], f"written outside --var, in the working directory: {stray}"
    assert (sqlite_stack.var / "registry-signing-key.pem").exists()
