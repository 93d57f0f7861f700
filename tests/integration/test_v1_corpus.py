"""The frozen corpus of version 1 envelopes (tests/fixtures/v1-corpus/, written by the code of
December 2026 and never regenerated) verifies and replays, with today's code, to the
entitlements that code computed from it: through the audit and through the subsidy projection.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from services.audit.application import Audit
from services.audit.sources import BundleSource
from services.audit.verify import Trust
from services.common.policy.loader import load_schedule
from services.subsidy.store import EntryStore
from tests.conftest import Tokens
from tests.integration.test_subsidy_api import served
from tests.support.finance import finance_client

CORPUS = Path(__file__).parents[1] / "fixtures" / "v1-corpus"
CHECKPOINT_EVERY = 500  # the interval the corpus's registry signed checkpoints at


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus as the bundle folder it was exported as."""
    folder = tmp_path_factory.mktemp("v1-corpus")
    for name in ("checkpoints.json", "manifest.json", "public-key.pem"):
        shutil.copy(CORPUS / name, folder / name)
    (folder / "events.jsonl").write_bytes(
        gzip.decompress((CORPUS / "events.jsonl.gz").read_bytes())
    )
    return folder


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    """What `tcr audit replay` answered over the corpus the day it was made."""
    recorded: dict[str, Any] = json.loads(
        gzip.decompress((CORPUS / "expected-entitlements.json.gz").read_bytes())
    )
    return recorded


def _audit() -> Audit:
    # The public key as the corpus holds it: pinned by the test, not taken from the bundle read.
    key = (CORPUS / "public-key.pem").read_text(encoding="utf-8")
    return Audit(load_schedule(), Trust(public_key_pem=key, checkpoint_every=CHECKPOINT_EVERY))


def _as_recorded(years: dict[str, list[dict[str, Any]]], like: dict[str, Any]) -> dict[str, Any]:
    """Today's years as recorded: the years recorded, each entitlement cut to the fields
    recorded (a field added since is no change to what was computed)."""
    fields = {k for listed in like["years"].values() for e in listed for k in e}
    return {
        year: [{k: v for k, v in e.items() if k in fields} for e in years[year]]
        for year in like["years"]
    }


def test_the_corpus_is_all_version_1_of_every_type_it_holds(bundle: Path) -> None:
    envelopes = list(BundleSource(bundle).envelopes())
    kinds = Counter((e["type"], e["schema_version"]) for e in envelopes)

    assert {version for _, version in kinds} == {1}
    assert {"ContractRegistered", "TransferProofRecorded", "PayoutRecorded"} <= {
        k for k, _ in kinds
    }


def test_the_corpus_verifies_to_its_recorded_head(bundle: Path) -> None:
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))

    verdict = _audit().verify(BundleSource(bundle))

    assert verdict.ok, verdict.summary()
    assert (verdict.last_position, verdict.head_hash) == (
        manifest["last_position"],
        manifest["head_hash"],
    )


def test_the_audit_replays_the_corpus_to_the_recorded_entitlements(
    bundle: Path, expected: dict[str, Any]
) -> None:
    replayed = _audit().replay(BundleSource(bundle))

    assert (replayed["policy_version"], replayed["position"]) == (
        expected["policy_version"],
        expected["position"],
    )
    assert sum(len(v) for v in expected["years"].values()) > 100, "the corpus earns something"
    assert _as_recorded(replayed["years"], expected) == expected["years"]
    assert replayed["skipped_events"] == {}


def test_the_subsidy_projection_of_the_corpus_serves_the_recorded_entitlements(
    bundle: Path, expected: dict[str, Any], tmp_path: Path, tokens: Tokens
) -> None:
    url = f"sqlite:///{tmp_path / 'subsidy.db'}"
    store = EntryStore(url)
    try:
        store.add(list(BundleSource(bundle).envelopes()))
    finally:
        store.close()

    with finance_client(url, tokens) as client:
        assert client.get("/v1/health").json()["skipped_events"] == 0
        for year, recorded in expected["years"].items():
            params = {"year": year, "limit": 10_000, "include": "claims"}
            body = client.get("/v1/entitlements", params=params).json()
            assert served(body) == served({"entitlements": recorded}), year
