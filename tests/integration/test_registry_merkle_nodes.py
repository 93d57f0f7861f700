"""Proofs from stored Merkle nodes, on SQLite and PostgreSQL.

The checkpointer stores the root of every perfect subtree as it follows the chain; proofs read
a few of them by key. Every answer here is held to the proofs recomputed from all the leaves.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.schema import DropTable

from services.common.db import make_engine
from services.common.errors import Invalid
from services.common.merkle import consistency_proof, inclusion_proof, root
from services.registry.application import Registry
from services.registry.checkpoints import Checkpointer
from services.registry.store import chain, merkle_nodes
from tests.support.chain import add_leaves

SIZES = [1, 2, 3, 5, 8, 13, 64, 100, 257]


def checkpointer(engine: Engine) -> Checkpointer:
    return Checkpointer(engine, Ed25519PrivateKey.generate(), every=1000)


def expected_inclusion(tree: list[bytes], index: int, size: int) -> dict[str, Any]:
    return {
        "position": index + 1,
        "leaf_index": index,
        "leaf_hash": tree[index].hex(),
        "tree_size": size,
        "root_hash": root(tree[:size]).hex(),
        "proof": [h.hex() for h in inclusion_proof(index, tree[:size])],
    }


def expected_consistency(tree: list[bytes], first: int, second: int) -> dict[str, Any]:
    return {
        "from": first,
        "to": second,
        "from_root": root(tree[:first]).hex(),
        "to_root": root(tree[:second]).hex(),
        "proof": [h.hex() for h in consistency_proof(first, tree[:second])],
    }


def stored_nodes(engine: Engine) -> list[tuple[int, int, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(merkle_nodes.c.level, merkle_nodes.c.index, merkle_nodes.c.hash).order_by(
                merkle_nodes.c.level, merkle_nodes.c.index
            )
        )
        return [(level, index, bytes(h)) for level, index, h in rows]


def perfect_subtrees(tree: list[bytes]) -> list[tuple[int, int, bytes]]:
    """Every perfect subtree above the leaves, from the definition of MTH."""
    nodes = []
    level = 1
    while 1 << level <= len(tree):
        width = 1 << level
        for index in range(len(tree) // width):
            nodes.append((level, index, root(tree[index * width : (index + 1) * width])))
        level += 1
    return nodes


def test_inclusion_proof_reads_stored_nodes_equal_to_recomputed_tree(engine: Engine) -> None:
    tree: list[bytes] = []
    proofs = checkpointer(engine)
    for size in SIZES:
        tree += add_leaves(engine, len(tree), size - len(tree))
        proofs.advance()
        for index in sorted({0, 1, size // 2, size - 2, size - 1} & set(range(size))):
            assert proofs.inclusion(index + 1, size) == expected_inclusion(tree, index, size)
    # Older trees too, after the log has grown past them.
    for size in SIZES:
        for index in sorted({0, size // 3, size - 1}):
            assert proofs.inclusion(index + 1, size) == expected_inclusion(tree, index, size)


def test_consistency_proof_reads_stored_nodes_equal_to_recomputed_tree(engine: Engine) -> None:
    tree = add_leaves(engine, 0, SIZES[-1])
    proofs = checkpointer(engine)
    proofs.advance()

    for second in SIZES:
        for first in sorted({1, 2, second // 2, second - 1, second} & set(range(1, second + 1))):
            assert proofs.consistency(first, second) == expected_consistency(tree, first, second)


def test_the_checkpointer_stores_every_perfect_subtree_of_the_log(engine: Engine) -> None:
    tree = add_leaves(engine, 0, 37)
    checkpointer(engine).advance()
    tree += add_leaves(engine, 37, 30)
    checkpointer(engine).advance()

    assert stored_nodes(engine) == perfect_subtrees(tree)


def test_a_proof_reads_a_few_nodes_by_key_and_never_the_whole_chain(engine: Engine) -> None:
    add_leaves(engine, 0, 1000)
    proofs = checkpointer(engine)
    proofs.advance()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lower())

    event.listen(engine, "before_cursor_execute", record)
    try:
        proofs.inclusion(700, 999)
        proofs.consistency(333, 1000)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    queries = [s for s in statements if s.startswith("select")]  # SQLite also says BEGIN
    assert len(queries) == 3  # the entry, then one query of hashes for each proof
    assert not any("count(" in q or "leaf_index >" in q or "leaf_index <" in q for q in queries)


def test_a_proof_beyond_the_stored_nodes_catches_up_first(engine: Engine) -> None:
    tree = add_leaves(engine, 0, 5)
    behind = checkpointer(engine)
    behind.advance()
    tree += add_leaves(engine, 5, 14)  # nobody has followed these yet

    assert behind.inclusion(3, 19) == expected_inclusion(tree, 2, 19)
    assert behind.consistency(5, 19) == expected_consistency(tree, 5, 19)
    assert stored_nodes(engine) == perfect_subtrees(tree)


def overwrite_leaves(engine: Engine, below: int) -> None:
    """Leaves a checkpointer should not read again: folding them would give another root."""
    with engine.begin() as conn:
        conn.execute(update(chain).where(chain.c.leaf_index < below).values(leaf_hash="ff" * 32))


def test_a_restarted_checkpointer_takes_the_right_edge_from_the_stored_nodes_not_the_leaves(
    engine: Engine,
) -> None:
    tree = add_leaves(engine, 0, 1000)
    checkpointer(engine).advance()
    overwrite_leaves(engine, 1000)
    tree += add_leaves(engine, 1000, 7)

    restarted = checkpointer(engine)

    assert restarted.issue()["root_hash"] == root(tree).hex()
    assert restarted.consistency(1000, 1007) == expected_consistency(tree, 1000, 1007)


def test_a_checkpointer_behind_another_skips_to_the_nodes_it_stored(engine: Engine) -> None:
    tree = add_leaves(engine, 0, 5)
    behind, ahead = checkpointer(engine), checkpointer(engine)
    behind.advance()
    tree += add_leaves(engine, 5, 995)
    ahead.advance()
    overwrite_leaves(engine, 1000)
    tree += add_leaves(engine, 1000, 3)

    assert behind.issue()["root_hash"] == root(tree).hex()


def test_a_proof_beyond_the_log_is_refused_with_the_logs_size(engine: Engine) -> None:
    add_leaves(engine, 0, 6)
    proofs = checkpointer(engine)

    with pytest.raises(Invalid, match=r"between 1 and the log's size \(6\)") as inclusion:
        proofs.inclusion(2, 7)
    with pytest.raises(Invalid, match=r"between 1 and the log's size \(6\)") as consistency:
        proofs.consistency(2, 9)

    assert (inclusion.value.field, consistency.value.field) == ("tree_size", "to")


def test_two_checkpointers_on_one_database_store_each_node_once(engine: Engine) -> None:
    first, second = checkpointer(engine), checkpointer(engine)
    tree: list[bytes] = []
    for step in (3, 10, 1, 19):
        tree += add_leaves(engine, len(tree), step)
        first.advance()
        second.advance()

    assert stored_nodes(engine) == perfect_subtrees(tree)
    assert first.consistency(4, len(tree)) == second.consistency(4, len(tree))


def test_a_registry_opened_on_a_log_written_before_the_node_table_fills_it_in(
    database_url: str,
) -> None:
    registry = Registry(database_url)
    engine = registry.engine
    try:
        tree = add_leaves(engine, 0, 45)
    finally:
        registry.close()
    old = make_engine(database_url)
    with old.begin() as conn:  # as the log was before the table existed
        conn.execute(DropTable(merkle_nodes))
    old.dispose()

    reopened = Registry(database_url)
    try:
        with reopened.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(merkle_nodes)).scalar() == 0
        assert reopened.checkpoints.inclusion(41, 45) == expected_inclusion(tree, 40, 45)
        assert reopened.checkpoints.consistency(16, 45) == expected_consistency(tree, 16, 45)
        assert stored_nodes(reopened.engine) == perfect_subtrees(tree)
    finally:
        reopened.close()
