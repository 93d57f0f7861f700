"""A registry's chain table filled directly, for tests of the checkpointer and its proofs."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from services.common.merkle import leaf_hash
from services.registry.store import chain


def add_leaves(engine: Engine, start: int, count: int) -> list[bytes]:
    """Chain rows for leaves ``start``..``start+count-1``, as the writer would commit them."""
    hashes = [leaf_hash(f"entry {i}".encode()) for i in range(start, start + count)]
    with engine.begin() as conn:
        conn.execute(
            insert(chain),
            [
                {
                    "position": i + 1,
                    "prev_hash": "0" * 64,
                    "hash": f"{i + 1:064x}",
                    "leaf_index": i,
                    "leaf_hash": h.hex(),
                }
                for i, h in zip(range(start, start + count), hashes, strict=True)
            ],
        )
    return hashes
