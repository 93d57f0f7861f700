"""Signed checkpoints: Merkle tree heads over the log, and proofs against them.

The checkpointer keeps the tree's right edge in memory (O(log n)), follows the chain table's
leaf hashes, and signs a checkpoint each time the tree reaches a multiple of ``every`` leaves,
and on demand. Several registry processes may each run one: a checkpoint of a given size is
stored once, whoever signs it first.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from services.common.envelope import format_instant
from services.common.errors import Invalid, NotFound
from services.common.merkle import CompactRange, consistency_proof, inclusion_proof, root
from services.common.signing import public_key_pem, sign_checkpoint
from services.registry.store import chain, checkpoints

_PAGE = 20_000


class Checkpointer:
    """Issues signed tree heads and answers inclusion and consistency proofs."""

    def __init__(self, engine: Engine, key: Ed25519PrivateKey, every: int) -> None:
        self._engine = engine
        self._key = key
        self._every = max(1, every)
        self._range = CompactRange()
        self._lock = threading.Lock()
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._insert = insert(checkpoints).on_conflict_do_nothing(index_elements=["tree_size"])

    @property
    def public_key(self) -> str:
        return public_key_pem(self._key)

    def advance(self) -> int:
        """Take in the leaves committed since the last call; sign at every multiple of ``every``."""
        with self._lock:
            return self._advance()

    def issue(self) -> dict[str, Any]:
        """A checkpoint of the whole log as it is now."""
        with self._lock:  # size and root from the same state, whatever the background does
            size = self._advance()
            if size == 0:
                raise Invalid(None, "the log is empty; there is nothing to checkpoint")
            return self._store(size, self._range.root())

    def _advance(self) -> int:
        while True:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    select(chain.c.leaf_hash)
                    .where(chain.c.leaf_index >= self._range.size)
                    .order_by(chain.c.leaf_index)
                    .limit(_PAGE)
                ).all()
            for (leaf,) in rows:
                self._range.append(bytes.fromhex(leaf))
                if self._range.size % self._every == 0:
                    self._store(self._range.size, self._range.root())
            if len(rows) < _PAGE:
                return self._range.size

    def _store(self, tree_size: int, root_hash: bytes) -> dict[str, Any]:
        checkpoint: dict[str, Any] = {
            "tree_size": tree_size,
            "root_hash": root_hash.hex(),
            "issued_at": format_instant(datetime.now(UTC)),
        }
        checkpoint["signature"] = sign_checkpoint(self._key, checkpoint)
        with self._engine.begin() as conn:
            conn.execute(self._insert.values(**checkpoint))
        return self.checkpoint(tree_size)

    def checkpoint(self, tree_size: int) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(checkpoints).where(checkpoints.c.tree_size == tree_size)
            ).first()
        if row is None:
            raise NotFound("tree_size", f"no checkpoint of tree size {tree_size}")
        return dict(row._mapping)

    def all(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(checkpoints).order_by(checkpoints.c.tree_size)).all()
        return [dict(r._mapping) for r in rows]

    def latest(self) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(checkpoints).order_by(checkpoints.c.tree_size.desc()).limit(1)
            ).first()
        if row is None:
            raise NotFound(None, "no checkpoint has been issued yet")
        return dict(row._mapping)

    def inclusion(self, position: int, tree_size: int) -> dict[str, Any]:
        """The audit path of the entry at ``position`` in the tree of ``tree_size`` leaves."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(chain.c.leaf_index, chain.c.leaf_hash).where(chain.c.position == position)
            ).first()
        if row is None:
            raise NotFound("position", f"no log entry at position {position}")
        leaves = self._leaves(tree_size)
        if row.leaf_index >= tree_size:
            raise Invalid(
                "tree_size", f"position {position} is not in a tree of {tree_size} leaves"
            )
        return {
            "position": position,
            "leaf_index": row.leaf_index,
            "leaf_hash": row.leaf_hash,
            "tree_size": tree_size,
            "root_hash": root(leaves).hex(),
            "proof": [h.hex() for h in inclusion_proof(row.leaf_index, leaves)],
        }

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second``."""
        if not 0 < first <= second:
            raise Invalid("from", "must be at least 1 and at most `to`")
        leaves = self._leaves(second, field="to")
        return {
            "from": first,
            "to": second,
            "from_root": root(leaves[:first]).hex(),
            "to_root": root(leaves).hex(),
            "proof": [h.hex() for h in consistency_proof(first, leaves)],
        }

    def _leaves(self, tree_size: int, field: str = "tree_size") -> list[bytes]:
        with self._engine.connect() as conn:
            size = int(conn.execute(select(func.count()).select_from(chain)).scalar_one())
            if not 0 < tree_size <= size:
                raise Invalid(field, f"must be between 1 and the log's size ({size})")
            rows = conn.execute(
                select(chain.c.leaf_hash)
                .where(chain.c.leaf_index < tree_size)
                .order_by(chain.c.leaf_index)
            )
            return [bytes.fromhex(leaf) for (leaf,) in rows]
