"""ContractRegistered and TransferProofRecorded have a version 2. New events are written as v2;
the history written before (tests/fixtures/v1-store/, by the code of December 2026) is never
rewritten: today's registry serves it byte for byte, and the mixed log verifies and replays, with
a v2 event carried through the relay, Kafka, the subsidy consumer and the audit."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from services.audit.application import Audit
from services.audit.sources import BundleSource, export_bundle
from services.cli import main
from services.common.policy.loader import load_schedule
from services.registry.application import Registry
from services.registry.log import chain_envelopes
from services.subsidy.store import EntryStore
from tests.conftest import Tokens
from tests.integration.test_relay import make_relay, running, wait_until
from tests.integration.test_subsidy_api import served
from tests.support.broker import TansuBroker
from tests.support.demo_bundle import InProcessRegistry
from tests.support.finance import finance_client
from tests.support.parties import contract_body, invoice_body, transfer_body
from tests.support.stack import read_all, submit, topic_records

OLD_STORE = Path(__file__).parents[1] / "fixtures" / "v1-store"
CERTIFICATE = "410400-2024-000123"
NEW = "2024410400000001"  # contract_body's registration number; not in the old store


def _head(client: TestClient) -> int:
    head: int = client.get("/v1/health").json()["head"]
    return head


def _last_entry(reader: TestClient) -> dict[str, Any]:
    """The log's last entry, read as the auditor (stations may not read the log)."""
    events: list[dict[str, Any]] = reader.get("/v1/events", params={"after": 0}).json()["events"]
    return events[-1]


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.json()


# -- the API: what version 2 adds ----------------------------------------------------------------


def test_a_registration_is_logged_as_version_2_with_its_certificate_number(
    client: TestClient, reader: TestClient
) -> None:
    assert client.post("/v1/contracts", json=contract_body(certificate_no=CERTIFICATE)).is_success

    entry = _last_entry(reader)
    assert (entry["type"], entry["schema_version"]) == ("ContractRegistered", 2)
    assert entry["payload"]["certificate_no"] == CERTIFICATE


def test_a_registration_without_a_certificate_number_is_logged_with_none(
    client: TestClient, reader: TestClient
) -> None:
    assert client.post("/v1/contracts", json=contract_body()).is_success

    entry = _last_entry(reader)
    assert (entry["schema_version"], entry["payload"]["certificate_no"]) == (2, None)


@pytest.mark.parametrize(
    "certificate_no",
    [
        "410400-2024-00012a",  # lower case
        "-410400-2024-000123",  # begins with a hyphen
        "410400-2024-000123-",  # ends with one
        "410400_2024_000123",  # underscores
        "豫科登字2024第123号",  # not the characters of the rule
        "A1234",  # 5 characters
        "A" * 41,
        "",
        410400,
    ],
)
def test_a_certificate_number_breaking_its_rule_is_refused_and_nothing_stored(
    client: TestClient, certificate_no: object
) -> None:
    response = client.post("/v1/contracts", json=contract_body(certificate_no=certificate_no))

    _refused(response, "certificate_no")
    assert _head(client) == 0


def test_a_transfer_proof_is_logged_as_version_2_in_cny_whether_or_not_it_says_so(
    client: TestClient, reader: TestClient
) -> None:
    assert client.post("/v1/contracts", json=contract_body()).is_success
    for serial, said in (("BANK-1", {}), ("BANK-2", {"currency": "CNY"})):
        path = f"/v1/contracts/{NEW}/transfer-proofs"
        assert client.post(path, json=transfer_body(serial, "1000.00", **said)).is_success

        entry = _last_entry(reader)
        assert (entry["type"], entry["schema_version"]) == ("TransferProofRecorded", 2)
        assert entry["payload"]["currency"] == "CNY"


@pytest.mark.parametrize("currency", ["USD", "cny", "RMB", None])
def test_a_transfer_proof_in_another_currency_is_refused_and_nothing_stored(
    client: TestClient, currency: object
) -> None:
    assert client.post("/v1/contracts", json=contract_body()).is_success

    response = client.post(
        f"/v1/contracts/{NEW}/transfer-proofs", json=transfer_body(currency=currency)
    )

    _refused(response, "currency")
    assert _head(client) == 1


# -- history written before version 2 --------------------------------------------------------------


@pytest.fixture
def old_registry(tmp_path: Path) -> Iterator[Registry]:
    """Today's registry over a copy of the store written before version 2."""
    db = tmp_path / "registry.db"
    db.write_bytes(gzip.decompress((OLD_STORE / "registry.db.gz").read_bytes()))
    registry = Registry(f"sqlite:///{db}")
    registry.start()
    try:
        yield registry
    finally:
        registry.close()


def _old_envelopes() -> list[dict[str, Any]]:
    lines = gzip.decompress((OLD_STORE / "envelopes.jsonl.gz").read_bytes()).splitlines()
    return [orjson.loads(line) for line in lines]


def _verified(registry: Registry) -> dict[str, Any]:
    *_, verdict = registry.verify()
    return verdict


def test_history_written_before_version_2_is_served_byte_for_byte_and_verifies(
    old_registry: Registry,
) -> None:
    old = _old_envelopes()

    assert read_all(old_registry) == old
    assert {e["schema_version"] for e in old} == {1}
    assert _verified(old_registry)["ok"]


class NoFeed:
    """A registry feed that has nothing: every entry must come through Kafka."""

    def page(self, after: int, limit: int = 5000) -> dict[str, Any]:
        return {"events": [], "next_after": after, "head": 0}

    def head(self) -> int:
        return 0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[TansuBroker]:
    with TansuBroker(tmp_path / "tansu.log") as started:
        yield started


def _consume_all(url: str, bootstrap: str, topic: str, head: int) -> tuple[int, int]:
    """Run the subsidy consumer over Kafka until the store holds the log to ``head``; the
    entries it took from Kafka and from the feed."""
    from services.common.kafka import make_consumer
    from services.subsidy.projector import Projector

    store = EntryStore(url)
    consumer = partial(make_consumer, bootstrap, topic, "versions", auto_offset_reset="earliest")
    projector = Projector(store, NoFeed(), consumer)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: store.head().position == head, "the consumer to apply the log")
    finally:
        stop.set()
        thread.join(timeout=30)
        store.close()
    return projector.from_kafka, projector.from_feed


def test_a_version_2_event_after_version_1_history_round_trips_through_relay_subsidy_and_audit(
    old_registry: Registry, broker: TansuBroker, tmp_path: Path, tokens: Tokens
) -> None:
    submit(
        old_registry,
        [
            {"op": "register_contract", "body": contract_body(certificate_no=CERTIFICATE)},
            {"op": "record_invoice", "body": {**invoice_body(), "registration_no": NEW}},
            {"op": "record_transfer_proof", "body": {**transfer_body(), "registration_no": NEW}},
        ],
    )
    log = read_all(old_registry)
    head = log[-1]["position"]
    assert log[: len(_old_envelopes())] == _old_envelopes(), "old history is never rewritten"
    assert Counter((e["type"], e["schema_version"]) for e in log[-3:]) == {
        ("ContractRegistered", 2): 1,
        ("InvoiceRecorded", 1): 1,
        ("TransferProofRecorded", 2): 1,
    }
    assert _verified(old_registry)["ok"]

    from services.registry.relay import RelayPosition

    relayed_to = RelayPosition(old_registry.engine)
    with running(make_relay(old_registry, broker.bootstrap, "versions")):
        wait_until(lambda: relayed_to.load() == head, "the relay to publish the log")
    relayed = {
        r.envelope["position"]: r.envelope for r in topic_records(broker.bootstrap, "versions")
    }
    assert [relayed[p] for p in sorted(relayed)] == log

    url = f"sqlite:///{tmp_path / 'subsidy.db'}"
    assert _consume_all(url, broker.bootstrap, "versions", head) == (head, 0)

    old_registry.checkpoints.issue()
    export_bundle(InProcessRegistry(old_registry), tmp_path / "bundle")  # type: ignore[arg-type]
    replayed = Audit(load_schedule()).replay(BundleSource(tmp_path / "bundle"))
    assert replayed["position"] == head
    assert replayed["skipped_events"] == {}
    earning = {c["registration_no"] for e in replayed["years"]["2024"] for c in e["contracts"]}
    assert NEW in earning, "the version 2 contract earns in 2024"

    with finance_client(url, tokens) as client:
        assert client.get("/v1/health").json()["skipped_events"] == 0
        for year, recomputed in replayed["years"].items():
            params = {"year": year, "limit": 10_000, "include": "claims"}
            body = client.get("/v1/entitlements", params=params).json()
            assert served(body) == served({"entitlements": recomputed}), year


def test_tcr_audit_replay_says_what_it_skipped_of_a_version_it_does_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _old_envelopes()
    newer = {**log[-1], "position": log[-1]["position"] + 1, "schema_version": 3}
    log += chain_envelopes([newer], log[-1]["hash"])
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "events.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in log))
    (bundle / "checkpoints.json").write_text("[]")
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "v1-corpus" / "public-key.pem", bundle)

    assert main(["audit", "replay", str(bundle), "--no-verify"]) == 0

    said = capsys.readouterr()
    assert json.loads(said.out)["skipped_events"] == {f"{newer['type']} v3": 1}
    assert f"{newer['type']} v3 ×1" in said.err
