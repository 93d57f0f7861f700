"""Signed checkpoints and proofs over the HTTP API, on SQLite and PostgreSQL.

Nothing the server says about itself is taken on trust here: roots are recomputed from the log
it serves, signatures are checked with the key it publishes, and proofs are checked with
``services.common.merkle`` against the signed roots, never against roots the proof carries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete

from services.common.db import SingleHolderLock
from services.common.envelope import canonical_bytes
from services.common.merkle import leaf_hash, root, verify_consistency, verify_inclusion
from services.common.signing import (
    checkpoint_signed_by,
    load_or_create_key,
    load_public_key,
    public_key_pem,
)
from services.registry import checkpoints as checkpoints_module
from services.registry.app import create_app
from services.registry.checkpoints import Checkpointer
from services.registry.settings import RegistrySettings
from services.registry.store import merkle_nodes
from tests.conftest import Tokens
from tests.support.chain import add_leaves
from tests.support.parties import contract_body, invoice_body

EVERY = 3


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "registry-signing-key.pem"


def registry_api(database_url: str, tokens: Tokens, key_file: Path) -> TestClient:
    settings = RegistrySettings(
        registry_database_url=database_url,
        tokens_file=tokens.path,
        signing_key_file=key_file,
        checkpoint_every=EVERY,
    )
    # As the bureau: it registers, and reads the log and its proofs, which a station may not.
    return TestClient(create_app(settings), headers=tokens.header("bureau"))


@pytest.fixture
def client(database_url: str, tokens: Tokens, key_file: Path) -> Iterator[TestClient]:
    """The registry API signing a checkpoint every 3 entries, with its key in ``key_file``."""
    with registry_api(database_url, tokens, key_file) as test_client:
        yield test_client


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def register(client: TestClient, count: int, start: int = 1) -> None:
    """Register ``count`` contracts, one request (one commit) each."""
    for i in range(start, start + count):
        created(client.post("/v1/contracts", json=contract_body(f"R{i:04d}")))


def log(client: TestClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = client.get(
        "/v1/events", params={"after": 0, "limit": 5000}
    ).json()["events"]
    return events


def leaves(client: TestClient) -> list[bytes]:
    """The Merkle leaves, computed here from the envelopes the log serves."""
    return [leaf_hash(canonical_bytes(e)) for e in log(client)]


def checkpoints(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/v1/checkpoints")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def wait_for_checkpoints(client: TestClient, sizes: list[int]) -> list[dict[str, Any]]:
    """Checkpoints are signed by a background thread after commit: wait for these sizes."""
    deadline = time.monotonic() + 15
    while True:
        found = checkpoints(client)
        if [c["tree_size"] for c in found] == sizes or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def served_key(client: TestClient) -> Any:
    answer = client.get("/v1/checkpoints/public-key", headers={"Authorization": ""})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["algorithm"] == "Ed25519"
    return load_public_key(body["public_key_pem"])


def refused(response: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    return body


# -- checkpoints -----------------------------------------------------------------------------


def test_a_checkpoint_is_signed_each_time_the_log_reaches_a_multiple_of_n(
    client: TestClient,
) -> None:
    register(client, 8)

    found = wait_for_checkpoints(client, [3, 6])

    assert [c["tree_size"] for c in found] == [3, 6]
    assert set(found[0]) == {"tree_size", "root_hash", "issued_at", "signature"}


def test_a_batch_crossing_several_multiples_gets_a_checkpoint_at_each(
    client: TestClient,
) -> None:
    commands = [{"op": "register_contract", "body": contract_body(f"B{i}")} for i in range(10)]
    created(client.post("/v1/batch", json={"commands": commands}))

    found = wait_for_checkpoints(client, [3, 6, 9])

    assert [c["tree_size"] for c in found] == [3, 6, 9]
    tree = leaves(client)
    assert [c["root_hash"] for c in found] == [root(tree[:n]).hex() for n in (3, 6, 9)]


def test_every_checkpoint_is_the_merkle_root_of_the_log_it_covers(client: TestClient) -> None:
    register(client, 7)
    found = wait_for_checkpoints(client, [3, 6])
    tree = leaves(client)

    for checkpoint in found:
        assert checkpoint["root_hash"] == root(tree[: checkpoint["tree_size"]]).hex()


def test_every_checkpoint_verifies_with_the_served_public_key(
    client: TestClient, tokens: Tokens, key_file: Path
) -> None:
    register(client, 7)
    wait_for_checkpoints(client, [3, 6])
    issued = created(client.post("/v1/checkpoints", headers=tokens.header("bureau")))
    found = wait_for_checkpoints(client, [3, 6, 7])
    key = served_key(client)

    assert [c["tree_size"] for c in found] == [3, 6, 7]
    assert issued in found
    assert all(checkpoint_signed_by(key, c) for c in found)
    # The served key is the one in the key file, and nobody else's key verifies them.
    assert (
        public_key_pem(load_or_create_key(key_file))
        == client.get("/v1/checkpoints/public-key").json()["public_key_pem"]
    )
    stranger = Ed25519PrivateKey.generate().public_key()
    assert not any(checkpoint_signed_by(stranger, c) for c in found)


def test_the_public_key_needs_no_token_but_checkpoints_do(client: TestClient) -> None:
    anonymous = {"Authorization": ""}

    assert client.get("/v1/checkpoints/public-key", headers=anonymous).status_code == 200
    assert client.get("/v1/checkpoints", headers=anonymous).status_code == 401
    assert client.get("/v1/checkpoints/latest", headers=anonymous).status_code == 401
    assert client.post("/v1/checkpoints", headers=anonymous).status_code == 401


def test_the_bureau_and_auditors_issue_a_checkpoint_of_the_whole_log_now(
    client: TestClient, tokens: Tokens
) -> None:
    register(client, 4)

    issued = created(client.post("/v1/checkpoints", headers=tokens.header("auditor")))

    assert issued["tree_size"] == 4
    assert issued["root_hash"] == root(leaves(client)).hex()
    assert checkpoint_signed_by(served_key(client), issued)
    latest = client.get("/v1/checkpoints/latest")
    assert latest.status_code == 200
    assert latest.json() == issued

    register(client, 1, start=5)
    again = created(client.post("/v1/checkpoints", headers=tokens.header("bureau")))
    assert again["tree_size"] == 5
    assert client.get("/v1/checkpoints/latest").json()["tree_size"] == 5


def test_issuing_twice_at_one_size_answers_the_stored_checkpoint(
    client: TestClient, tokens: Tokens
) -> None:
    register(client, 2)

    first = created(client.post("/v1/checkpoints", headers=tokens.header("bureau")))
    second = created(client.post("/v1/checkpoints", headers=tokens.header("bureau")))

    assert first == second
    assert [c["tree_size"] for c in checkpoints(client)] == [2]


@pytest.mark.parametrize("who", ["station", "finance"])
def test_stations_and_finance_may_not_issue_checkpoints(
    client: TestClient, tokens: Tokens, who: str
) -> None:
    register(client, 1)

    assert client.post("/v1/checkpoints", headers=tokens.header(who)).status_code == 403


def test_an_empty_log_has_no_checkpoint_to_issue_or_read(
    client: TestClient, tokens: Tokens
) -> None:
    refused(client.post("/v1/checkpoints", headers=tokens.header("bureau")), 422, None)
    refused(client.get("/v1/checkpoints/latest"), 404, None)
    assert checkpoints(client) == []


def test_checkpoints_survive_a_restart_and_later_ones_extend_them(
    database_url: str, tokens: Tokens, key_file: Path
) -> None:
    with registry_api(database_url, tokens, key_file) as first:
        register(first, 7)
        before = wait_for_checkpoints(first, [3, 6])
        key_before = first.get("/v1/checkpoints/public-key").json()

    with registry_api(database_url, tokens, key_file) as second:
        assert second.get("/v1/checkpoints/public-key").json() == key_before
        register(second, 3, start=8)
        after = wait_for_checkpoints(second, [3, 6, 9])
        key = served_key(second)
        tree = leaves(second)
        proof = second.get("/v1/proofs/consistency", params={"from": 6, "to": 9}).json()

    assert after[:2] == before
    assert all(checkpoint_signed_by(key, c) for c in after)
    assert after[2]["root_hash"] == root(tree[:9]).hex()
    assert verify_consistency(
        6,
        9,
        bytes.fromhex(before[1]["root_hash"]),
        bytes.fromhex(after[2]["root_hash"]),
        [bytes.fromhex(h) for h in proof["proof"]],
    )


def test_one_of_several_registries_signs_in_the_background_and_another_takes_over(
    database_url: str, tokens: Tokens, key_file: Path
) -> None:
    with registry_api(database_url, tokens, key_file) as first:
        with registry_api(database_url, tokens, key_file) as second:
            register(first, 2)
            register(second, 2, start=3)
            assert [c["tree_size"] for c in wait_for_checkpoints(second, [3])] == [3]
            follower = [a for a in (first, second) if not a.app.state.registry.following]
            assert len(follower) == 1, "exactly one of the two follows the log"
        # The second (whichever followed) has stopped; the first signs from now on.
        register(first, 2, start=5)
        found = wait_for_checkpoints(first, [3, 6])
        assert first.app.state.registry.following
        assert [c["tree_size"] for c in found] == [3, 6]
        assert found[1]["root_hash"] == root(leaves(first)[:6]).hex()


@pytest.mark.parametrize("holders", [2, 3])
def test_a_single_holder_lock_is_held_by_one_at_a_time(engine: Engine, holders: int) -> None:
    locks = [SingleHolderLock(engine, 0x7463_72FF, "test-lock") for _ in range(holders)]
    try:
        assert [lock.try_hold() for lock in locks] == [True] + [False] * (holders - 1)
        assert locks[0].try_hold(), "the holder keeps it"
        locks[0].release()
        assert [lock.try_hold() for lock in locks[1:]] == [True] + [False] * (holders - 2)
    finally:
        for lock in locks:
            lock.release()


# -- proofs -----------------------------------------------------------------------------------


def test_every_entry_has_an_inclusion_proof_against_every_signed_checkpoint(
    client: TestClient,
) -> None:
    register(client, 4)
    created(client.post("/v1/contracts/R0001/invoices", json=invoice_body("INV-1")))
    register(client, 2, start=5)  # 7 entries; checkpoints of 3 and 6
    found = wait_for_checkpoints(client, [3, 6])
    key = served_key(client)
    entries = log(client)

    for checkpoint in found:
        assert checkpoint_signed_by(key, checkpoint)
        size, signed_root = checkpoint["tree_size"], bytes.fromhex(checkpoint["root_hash"])
        for index, envelope in enumerate(entries[:size]):
            response = client.get(
                "/v1/proofs/inclusion",
                params={"position": envelope["position"], "tree_size": size},
            )
            assert response.status_code == 200, response.text
            proof = response.json()
            leaf = leaf_hash(canonical_bytes(envelope))
            assert (proof["leaf_index"], proof["leaf_hash"]) == (index, leaf.hex())
            assert proof["root_hash"] == checkpoint["root_hash"]
            path = [bytes.fromhex(h) for h in proof["proof"]]
            assert verify_inclusion(leaf, index, size, path, signed_root)
            # The same path does not place another entry there.
            other = leaf_hash(canonical_bytes(entries[(index + 1) % size]))
            assert size == 1 or not verify_inclusion(other, index, size, path, signed_root)


def test_inclusion_proofs_at_the_log_size_verify_against_an_issued_checkpoint(
    client: TestClient, tokens: Tokens
) -> None:
    register(client, 5)
    issued = created(client.post("/v1/checkpoints", headers=tokens.header("bureau")))
    entries = log(client)

    for index, envelope in enumerate(entries):
        proof = client.get(
            "/v1/proofs/inclusion", params={"position": envelope["position"], "tree_size": 5}
        ).json()
        assert verify_inclusion(
            leaf_hash(canonical_bytes(envelope)),
            index,
            5,
            [bytes.fromhex(h) for h in proof["proof"]],
            bytes.fromhex(issued["root_hash"]),
        )


def test_consistency_proofs_between_any_two_checkpoints_verify(
    client: TestClient, tokens: Tokens
) -> None:
    register(client, 10)
    created(client.post("/v1/checkpoints", headers=tokens.header("bureau")))
    found = wait_for_checkpoints(client, [3, 6, 9, 10])
    key = served_key(client)
    assert all(checkpoint_signed_by(key, c) for c in found)

    for old, new in [*combinations(found, 2), *((c, c) for c in found)]:
        response = client.get(
            "/v1/proofs/consistency", params={"from": old["tree_size"], "to": new["tree_size"]}
        )
        assert response.status_code == 200, response.text
        proof = response.json()
        assert (proof["from"], proof["to"]) == (old["tree_size"], new["tree_size"])
        assert (proof["from_root"], proof["to_root"]) == (old["root_hash"], new["root_hash"])
        path = [bytes.fromhex(h) for h in proof["proof"]]
        old_root, new_root = bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"])
        assert verify_consistency(old["tree_size"], new["tree_size"], old_root, new_root, path)
        if old["tree_size"] < new["tree_size"]:
            # Not from a root the old checkpoint did not sign.
            assert not verify_consistency(
                old["tree_size"], new["tree_size"], new_root, new_root, path
            )


def test_consistency_proofs_between_any_two_sizes_verify_against_the_logs_roots(
    client: TestClient,
) -> None:
    register(client, 7)
    tree = leaves(client)

    for first in range(1, 8):
        for second in range(first, 8):
            proof = client.get(
                "/v1/proofs/consistency", params={"from": first, "to": second}
            ).json()
            assert verify_consistency(
                first,
                second,
                root(tree[:first]),
                root(tree[:second]),
                [bytes.fromhex(h) for h in proof["proof"]],
            ), (first, second)


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"position": 99, "tree_size": 4}, 404, "position"),
        ({"position": 0, "tree_size": 4}, 422, "position"),
        ({"position": "one", "tree_size": 4}, 422, "position"),
        ({"tree_size": 4}, 422, "position"),
        ({"position": 1}, 422, "tree_size"),
        ({"position": 1, "tree_size": 0}, 422, "tree_size"),
        ({"position": 1, "tree_size": 5}, 422, "tree_size"),  # beyond the log
        ({"position": 4, "tree_size": 3}, 422, "tree_size"),  # the entry is not in that tree
    ],
)
def test_a_bad_inclusion_request_is_refused_naming_the_field(
    client: TestClient, params: dict[str, Any], status: int, field: str
) -> None:
    register(client, 4)

    refused(client.get("/v1/proofs/inclusion", params=params), status, field)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": 0, "to": 3}, "from"),
        ({"from": 4, "to": 3}, "from"),
        ({"from": 1, "to": 5}, "to"),  # beyond the log
        ({"from": "x", "to": 3}, "from"),
        ({"to": 3}, "from"),
        ({"from": 1}, "to"),
        ({"from": 1, "to": 0}, "to"),
    ],
)
def test_a_bad_consistency_request_is_refused_naming_the_field(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    register(client, 4)

    refused(client.get("/v1/proofs/consistency", params=params), 422, field)


def test_proofs_need_a_token(client: TestClient) -> None:
    register(client, 2)
    anonymous = {"Authorization": ""}

    for path, params in [
        ("/v1/proofs/inclusion", {"position": 1, "tree_size": 2}),
        ("/v1/proofs/consistency", {"from": 1, "to": 2}),
    ]:
        assert client.get(path, params=params, headers=anonymous).status_code == 401


# -- the checkpointer itself -------------------------------------------------------------------


def test_the_checkpointer_resumes_from_the_stored_leaves(engine: Engine) -> None:
    key = Ed25519PrivateKey.generate()
    tree = add_leaves(engine, 0, 5)
    Checkpointer(engine, key, every=2).advance()

    restarted = Checkpointer(engine, key, every=2)
    assert restarted.advance() == 5
    tree += add_leaves(engine, 5, 1)
    assert restarted.advance() == 6

    assert [(c["tree_size"], c["root_hash"]) for c in restarted.all()] == [
        (n, root(tree[:n]).hex()) for n in (2, 4, 6)
    ]


def signed_roots(checkpointer: Checkpointer) -> list[tuple[int, str]]:
    return [(c["tree_size"], c["root_hash"]) for c in checkpointer.all()]


def test_checkpoints_signed_across_restarts_are_the_roots_recomputed_from_every_leaf(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four leaves a pass: restarts land inside passes, on odd and even sizes, at multiples.
    monkeypatch.setattr(checkpoints_module, "_PAGE", 4)
    key = Ed25519PrivateKey.generate()
    tree: list[bytes] = []
    for step in (1, 2, 5, 8, 3, 13, 1, 31, 64):
        tree += add_leaves(engine, len(tree), step)
        restarted = Checkpointer(engine, key, every=3)
        assert restarted.advance() == len(tree)
        issued = restarted.issue()  # on demand, after a restart, at a size no multiple of 3
        assert (issued["tree_size"], issued["root_hash"]) == (len(tree), root(tree).hex())

    sizes = sorted({*range(3, len(tree) + 1, 3), 1, 3, 8, 16, 19, 32, 33, 64, 128})
    assert signed_roots(restarted) == [(n, root(tree[:n]).hex()) for n in sizes]


def test_a_checkpointer_on_a_log_whose_node_table_is_empty_catches_up_from_leaf_0(
    engine: Engine,
) -> None:
    key = Ed25519PrivateKey.generate()
    tree = add_leaves(engine, 0, 45)
    first = Checkpointer(engine, key, every=10)
    first.advance()
    signed = first.all()
    with engine.begin() as conn:  # as a log written before the node table
        conn.execute(delete(merkle_nodes))
    tree += add_leaves(engine, 45, 10)

    restarted = Checkpointer(engine, key, every=10)

    assert restarted.advance() == 55
    assert restarted.all()[:4] == signed  # the checkpoints signed before are kept as they were
    assert signed_roots(restarted) == [(n, root(tree[:n]).hex()) for n in (10, 20, 30, 40, 50)]
    assert restarted.issue()["root_hash"] == root(tree).hex()


def test_after_a_pass_fails_a_restart_signs_every_checkpoint_it_made_due(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = add_leaves(engine, 0, 9)
    key = Ed25519PrivateKey.generate()
    sign = checkpoints_module.sign_checkpoint

    def fail_at_size_8(key: Ed25519PrivateKey, checkpoint: dict[str, Any]) -> str:
        if checkpoint["tree_size"] == 8:
            raise OSError("the process stops here")
        return sign(key, checkpoint)

    monkeypatch.setattr(checkpoints_module, "sign_checkpoint", fail_at_size_8)
    with pytest.raises(OSError, match="stops here"):
        Checkpointer(engine, key, every=2).advance()
    monkeypatch.undo()

    restarted = Checkpointer(engine, key, every=2)

    assert restarted.advance() == 9
    assert signed_roots(restarted) == [(n, root(tree[:n]).hex()) for n in (2, 4, 6, 8)]


def test_a_checkpoint_issued_while_the_log_grows_signs_the_root_of_its_own_size(
    engine: Engine,
) -> None:
    tree = add_leaves(engine, 0, 3)
    checkpointer = Checkpointer(engine, Ed25519PrivateKey.generate(), every=1000)
    original = checkpointer.advance
    calls = 0

    def advance_then_the_background_thread_runs() -> int:
        # POST /v1/checkpoints reaches issue(); between its two locked sections two more
        # entries commit and the background thread's advance() takes them in.
        nonlocal calls
        size = original()
        calls += 1
        if calls == 1:
            tree.extend(add_leaves(engine, 3, 2))
            original()
        return size

    checkpointer.advance = advance_then_the_background_thread_runs  # type: ignore[method-assign]

    issued = checkpointer.issue()

    assert issued["root_hash"] == root(tree[: issued["tree_size"]]).hex(), issued
