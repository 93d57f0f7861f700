"""Adversarial verification: every way of altering an exported history is caught, and named.

A real registry (``tcr registry serve``, SQLite, a checkpoint every 4 entries) records a small
history through its API; ``export_bundle`` over a ``RegistrySource`` writes the bundle. Each
test alters a copy of it as an adversary would (bytes, removals, swaps, insertions, forged or
foreign-signed checkpoints, truncation, a rewritten prefix with a consistently recomputed
chain) and checks that ``verify_log`` and ``tcr audit verify`` fail at the right position or
checkpoint. The database itself is also altered behind the registry's back, on SQLite and
PostgreSQL, then exported and verified. Replay's ``--until`` and ``--as-of`` are checked
against entitlements worked out by hand from shared/domain.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from services.audit.sources import BundleSource, RegistrySource, export_bundle
from services.audit.verify import Verdict, verify_log
from services.cli import main
from services.common.envelope import GENESIS_HASH, canonical_bytes, entry_hash
from services.common.merkle import leaf_hash, root
from services.common.policy.loader import policy_dir, policy_texts
from services.common.signing import load_or_create_key, public_key_pem, sign_checkpoint
from services.registry.app import create_app
from services.registry.application import Registry
from services.registry.settings import RegistrySettings
from tests.conftest import Tokens, make_tokens
from tests.support.broker import free_port
from tests.support.parties import (
    LOCAL_ENTERPRISE,
    OUTSIDE_ENTERPRISE,
    UNIVERSITY,
    broker_body,
    cancellation_body,
    contract_body,
    funding_body,
    invoice_body,
    transfer_body,
)
from tests.support.policy_versions import BUNDLED, two_versions, version

TCR = str(Path(sys.executable).with_name("tcr"))
EVERY = 4

UNIV, FIRM, OUTSIDE = (
    UNIVERSITY["credit_code"],
    LOCAL_ENTERPRISE["credit_code"],
    OUTSIDE_ENTERPRISE["credit_code"],
)
BROKER = "B-0001"

# The history, positions 1..14: (who posts, path, body).
HISTORY: list[tuple[str, str, dict[str, Any]]] = [
    ("station", "/v1/contracts", contract_body("R1")),  # local university → local firm
    ("station", "/v1/contracts/R1/invoices", invoice_body("INV-1", "600000.00")),
    ("station", "/v1/contracts/R1/transfer-proofs", transfer_body("BANK-1", "600000.00")),
    (
        "station",
        "/v1/contracts",
        contract_body(
            "R2",
            seller=OUTSIDE_ENTERPRISE,
            contract_amount="2000000.00",
            technology_amount="2000000.00",
        ),
    ),
    (
        "station",
        "/v1/contracts/R2/invoices",
        invoice_body("INV-2", "1000000.00", issuer_credit_code=OUTSIDE),
    ),
    (
        "station",
        "/v1/contracts/R2/transfer-proofs",
        transfer_body("BANK-2", "1000000.00", payee_credit_code=OUTSIDE, paid_on="2024-05-01"),
    ),
    ("station", "/v1/contracts/R1/invoices", invoice_body("INV-3", "600000.00")),
    (
        "station",
        "/v1/contracts/R1/transfer-proofs",
        transfer_body("BANK-3", "600000.00", paid_on="2024-06-10"),
    ),
    ("bureau", "/v1/brokers", broker_body(BROKER)),
    (
        "station",
        "/v1/contracts",
        contract_body(
            "R3", brokers=[BROKER], contract_amount="500000.00", technology_amount="500000.00"
        ),
    ),
    ("station", "/v1/contracts/R3/invoices", invoice_body("INV-4", "500000.00")),
    (
        "station",
        "/v1/contracts/R3/transfer-proofs",
        transfer_body("BANK-4", "500000.00", paid_on="2024-08-01"),
    ),
    ("station", "/v1/contracts/R2/cancellation", cancellation_body()),
    ("bureau", "/v1/provincial-funding", funding_body()),
]
SIZE = len(HISTORY)
CHECKPOINTS = [4, 8, 12, SIZE]  # every 4, then one issued on demand at the end

# 2024's entitlements, worked out from the money rules, after each cut-off position.
# Absorption for the local firm: R2 (outside seller) only; R1 and R3 have a local seller.
# Output for the university: R1 and R3 until the provincial funding of 2024 (position 14).
# Broker B-0001: 1% of R3's 500,000.00.
ENTITLEMENTS_2024 = {
    3: {("absorption", FIRM): "0.00", ("output", UNIV): "60000.00"},
    6: {("absorption", FIRM): "100000.00", ("output", UNIV): "60000.00"},
    8: {("absorption", FIRM): "100000.00", ("output", UNIV): "120000.00"},
    12: {
        ("absorption", FIRM): "100000.00",
        ("broker", BROKER): "5000.00",
        ("output", UNIV): "170000.00",
    },
    13: {
        ("absorption", FIRM): "0.00",
        ("broker", BROKER): "5000.00",
        ("output", UNIV): "170000.00",
    },
    14: {("absorption", FIRM): "0.00", ("broker", BROKER): "5000.00", ("output", UNIV): "0.00"},
}


# -- a real registry --------------------------------------------------------------------------


@dataclass
class Served:
    """``tcr registry serve`` as a child process, on a SQLite file."""

    url: str
    database_url: str
    key_file: Path
    tokens: Tokens
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, who: str = "station") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.tokens.header(who), timeout=30.0)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def serve_registry(folder: Path) -> Served:
    folder.mkdir(parents=True, exist_ok=True)
    tokens = make_tokens(folder)
    port = free_port()
    database_url = f"sqlite:///{folder / 'registry.db'}"
    key_file = folder / "registry-signing-key.pem"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCR_")}
    env |= {
        "TCR_REGISTRY_DATABASE_URL": database_url,
        "TCR_TOKENS_FILE": str(tokens.path),
        "TCR_SIGNING_KEY_FILE": str(key_file),
        "TCR_CHECKPOINT_EVERY": str(EVERY),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = folder / "registry.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [TCR, "registry", "serve", "--port", str(port), "--no-access-log"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", database_url, key_file, tokens, process, log_path)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{served.url}/v1/health", timeout=1).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            served.stop()
            raise RuntimeError(f"the registry did not start:\n{log_path.read_text()}")
        time.sleep(0.1)


def record(post: Callable[..., Any], headers: Callable[[str], dict[str, str]]) -> list[str]:
    """Post HISTORY; the recorded_at of each position, in order."""
    recorded = []
    for position, (who, path, body) in enumerate(HISTORY, start=1):
        response = post(path, json=body, headers=headers(who))
        assert response.status_code == 201, (position, response.text)
        assert response.json()["position"] == position
        recorded.append(response.json()["recorded_at"])
    return recorded


def checkpoint_all(
    get: Callable[..., Any], post: Callable[..., Any], bureau: dict[str, str]
) -> None:
    """Wait for the background checkpoints of 4, 8, 12; then issue one of the whole log."""
    deadline = time.monotonic() + 15
    while [c["tree_size"] for c in get("/v1/checkpoints").json()] != CHECKPOINTS[:-1]:
        assert time.monotonic() < deadline, get("/v1/checkpoints").json()
        time.sleep(0.05)
    assert post("/v1/checkpoints", headers=bureau).status_code == 201
    assert [c["tree_size"] for c in get("/v1/checkpoints").json()] == CHECKPOINTS


def bundled_policy() -> dict[str, str]:
    return policy_texts(policy_dir())


@dataclass
class History:
    served: Served
    recorded_at: list[str]  # by position - 1
    bundle: Path


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """The registry, its history of 14 entries and 4 checkpoints, and the bundle exported."""
    folder = tmp_path_factory.mktemp("served")
    served = serve_registry(folder)
    try:
        with served.client() as client:
            recorded_at = record(client.post, served.tokens.header)
            checkpoint_all(client.get, client.post, served.tokens.header("bureau"))
        source = RegistrySource(served.url, served.tokens.auditor, page_size=5)  # 3 pages
        try:
            # As tcr audit export writes it: with the policy files in force (the bundled ones).
            manifest = export_bundle(source, folder / "bundle", policy_files=bundled_policy())
        finally:
            source.close()
        assert (manifest["events"], manifest["last_position"]) == (SIZE, SIZE)
        yield History(served, recorded_at, folder / "bundle")
    finally:
        served.stop()


@pytest.fixture
def bundle(history: History, tmp_path: Path) -> Path:
    """A copy of the exported bundle, to alter."""
    return Path(shutil.copytree(history.bundle, tmp_path / "bundle"))


# -- reading and rewriting a bundle -----------------------------------------------------------


def envelopes(bundle: Path) -> list[dict[str, Any]]:
    return list(BundleSource(bundle).envelopes())


def write_envelopes(bundle: Path, entries: list[dict[str, Any]]) -> None:
    (bundle / "events.jsonl").write_bytes(b"".join(canonical_bytes(e) + b"\n" for e in entries))


def checkpoints_of(bundle: Path) -> list[dict[str, Any]]:
    return BundleSource(bundle).checkpoints()


def write_checkpoints(bundle: Path, checkpoints: list[dict[str, Any]]) -> None:
    (bundle / "checkpoints.json").write_text(json.dumps(checkpoints, indent=2), "utf-8")


def rechain(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recompute every prev_hash and hash, as an adversary covering their tracks would."""
    prev, out = GENESIS_HASH, []
    for entry in entries:
        entry = {**entry, "prev_hash": prev}
        entry["hash"] = prev = entry_hash(prev, entry)
        out.append(entry)
    return out


def resign(entries: list[dict[str, Any]], key: Ed25519PrivateKey) -> list[dict[str, Any]]:
    """Checkpoints at CHECKPOINTS over ``entries``, signed with ``key``."""
    leaves = [leaf_hash(canonical_bytes(e)) for e in entries]
    signed = []
    for size in CHECKPOINTS:
        checkpoint: dict[str, Any] = {
            "tree_size": size,
            "root_hash": root(leaves[:size]).hex(),
            "issued_at": "2026-11-27T12:00:00.000000Z",
        }
        checkpoint["signature"] = sign_checkpoint(key, checkpoint)
        signed.append(checkpoint)
    return signed


def verify_bundle(bundle: Path, trusted: dict[str, Any] | None = None) -> Verdict:
    source = BundleSource(bundle)
    return verify_log(source.envelopes(), source.checkpoints(), source.public_key_pem(), trusted)


def cli_verify(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify", *(str(a) for a in args)])
    return code, capsys.readouterr().out


def trusted_file(tmp_path: Path, checkpoint: dict[str, Any]) -> Path:
    path = tmp_path / f"trusted-{checkpoint['tree_size']}.json"
    path.write_text(json.dumps(checkpoint), "utf-8")
    return path


def fails_at_position(verdict: Verdict, position: int) -> None:
    assert verdict.ok is False, verdict
    assert (verdict.position, verdict.checkpoint) == (position, None), verdict
    assert verdict.problem


def fails_at_checkpoint(verdict: Verdict, tree_size: int) -> None:
    assert verdict.ok is False, verdict
    assert (verdict.checkpoint, verdict.position) == (tree_size, None), verdict
    assert verdict.problem


# -- the intact history ------------------------------------------------------------------------


def test_the_exported_bundle_verifies(bundle: Path) -> None:
    verdict = verify_bundle(bundle)

    assert verdict.ok, verdict
    assert (verdict.checked, verdict.last_position) == (SIZE, SIZE)
    assert verdict.checkpoints_verified == len(CHECKPOINTS)
    assert verdict.root_hash == checkpoints_of(bundle)[-1]["root_hash"]
    assert verdict.head_hash == envelopes(bundle)[-1]["hash"]


def test_the_cli_verifies_the_bundle_and_exits_0(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli_verify(capsys, bundle)

    assert code == 0, out
    assert f"verified: {SIZE} entries to position {SIZE}, {len(CHECKPOINTS)} checkpoints" in out


def test_the_cli_says_the_verdict_as_json(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli_verify(capsys, bundle, "--json")

    verdict = json.loads(out)
    assert code == 0
    assert (verdict["ok"], verdict["checked"], verdict["checkpoints_verified"]) == (True, SIZE, 4)


def test_tcr_audit_export_writes_the_same_bundle(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exported"
    served = history.served

    code = main(
        ["audit", "export", "--registry", served.url, "--token", served.tokens.auditor,
         "--out", str(out)]
    )  # fmt: skip

    assert code == 0
    assert (
        f"exported {SIZE} events (to position {SIZE}) and 4 checkpoints" in capsys.readouterr().out
    )
    for name in (
        "events.jsonl",
        "checkpoints.json",
        "public-key.pem",
        "policy/pingdingshan-2020.toml",
    ):
        assert (out / name).read_bytes() == (history.bundle / name).read_bytes(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "tcr-bundle/1"
    assert (manifest["events"], manifest["last_position"], manifest["checkpoints"]) == (
        SIZE,
        SIZE,
        4,
    )


def test_tcr_audit_export_carries_the_policy_schedule_hashed_into_the_manifest(
    history: History,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = two_versions(tmp_path / "policy")
    monkeypatch.setenv("TCR_POLICY_DIR", str(policy))
    out = tmp_path / "exported"
    served = history.served

    code = main(
        ["audit", "export", "--registry", served.url, "--token", served.tokens.auditor,
         "--out", str(out)]
    )  # fmt: skip

    assert code == 0
    names = sorted(p.name for p in policy.iterdir())
    assert sorted(p.name for p in (out / "policy").iterdir()) == names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["policy"] == {
        name: hashlib.sha256((policy / name).read_bytes()).hexdigest() for name in names
    }
    assert cli_verify(capsys, out)[0] == 0

    monkeypatch.delenv("TCR_POLICY_DIR")  # the auditor's own policy: the bundled one alone
    replayed = tmp_path / "replay.json"
    assert main(["audit", "replay", str(out), "--out", str(replayed)]) == 0
    versions = json.loads(replayed.read_text())["policy_versions"]
    assert (versions["2023"], versions["2024"]) == ("pingdingshan-2020.1", "pingdingshan-2024.1")


@pytest.mark.parametrize("change", ["altered", "removed", "added"])
def test_a_policy_file_changed_after_the_export_fails_verification_naming_it(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    shutil.rmtree(bundle / "policy")
    carried = two_versions(bundle / "policy")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["policy"] = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in carried.iterdir()
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert cli_verify(capsys, bundle)[0] == 0
    named = "pingdingshan-2024.toml"
    if change == "altered":
        text = (carried / named).read_text().replace('rate = "0.15"', 'rate = "0.50"')
        (carried / named).write_text(text)
    elif change == "removed":
        (carried / named).unlink()
    else:
        named = "pingdingshan-2026.toml"
        (carried / named).write_text(version(BUNDLED, "pingdingshan-2026.1", (2026, 2026)))

    code, out = cli_verify(capsys, bundle)

    assert code == 1
    assert f"policy files disagree ({named})" in out


def test_a_bundle_exported_before_schedules_is_replayed_under_the_policy_here_with_a_note(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.pop("policy")
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(bundle / "policy")
    replayed = tmp_path / "replay.json"

    assert main(["audit", "replay", str(bundle), "--out", str(replayed)]) == 0

    assert "carries no policy files" in capsys.readouterr().err
    versions = json.loads(replayed.read_text())["policy_versions"]
    assert set(versions.values()) == {"pingdingshan-2020.1"}


def test_the_bundle_holds_the_registrys_key_and_checkpoints_over_its_log(
    history: History, bundle: Path
) -> None:
    key = load_or_create_key(history.served.key_file)
    leaves = [leaf_hash(canonical_bytes(e)) for e in envelopes(bundle)]

    assert (bundle / "public-key.pem").read_text() == public_key_pem(key)
    assert [(c["tree_size"], c["root_hash"]) for c in checkpoints_of(bundle)] == [
        (n, root(leaves[:n]).hex()) for n in CHECKPOINTS
    ]


# -- altered bundles ----------------------------------------------------------------------------


def change_an_amount(entries: list[dict[str, Any]], position: int) -> None:
    """Raise the amount of the invoice or transfer proof at ``position`` by 900,000.00."""
    payload = entries[position - 1]["payload"]
    payload["amount_fen"] += 90_000_000


def test_an_entry_whose_bytes_changed_is_named(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = envelopes(bundle)
    change_an_amount(entries, 5)
    write_envelopes(bundle, entries)

    fails_at_position(verify_bundle(bundle), 5)
    code, out = cli_verify(capsys, bundle)
    assert code == 1
    assert "TAMPERING DETECTED at position 5: the entry's hash does not match its bytes" in out
    assert "(4 entries before it verified)" in out


def test_a_single_changed_byte_in_the_file_is_named(bundle: Path) -> None:
    lines = (bundle / "events.jsonl").read_bytes().splitlines(keepends=True)
    assert b'"issued_on":"2024-04-01"' in lines[6]  # position 7, INV-3
    lines[6] = lines[6].replace(b'"issued_on":"2024-04-01"', b'"issued_on":"2024-04-02"')
    (bundle / "events.jsonl").write_bytes(b"".join(lines))

    fails_at_position(verify_bundle(bundle), 7)


@pytest.mark.parametrize("field", ["recorded_at", "principal", "subject", "type", "event_id"])
def test_a_changed_envelope_field_is_named(bundle: Path, field: str) -> None:
    entries = envelopes(bundle)
    entries[2][field] = {"type": "InvoiceRecorded", "principal": "bureau"}.get(
        field, entries[3][field]
    )
    assert entries[2][field] != envelopes(bundle)[2][field]
    write_envelopes(bundle, entries)

    fails_at_position(verify_bundle(bundle), 3)


def test_an_altered_entry_with_its_own_hash_recomputed_breaks_the_next_link(
    bundle: Path,
) -> None:
    entries = envelopes(bundle)
    change_an_amount(entries, 5)
    entries[4]["hash"] = entry_hash(entries[4]["prev_hash"], entries[4])
    write_envelopes(bundle, entries)

    verdict = verify_bundle(bundle)

    fails_at_position(verdict, 6)
    assert "prev_hash" in (verdict.problem or "")


def test_a_removed_entry_is_named_by_the_entry_after_it(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = envelopes(bundle)
    del entries[6]  # position 7
    write_envelopes(bundle, entries)

    fails_at_position(verify_bundle(bundle), 8)
    code, out = cli_verify(capsys, bundle)
    assert code == 1
    assert (
        "TAMPERING DETECTED at position 8: prev_hash is not the hash of the entry before it" in out
    )


def test_the_first_entry_removed_is_found_at_the_second(bundle: Path) -> None:
    write_envelopes(bundle, envelopes(bundle)[1:])

    fails_at_position(verify_bundle(bundle), 2)


def test_two_swapped_entries_are_found_at_the_first_out_of_place(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = envelopes(bundle)
    entries[5], entries[6] = entries[6], entries[5]  # positions 6 and 7
    write_envelopes(bundle, entries)

    fails_at_position(verify_bundle(bundle), 7)
    code, out = cli_verify(capsys, bundle)
    assert (code, "TAMPERING DETECTED at position 7:" in out) == (1, True)


def test_two_swapped_entries_renumbered_in_order_are_found_at_the_first(bundle: Path) -> None:
    entries = envelopes(bundle)
    entries[5], entries[6] = entries[6], entries[5]
    entries[5]["position"], entries[6]["position"] = 6, 7
    write_envelopes(bundle, entries)

    fails_at_position(verify_bundle(bundle), 6)


def forged_invoice(like: dict[str, Any], after: dict[str, Any], position: int) -> dict[str, Any]:
    """An InvoiceRecorded shaped ``like`` a real one, chained onto ``after``, hash and all."""
    forged = {
        **like,
        "position": position,
        "event_id": "00000000-0000-5000-8000-000000000001",
        "payload": {**like["payload"], "invoice_no": "INV-FORGED", "amount_fen": 1},
        "prev_hash": after["hash"],
    }
    forged["hash"] = entry_hash(after["hash"], forged)
    return forged


def test_an_inserted_entry_renumbering_the_rest_breaks_the_chain_after_it(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = envelopes(bundle)
    forged = forged_invoice(entries[1], entries[4], 6)
    rest = [{**e, "position": e["position"] + 1} for e in entries[5:]]
    write_envelopes(bundle, [*entries[:5], forged, *rest])

    fails_at_position(verify_bundle(bundle), 7)
    code, out = cli_verify(capsys, bundle)
    assert (code, "TAMPERING DETECTED at position 7:" in out) == (1, True)


def test_an_inserted_entry_at_a_taken_position_is_named(bundle: Path) -> None:
    entries = envelopes(bundle)
    write_envelopes(bundle, [*entries[:5], forged_invoice(entries[1], entries[4], 5), *entries[5:]])

    verdict = verify_bundle(bundle)

    fails_at_position(verdict, 5)
    assert "does not follow 5" in (verdict.problem or "")


def test_a_duplicated_entry_is_named(bundle: Path) -> None:
    entries = envelopes(bundle)
    write_envelopes(bundle, [*entries[:6], entries[5], *entries[6:]])

    fails_at_position(verify_bundle(bundle), 6)


def test_a_line_that_is_not_json_is_a_failed_verdict_naming_its_line(bundle: Path) -> None:
    lines = (bundle / "events.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3][:40] + b"\n"
    (bundle / "events.jsonl").write_bytes(b"".join(lines))

    verdict = verify_bundle(bundle)

    assert verdict.ok is False
    assert verdict.checked == 3
    assert verdict.problem is not None and "events.jsonl line 4 is not JSON" in verdict.problem


def test_a_line_that_is_json_but_not_an_envelope_is_a_failed_verdict(bundle: Path) -> None:
    lines = (bundle / "events.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = b"[]\n"
    (bundle / "events.jsonl").write_bytes(b"".join(lines))

    verdict = verify_bundle(bundle)

    assert verdict.ok is False
    assert verdict.checked == 3


def test_the_cli_names_a_line_that_is_not_json(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (bundle / "events.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3][:40] + b"\n"
    (bundle / "events.jsonl").write_bytes(b"".join(lines))

    code, out = cli_verify(capsys, bundle)

    assert code == 1
    assert "TAMPERING DETECTED" in out and "line 4" in out


def test_an_entry_appended_after_the_last_checkpoint_is_only_chain_checked(
    bundle: Path,
) -> None:
    # Anyone can extend the chain without the key: only a later checkpoint covers the tail.
    entries = envelopes(bundle)
    write_envelopes(bundle, [*entries, forged_invoice(entries[1], entries[-1], SIZE + 1)])

    verdict = verify_bundle(bundle)

    assert verdict.ok
    assert (verdict.checked, verdict.checkpoints_verified) == (SIZE + 1, len(CHECKPOINTS))
    assert (verdict.covered, verdict.uncovered) == (SIZE, 1)
    assert "1 after the last one by the chain alone" in verdict.summary()
    assert verdict.root_hash != checkpoints_of(bundle)[-1]["root_hash"]


# -- forged checkpoints ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("root_hash", "ab" * 32, 8),
        ("tree_size", 9, 9),
        ("tree_size", 7, 7),
        ("issued_at", "2020-01-01T00:00:00.000000Z", 8),
    ],
)
def test_a_forged_checkpoint_is_named(
    bundle: Path, capsys: pytest.CaptureFixture[str], field: str, value: Any, named: int
) -> None:
    checkpoints = checkpoints_of(bundle)
    assert checkpoints[1]["tree_size"] == 8
    checkpoints[1][field] = value
    write_checkpoints(bundle, checkpoints)

    verdict = verify_bundle(bundle)

    fails_at_checkpoint(verdict, named)
    assert "signature" in (verdict.problem or "")
    code, out = cli_verify(capsys, bundle)
    assert code == 1
    assert f"TAMPERING DETECTED at checkpoint {named}: the checkpoint's signature" in out


def test_a_checkpoint_signed_with_another_key_is_named(bundle: Path) -> None:
    checkpoints = checkpoints_of(bundle)
    checkpoints[2]["signature"] = sign_checkpoint(Ed25519PrivateKey.generate(), checkpoints[2])
    write_checkpoints(bundle, checkpoints)

    fails_at_checkpoint(verify_bundle(bundle), 12)


def test_a_forged_checkpoint_is_named_even_over_a_damaged_log(bundle: Path) -> None:
    entries = envelopes(bundle)
    change_an_amount(entries, 2)
    write_envelopes(bundle, entries)
    checkpoints = checkpoints_of(bundle)
    checkpoints[3]["root_hash"] = "cd" * 32
    write_checkpoints(bundle, checkpoints)

    fails_at_checkpoint(verify_bundle(bundle), SIZE)


def test_a_rewritten_prefix_with_a_recomputed_chain_is_caught_by_the_first_checkpoint(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = envelopes(bundle)
    change_an_amount(entries, 2)  # 600,000.00 invoiced becomes 1,500,000.00
    write_envelopes(bundle, rechain(entries))

    verdict = verify_bundle(bundle)

    fails_at_checkpoint(verdict, 4)
    assert verdict.checked == 3  # the chain itself is consistent up to the checkpoint
    assert "Merkle root of the first 4 entries" in (verdict.problem or "")
    code, out = cli_verify(capsys, bundle)
    assert (code, "TAMPERING DETECTED at checkpoint 4:" in out) == (1, True)


def test_a_rewrite_after_the_last_checkpoint_but_one_is_caught_by_the_last(bundle: Path) -> None:
    entries = envelopes(bundle)
    entries[12]["payload"]["reason"] = "另有原因"  # position 13, the cancellation
    write_envelopes(bundle, rechain(entries))

    fails_at_checkpoint(verify_bundle(bundle), SIZE)


# -- truncation -------------------------------------------------------------------------------


def test_a_log_truncated_below_its_last_checkpoint_is_named(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_envelopes(bundle, envelopes(bundle)[:12])

    verdict = verify_bundle(bundle)

    fails_at_checkpoint(verdict, SIZE)
    assert verdict.checked == 12
    assert "entries were removed from its end" in (verdict.problem or "")
    code, out = cli_verify(capsys, bundle)
    assert code == 1
    assert f"TAMPERING DETECTED at checkpoint {SIZE}: a checkpoint covers {SIZE} entries" in out


def test_a_log_truncated_below_several_checkpoints_names_the_smallest(bundle: Path) -> None:
    write_envelopes(bundle, envelopes(bundle)[:6])

    fails_at_checkpoint(verify_bundle(bundle), 8)


def test_an_emptied_log_is_named_at_the_first_checkpoint(bundle: Path) -> None:
    write_envelopes(bundle, [])

    fails_at_checkpoint(verify_bundle(bundle), 4)


# -- a checkpoint held independently -----------------------------------------------------------


def test_an_older_trusted_checkpoint_passes_on_the_intact_longer_log(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = checkpoints_of(bundle)[1]  # tree of 8, as an auditor kept it last year

    assert verify_bundle(bundle, older).ok
    code, out = cli_verify(capsys, bundle, "--trusted-checkpoint", trusted_file(tmp_path, older))
    assert code == 0, out
    assert "it extends the trusted checkpoint of 8" in out


def test_a_trusted_checkpoint_the_bundle_no_longer_lists_is_still_checked(
    history: History, bundle: Path
) -> None:
    # Signed by the registry at a size it never stored a checkpoint of.
    key = load_or_create_key(history.served.key_file)
    (held,) = [c for c in resign(envelopes(bundle), key) if c["tree_size"] == 8]
    held = {**held, "tree_size": 6}
    held["root_hash"] = root([leaf_hash(canonical_bytes(e)) for e in envelopes(bundle)[:6]]).hex()
    held["signature"] = sign_checkpoint(key, held)

    assert verify_bundle(bundle, held).ok

    entries = envelopes(bundle)
    entries[3]["recorded_at"] = entries[2]["recorded_at"]
    write_envelopes(bundle, rechain(entries))
    write_checkpoints(bundle, [])  # the registry's own checkpoints dropped too
    fails_at_checkpoint(verify_bundle(bundle, held), 6)


def test_a_rewritten_and_re_signed_history_passes_alone_but_fails_the_trusted_checkpoint(
    history: History, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The registry's operator, holding the key, rewrites position 2 and signs new checkpoints.
    older = checkpoints_of(bundle)[1]
    entries = envelopes(bundle)
    change_an_amount(entries, 2)
    rewritten = rechain(entries)
    write_envelopes(bundle, rewritten)
    write_checkpoints(bundle, resign(rewritten, load_or_create_key(history.served.key_file)))

    assert verify_bundle(bundle).ok  # only an independently held checkpoint can tell

    verdict = verify_bundle(bundle, older)
    fails_at_checkpoint(verdict, 8)
    assert "differs from the trusted one" in (verdict.problem or "")
    code, out = cli_verify(capsys, bundle, "--trusted-checkpoint", trusted_file(tmp_path, older))
    assert code == 1
    assert "TAMPERING DETECTED at checkpoint 8:" in out


def test_a_rewritten_history_without_checkpoints_is_unproven_and_fails_the_trusted_checkpoint(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = checkpoints_of(bundle)[1]
    entries = envelopes(bundle)
    change_an_amount(entries, 5)
    write_envelopes(bundle, rechain(entries))
    write_checkpoints(bundle, [])

    alone = verify_bundle(bundle)
    assert (alone.ok, alone.unproven, alone.covered, alone.uncovered) == (False, True, 0, SIZE)
    verdict = verify_bundle(bundle, older)
    fails_at_checkpoint(verdict, 8)
    assert "Merkle root of the first 8 entries" in (verdict.problem or "")
    code, _ = cli_verify(capsys, bundle, "--trusted-checkpoint", trusted_file(tmp_path, older))
    assert code == 1


def test_a_log_truncated_below_the_trusted_checkpoint_fails_it(bundle: Path) -> None:
    held = checkpoints_of(bundle)[-1]
    write_envelopes(bundle, envelopes(bundle)[:10])
    write_checkpoints(bundle, checkpoints_of(bundle)[:2])  # the ones above dropped

    assert verify_bundle(bundle).ok
    fails_at_checkpoint(verify_bundle(bundle, held), SIZE)


def test_a_bundle_with_another_key_throughout_fails_the_trusted_checkpoint(
    bundle: Path,
) -> None:
    older = checkpoints_of(bundle)[1]
    forger = Ed25519PrivateKey.generate()
    entries = envelopes(bundle)
    change_an_amount(entries, 5)
    rewritten = rechain(entries)
    write_envelopes(bundle, rewritten)
    write_checkpoints(bundle, resign(rewritten, forger))
    (bundle / "public-key.pem").write_text(public_key_pem(forger))

    assert verify_bundle(bundle).ok  # self-consistent under the forger's key
    verdict = verify_bundle(bundle, older)
    fails_at_checkpoint(verdict, 8)
    assert "not signed by this key" in (verdict.problem or "")


def test_the_cli_verifies_against_a_public_key_the_auditor_holds(
    history: History, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forger = Ed25519PrivateKey.generate()
    entries = envelopes(bundle)
    change_an_amount(entries, 5)
    rewritten = rechain(entries)
    write_envelopes(bundle, rewritten)
    write_checkpoints(bundle, resign(rewritten, forger))
    (bundle / "public-key.pem").write_text(public_key_pem(forger))
    held = tmp_path / "registry-public-key.pem"
    held.write_text(public_key_pem(load_or_create_key(history.served.key_file)))

    try:
        code, out = cli_verify(capsys, bundle, "--public-key", held)
    except SystemExit as exc:  # argparse: no such option
        code, out = int(exc.code or 0), capsys.readouterr().err

    assert code == 1, out
    assert "TAMPERING DETECTED at checkpoint" in out


# -- live --------------------------------------------------------------------------------------


def test_verify_works_live_against_the_registry(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    served = history.served
    code, out = cli_verify(capsys, "--registry", served.url, "--token", served.tokens.auditor)

    assert code == 0, out
    assert f"verified: {SIZE} entries to position {SIZE}, 4 checkpoints" in out


def test_live_verify_with_an_older_trusted_checkpoint_passes(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = history.served
    older = trusted_file(tmp_path, checkpoints_of(history.bundle)[0])

    code, out = cli_verify(
        capsys, "--registry", served.url, "--token", served.tokens.auditor,
        "--trusted-checkpoint", older,
    )  # fmt: skip

    assert code == 0, out
    assert "it extends the trusted checkpoint of 4" in out


def test_live_verify_names_an_entry_altered_in_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = serve_registry(tmp_path / "live")
    try:
        with served.client() as client:
            record(client.post, served.tokens.header)
            checkpoint_all(client.get, client.post, served.tokens.header("bureau"))
        alter_state(served.database_url, 5, b'"amount_fen":100000000', b'"amount_fen":1')

        code, out = cli_verify(capsys, "--registry", served.url, "--token", served.tokens.auditor)
    finally:
        served.stop()

    assert code == 1, out
    assert "TAMPERING DETECTED at position 5:" in out


# -- the database altered behind the registry's back (SQLite and PostgreSQL) -------------------


def alter_state(database_url: str, position: int, old: bytes, new: bytes) -> None:
    with sql(database_url) as run:
        state = bytes(run("SELECT state FROM registry_events WHERE id = :p", p=position).scalar())
        assert old in state, state
        run(
            "UPDATE registry_events SET state = :s WHERE id = :p",
            s=state.replace(old, new),
            p=position,
        )


class sql:
    """Statements on the registry's database through a connection of its own, committed."""

    def __init__(self, database_url: str) -> None:
        self._engine = create_engine(database_url)

    def __enter__(self) -> Callable[..., Any]:
        self._begin = self._engine.begin()
        conn = self._begin.__enter__()
        return lambda statement, **params: conn.execute(text(statement), params)

    def __exit__(self, *exc: Any) -> None:
        try:
            self._begin.__exit__(*exc)
        finally:
            self._engine.dispose()


@dataclass
class Stored:
    client: TestClient
    database_url: str
    auditor: str


@pytest.fixture
def stored(database_url: str, tokens: Tokens, tmp_path: Path) -> Iterator[Stored]:
    """The registry API over a real store holding HISTORY and its four checkpoints."""
    settings = RegistrySettings(
        registry_database_url=database_url,
        tokens_file=tokens.path,
        signing_key_file=tmp_path / "registry-signing-key.pem",
        checkpoint_every=EVERY,
    )
    with TestClient(create_app(settings)) as client:
        record(client.post, tokens.header)
        checkpoint_all(
            lambda path: client.get(path, headers=tokens.header("auditor")),
            client.post,
            tokens.header("bureau"),
        )
        yield Stored(client, database_url, tokens.auditor)


def export(stored: Stored, folder: Path) -> Path:
    """``export_bundle`` over a ``RegistrySource`` reading the in-process API."""
    source = RegistrySource("http://testserver", stored.auditor, page_size=4)
    source._client.close()
    source._client = stored.client  # type: ignore[assignment]
    stored.client.headers["Authorization"] = f"Bearer {stored.auditor}"
    export_bundle(source, folder)
    return folder


def swap_states(database_url: str, a: int, b: int) -> None:
    with sql(database_url) as run:
        states = {
            p: bytes(run("SELECT state FROM registry_events WHERE id = :p", p=p).scalar())
            for p in (a, b)
        }
        for p, q in ((a, b), (b, a)):
            run("UPDATE registry_events SET state = :s WHERE id = :p", s=states[q], p=p)


def statements(*pairs: str) -> Callable[[str], None]:
    def apply(database_url: str) -> None:
        with sql(database_url) as run:
            for statement in pairs:
                run(statement)

    return apply


# Each alteration of the database, and where verification must name it.
DATABASE_TAMPERINGS: dict[str, tuple[Callable[[str], None], str, int]] = {
    "raise_an_invoice_amount": (
        lambda url: alter_state(url, 5, b'"amount_fen":100000000', b'"amount_fen":190000000'),
        "position",
        5,
    ),
    "rename_the_buyer": (
        lambda url: alter_state(url, 4, LOCAL_ENTERPRISE["name"].encode(), "某某有限公司".encode()),
        "position",
        4,
    ),
    "delete_an_event": (statements("DELETE FROM registry_events WHERE id = 7"), "position", 8),
    "delete_a_chain_entry": (
        statements("DELETE FROM registry_chain WHERE position = 7"),
        "position",
        8,
    ),
    "swap_two_events": (lambda url: swap_states(url, 2, 5), "position", 2),
    "overwrite_a_hash": (
        statements(f"UPDATE registry_chain SET hash = '{'a' * 64}' WHERE position = 4"),
        "position",
        4,
    ),
    "overwrite_a_prev_hash": (
        statements(f"UPDATE registry_chain SET prev_hash = '{'b' * 64}' WHERE position = 9"),
        "position",
        9,
    ),
    "truncate_below_a_checkpoint": (
        statements(
            "DELETE FROM registry_events WHERE id > 10",
            "DELETE FROM registry_chain WHERE position > 10",
        ),
        "checkpoint",
        12,
    ),
    "forge_a_stored_checkpoint": (
        statements(f"UPDATE registry_checkpoints SET root_hash = '{'c' * 64}' WHERE tree_size = 8"),
        "checkpoint",
        8,
    ),
}


@pytest.mark.parametrize("tamper", sorted(DATABASE_TAMPERINGS))
def test_the_database_altered_behind_the_registrys_back_is_named_after_export(
    stored: Stored, tmp_path: Path, tamper: str
) -> None:
    alter, kind, where = DATABASE_TAMPERINGS[tamper]
    assert verify_bundle(export(stored, tmp_path / "before")).ok

    alter(stored.database_url)
    verdict = verify_bundle(export(stored, tmp_path / "after"))

    if kind == "position":
        fails_at_position(verdict, where)
    else:
        fails_at_checkpoint(verdict, where)


def test_a_database_rewrite_with_a_recomputed_chain_passes_the_chain_but_not_the_checkpoints(
    stored: Stored, tmp_path: Path
) -> None:
    alter_state(stored.database_url, 2, b'"amount_fen":60000000', b'"amount_fen":119000000')
    # Recompute every hash and leaf from the altered entry on, as the writer would have.
    served = envelopes(export(stored, tmp_path / "served"))
    with sql(stored.database_url) as run:
        for entry in rechain(served):
            run(
                "UPDATE registry_chain SET prev_hash = :p, hash = :h, leaf_hash = :l "
                "WHERE position = :pos",
                p=entry["prev_hash"],
                h=entry["hash"],
                l=leaf_hash(canonical_bytes(entry)).hex(),
                pos=entry["position"],
            )
    registry = Registry(stored.database_url)
    try:
        chain_verdict = list(registry.verify())[-1]
    finally:
        registry.close()

    verdict = verify_bundle(export(stored, tmp_path / "after"))

    assert chain_verdict["ok"] is True, chain_verdict  # the database alone cannot tell
    fails_at_checkpoint(verdict, 4)


# -- replay -------------------------------------------------------------------------------------


def replayed(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> dict[str, Any]:
    out = tmp_path / "replay.json"
    capsys.readouterr()
    assert main(["audit", "replay", str(bundle), *args, "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def of_2024(result: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(e["category"], e["beneficiary"]): e["entitlement"] for e in result["years"]["2024"]}


@pytest.mark.parametrize("position", sorted(ENTITLEMENTS_2024))
def test_replay_until_a_position_gives_that_moments_entitlements(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], position: int
) -> None:
    result = replayed(bundle, tmp_path, capsys, "--until", str(position))

    assert result["position"] == position
    assert result["policy_version"] == "pingdingshan-2020.1"
    assert of_2024(result) == ENTITLEMENTS_2024[position]
    assert all(result["years"][str(y)] == [] for y in (2020, 2021, 2022, 2023))


def test_replay_of_the_whole_log_explains_each_figure(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = replayed(bundle, tmp_path, capsys)

    assert result["position"] == SIZE
    assert of_2024(result) == ENTITLEMENTS_2024[SIZE]
    by_key = {(e["category"], e["beneficiary"]): e for e in result["years"]["2024"]}
    output = by_key[("output", UNIV)]
    assert output["contracts"] == []
    assert sorted((x["registration_no"], x["reason"]) for x in output["excluded"]) == [
        ("R1", "provincial_funding"),
        ("R3", "provincial_funding"),
    ]
    absorption = by_key[("absorption", FIRM)]
    assert ("R2", "cancelled") in {
        (x["registration_no"], x["reason"]) for x in absorption["excluded"]
    }
    assert by_key[("broker", BROKER)]["contracts"] == [
        {"registration_no": "R3", "evidenced": "500000.00"}
    ]


@pytest.mark.parametrize("position", [3, 6, 12, 13])
def test_replay_as_of_the_instant_an_entry_was_recorded_includes_it_and_nothing_later(
    history: History,
    bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    position: int,
) -> None:
    instant = history.recorded_at[position - 1]

    result = replayed(bundle, tmp_path, capsys, "--as-of", instant)

    assert result["position"] == position
    assert of_2024(result) == ENTITLEMENTS_2024[position]


def test_replay_as_of_before_the_first_entry_has_nothing(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = replayed(bundle, tmp_path, capsys, "--as-of", "2020-01-01T00:00:00+00:00")

    assert result["position"] == 0
    assert all(entries == [] for entries in result["years"].values())


def test_replay_as_of_an_instant_in_another_zone_means_the_same_moment(
    history: History, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import datetime, timedelta, timezone

    instant = datetime.fromisoformat(history.recorded_at[5])  # position 6
    beijing = instant.astimezone(timezone(timedelta(hours=8))).isoformat()

    result = replayed(bundle, tmp_path, capsys, "--as-of", beijing)

    assert result["position"] == 6
    assert of_2024(result) == ENTITLEMENTS_2024[6]


def test_replay_until_and_as_of_together_are_refused(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "replay", str(bundle), "--until", "3", "--as-of", "2024-01-01T00:00:00Z"])

    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_replay_reads_the_bundle_not_the_registry(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An altered bundle replays to the altered figures when told not to verify it first.
    entries = envelopes(bundle)
    change_an_amount(entries, 5)  # INV-2: 1,000,000.00 → 1,900,000.00
    change_an_amount(entries, 6)  # BANK-2 too
    write_envelopes(bundle, entries)

    result = replayed(bundle, tmp_path, capsys, "--until", "6", "--no-verify")

    assert of_2024(result)[("absorption", FIRM)] == "190000.00"
    assert not verify_bundle(bundle).ok


def test_orjson_reads_what_export_writes(bundle: Path) -> None:
    first = (bundle / "events.jsonl").read_bytes().splitlines()[0]
    assert canonical_bytes(orjson.loads(first)) == first


# -- what no checkpoint covers, and the manifest ---------------------------------------------


def rewrite_manifest(bundle: Path) -> None:
    """Make the manifest agree with the bundle's entries, as a careful adversary would."""
    entries, path = envelopes(bundle), bundle / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    manifest |= {
        "events": len(entries),
        "last_position": entries[-1]["position"] if entries else 0,
        "head_hash": entries[-1]["hash"] if entries else GENESIS_HASH,
        "checkpoints": len(checkpoints_of(bundle)),
    }
    path.write_text(json.dumps(manifest), "utf-8")


def cli_verify_every(capsys: pytest.CaptureFixture[str], bundle: Path) -> tuple[int, str]:
    return cli_verify(capsys, bundle, "--checkpoint-every", str(EVERY))


def test_the_honest_bundle_is_covered_by_its_checkpoints_and_agrees_with_its_manifest(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli_verify_every(capsys, bundle)
    assert code == 0, out
    assert f"{SIZE} entries covered by a signed checkpoint, 0 after the last one" in out

    code, out = cli_verify(capsys, bundle, "--checkpoint-every", str(EVERY), "--json")
    verdict = json.loads(out)
    assert (verdict["covered"], verdict["uncovered"], verdict["max_uncovered"]) == (SIZE, 0, EVERY)
    assert verdict["manifest_checked"] is True and verdict["message"].startswith("verified:")


def test_a_rewritten_tail_whose_checkpoints_were_deleted_is_not_proven(
    bundle: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = envelopes(bundle)
    entries[12]["payload"]["reason"] = "另有原因"  # position 13, the cancellation
    change_an_amount(entries, 11)  # and INV-4
    write_envelopes(bundle, rechain(entries))
    write_checkpoints(bundle, [c for c in checkpoints_of(bundle) if c["tree_size"] <= 8])
    rewrite_manifest(bundle)

    verdict = verify_log(
        BundleSource(bundle).envelopes(),
        checkpoints_of(bundle),
        BundleSource(bundle).public_key_pem(),
        checkpoint_every=EVERY,
    )

    assert (verdict.ok, verdict.unproven, verdict.covered, verdict.uncovered) == (
        False,
        True,
        8,
        SIZE - 8,
    )
    assert "6 entries after the last signed checkpoint (tree size 8) are covered by none" in (
        verdict.problem or ""
    )
    code, out = cli_verify_every(capsys, bundle)
    assert code == 1
    assert "NOT PROVEN at the log's tail: 6 entries after the last signed checkpoint" in out
    # The interval is the registry's setting, read from the same variable.
    monkeypatch.setenv("TCR_CHECKPOINT_EVERY", str(EVERY))
    assert cli_verify(capsys, bundle)[0] == 1
    monkeypatch.setenv("TCR_CHECKPOINT_EVERY", "1000")
    assert cli_verify(capsys, bundle)[0] == 0  # six uncovered are within a 1000 interval


def test_an_empty_checkpoints_file_is_not_proven(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_checkpoints(bundle, [])

    code, out = cli_verify(capsys, bundle)
    assert code == 1
    assert "TAMPERING DETECTED at the bundle: the bundle's manifest says checkpoints 4" in out

    rewrite_manifest(bundle)
    code, out = cli_verify(capsys, bundle)
    assert code == 1
    assert f"NOT PROVEN at the log's tail: no signed checkpoint covers any of the {SIZE}" in out


def test_a_bundle_with_its_tail_cut_off_disagrees_with_its_manifest(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_envelopes(bundle, envelopes(bundle)[:12])
    write_checkpoints(bundle, [c for c in checkpoints_of(bundle) if c["tree_size"] <= 12])
    assert verify_bundle(bundle).ok  # the chain and the checkpoints left are intact

    code, out = cli_verify_every(capsys, bundle)

    assert code == 1
    assert f"the bundle's manifest says events {SIZE} but the bundle holds 12" in out


def test_a_manifest_whose_head_hash_differs_is_named(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    path.write_text(json.dumps({**manifest, "head_hash": "d" * 64}), "utf-8")

    code, out = cli_verify_every(capsys, bundle)

    assert code == 1 and "manifest says head_hash" in out


def test_the_audit_api_says_the_same_verdict_as_the_cli(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.audit.app import create_app as create_audit_app
    from services.audit.settings import AuditSettings

    served = history.served
    settings = AuditSettings(
        tokens_file=served.tokens.path,
        registry_url=served.url,
        registry_token=served.tokens.auditor,
        checkpoint_every=EVERY,
    )
    with TestClient(create_audit_app(settings)) as audit:
        answer = audit.get("/v1/verify", headers=served.tokens.header("auditor")).json()
    code, out = cli_verify(
        capsys, "--registry", served.url, "--token", served.tokens.auditor,
        "--checkpoint-every", str(EVERY),
    )  # fmt: skip

    assert code == 0 and answer["ok"] is True
    assert out.strip() == answer["message"]
    assert (answer["covered"], answer["uncovered"]) == (SIZE, 0)


# -- replay, compare and report verify first ------------------------------------------------


def tamper(bundle: Path) -> None:
    entries = envelopes(bundle)
    change_an_amount(entries, 5)
    write_envelopes(bundle, entries)


def test_replay_refuses_a_bundle_that_does_not_verify(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(bundle)
    out = tmp_path / "replay.json"

    code = main(["audit", "replay", str(bundle), "--out", str(out)])

    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "TAMPERING DETECTED at position 5" in err and "replay: refused" in err


def test_replay_with_no_verify_runs_and_says_so(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(bundle)
    out = tmp_path / "replay.json"

    code = main(["audit", "replay", str(bundle), "--out", str(out), "--no-verify"])

    assert code == 0 and out.exists()
    assert "WARNING: tcr audit replay --no-verify: the history was NOT verified" in (
        capsys.readouterr().err
    )


def test_replay_of_an_honest_bundle_says_it_verified_it_first(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "replay", str(bundle), "--out", str(tmp_path / "r.json")]) == 0
    assert capsys.readouterr().err.startswith(f"verified: {SIZE} entries")


@pytest.fixture
def subsidy_answering_nothing() -> Iterator[str]:
    """A subsidy API that serves no entitlements at the bundle's head: every one differs."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"position": SIZE, "entitlements": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_compare_refuses_a_bundle_that_does_not_verify_and_runs_with_no_verify(
    bundle: Path, subsidy_answering_nothing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(bundle)
    argv = ["audit", "compare", str(bundle), "--subsidy", subsidy_answering_nothing]

    code = main([*argv, "--token", "t"])
    captured = capsys.readouterr()
    assert code == 1
    assert "TAMPERING DETECTED at position 5" in captured.err
    assert "compare: refused" in captured.err and "entitlements" not in captured.out

    code = main([*argv, "--token", "t", "--no-verify"])
    captured = capsys.readouterr()
    assert code == 1  # it ran: every recomputed entitlement differs from none served
    assert "2024 now, at position 14: 3 entitlements, 3 differences" in captured.out
    assert "NOT verified" in captured.err


def test_report_refuses_a_bundle_that_does_not_verify(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_checkpoints(bundle, [])
    rewrite_manifest(bundle)
    out = tmp_path / "report"

    code = main(["audit", "report", str(bundle), "--year", "2024", "--out", str(out)])

    assert code == 1 and not out.exists()
    assert "NOT PROVEN at the log's tail" in capsys.readouterr().out


# -- the registry's own check on a read-only database ----------------------------------------


def registry_verify(*args: str) -> int:
    return main(["registry", "verify", "--read-only", *args])


def test_read_only_verify_checks_a_read_only_sqlite_copy_and_finds_it_altered(
    stored: Stored, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib
    import sqlite3

    if not stored.database_url.startswith("sqlite"):
        pytest.skip("a SQLite file; PostgreSQL is checked through a read-only role below")
    copies = tmp_path / "copy"
    copies.mkdir()
    copy = copies / "registry.db"
    source = sqlite3.connect(stored.database_url.removeprefix("sqlite:///"))
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    os.chmod(copy, 0o444)
    before = hashlib.sha256(copy.read_bytes()).hexdigest()

    capsys.readouterr()
    assert registry_verify("--database-url", f"sqlite:///{copy}") == 0
    assert f"chain intact: {SIZE} entries" in capsys.readouterr().out
    uri = f"sqlite:///file:{copy}?mode=ro&uri=true"
    assert registry_verify("--database-url", uri) == 0
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before
    assert not list(copies.glob("*lock*"))  # no schema lock taken

    os.chmod(copy, 0o644)
    alter_state(f"sqlite:///{copy}", 5, b'"amount_fen":100000000', b'"amount_fen":190000000')
    os.chmod(copy, 0o444)
    capsys.readouterr()
    assert registry_verify("--database-url", f"sqlite:///{copy}") == 1
    assert "chain BROKEN at position 5" in capsys.readouterr().out


def test_read_only_verify_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no SQLite database at") as exit_:
        registry_verify("--database-url", f"sqlite:///{tmp_path / 'absent.db'}")
    assert exit_.value.code != 0
    assert not (tmp_path / "absent.db").exists()


def test_read_only_verify_works_through_a_postgresql_role_that_may_only_select(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    import uuid

    from sqlalchemy import make_url

    if not stored.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL; SQLite is checked on a read-only file above")
    role = f"tcr_reader_{uuid.uuid4().hex[:8]}"
    database = make_url(stored.database_url).database
    with sql(stored.database_url) as run:
        run(f"CREATE ROLE {role} LOGIN")
        run(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        run(f"GRANT USAGE ON SCHEMA public TO {role}")
        run(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    reader = make_url(stored.database_url).set(username=role, password=None)
    url = reader.render_as_string(hide_password=False)
    try:
        capsys.readouterr()
        assert registry_verify("--database-url", url) == 0
        assert f"chain intact: {SIZE} entries" in capsys.readouterr().out

        alter_state(stored.database_url, 5, b'"amount_fen":100000000', b'"amount_fen":190000000')
        assert registry_verify("--database-url", url) == 1
        assert "chain BROKEN at position 5" in capsys.readouterr().out
    finally:
        with sql(stored.database_url) as run:
            run(f"DROP OWNED BY {role}")
            run(f"DROP ROLE {role}")


# -- tokens off the command line -------------------------------------------------------------


def test_live_verify_reads_the_token_from_tcr_token(
    history: History, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TCR_TOKEN", history.served.tokens.auditor)

    code, out = cli_verify(capsys, "--registry", history.served.url)

    assert code == 0, out
    assert f"verified: {SIZE} entries" in out


def test_export_reads_the_token_from_a_file(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "auditor.token"
    token_file.write_text(f"  {history.served.tokens.auditor}  \nsecond line ignored\n")
    out = tmp_path / "exported"

    code = main(
        ["audit", "export", "--registry", history.served.url, "--token-file", str(token_file),
         "--out", str(out)]
    )  # fmt: skip

    assert code == 0
    assert f"exported {SIZE} events" in capsys.readouterr().out
    assert verify_bundle(out).ok


def test_a_token_file_that_is_missing_is_a_clear_error(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such.token"

    with pytest.raises(SystemExit) as exit_:
        cli_verify(capsys, "--registry", history.served.url, "--token-file", str(missing))

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --token-file: cannot read the token from {missing}" in err


def test_live_verify_without_any_token_says_how_to_give_one(
    history: History, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TCR_TOKEN", raising=False)

    with pytest.raises(SystemExit, match="--token-file PATH, \\$TCR_TOKEN or --token"):
        cli_verify(capsys, "--registry", history.served.url)
