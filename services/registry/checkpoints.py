"""Signed checkpoints: Merkle tree heads over the log, and proofs against them.

The checkpointer keeps the tree's right edge in memory (O(log n)), follows the chain table's
leaf hashes, stores the root of each perfect subtree they complete, and signs a checkpoint each
time the tree reaches a multiple of ``every`` leaves, and on demand. Several registry processes
may each run one: a checkpoint of a given size, and each subtree's root, is stored once,
whoever writes it first. A checkpointer starting, or behind the others, takes the right edge
of the stored roots (O(log n) of them) instead of every leaf again. Proofs fold O(log n) stored
roots, read by key, whatever the log's size.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    Connection,
    Engine,
    LargeBinary,
    String,
    cast,
    literal,
    null,
    select,
    tuple_,
    union_all,
)

from services.common.bulk import insert_columns
from services.common.envelope import format_instant
from services.common.errors import Invalid, NotFound
from services.common.merkle import (
    CompactRange,
    Node,
    Span,
    consistency_spans,
    inclusion_spans,
    nodes_of,
    right_edge,
    span_hash,
)
from services.common.signing import public_key_pem, sign_checkpoint
from services.registry import metrics
from services.registry.store import chain, checkpoints, merkle_nodes

# Leaves per pass, and per transaction of the subtree roots they complete (about one per leaf).
# A process starts from the stored roots' right edge: ready in 2-3 ms p50 (11 ms max) at
# 100,000 and at 1,000,000 leaves, three queries whatever the size. Only a log written before
# the node table is followed from leaf 0, filling in the roots, as every start did before:
# 10-40 s per million leaves (bench/proofs.py on 2 shared cores: 94,000 leaves/s at load 5,
# 27,000-48,000 at load 9-15).
_PAGE = 20_000


class Checkpointer:
    """Issues signed tree heads and answers inclusion and consistency proofs."""

    def __init__(self, engine: Engine, key: Ed25519PrivateKey, every: int) -> None:
        self._engine = engine
        # Proofs read an append-only log: no snapshot needed. On PostgreSQL, autocommit spares
        # each read the BEGIN and ROLLBACK round trips (SQLite's engine begins its own way).
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )
        self._key = key
        self._every = max(1, every)
        self._range = CompactRange()
        self._lock = threading.Lock()

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
                raise Invalid(
                    None,
                    "the log is empty; there is nothing to checkpoint",
                    "日志为空，无可签发的检查点",
                )
            return self._store(size, self._range.root())

    def _advance(self) -> int:
        while True:
            with self._engine.connect() as conn:
                self._skip_to_the_stored_nodes(conn)
                rows = conn.execute(
                    select(chain.c.leaf_hash)
                    .where(chain.c.leaf_index >= self._range.size)
                    .order_by(chain.c.leaf_index)
                    .limit(_PAGE)
                ).all()
            # Taken in only once stored: a failed pass is redone whole, never left with holes.
            ahead = self._range.copy()
            nodes: list[tuple[int, int, bytes]] = []
            due: list[tuple[int, bytes]] = []
            for (leaf,) in rows:
                nodes += ahead.append(bytes.fromhex(leaf))
                if ahead.size % self._every == 0:
                    due.append((ahead.size, ahead.root()))
            if nodes or due:
                self._store_pass(nodes, due)
            self._range = ahead
            if len(rows) < _PAGE:
                return self._range.size

    def _skip_to_the_stored_nodes(self, conn: Connection) -> None:
        """Start from the largest tree the stored roots cover, when it is ahead of ours.

        Each pass stores every root its leaves complete, after the passes before it, so the
        stored roots are those of a prefix of the log. The last level-1 root gives its size
        (rounded down to even: the next leaf, which completes no root, is read again) from
        the primary key, with no head row to keep in step, and its right edge is O(log n)
        roots read by key. The passes that stored them signed the checkpoints due up to
        there (``_store_pass``). A root missing from the edge means the table was filled
        some other way: then follow the leaves from where we are, storing what is missing.
        """
        last = conn.execute(
            select(merkle_nodes.c.index)
            .where(merkle_nodes.c.level == 1)
            .order_by(merkle_nodes.c.index.desc())
            .limit(1)
        ).scalar()
        covered = 0 if last is None else 2 * (int(last) + 1)
        if covered <= self._range.size:
            return
        edge = right_edge(covered)
        found = self._read(conn, set(edge))
        if len(found) == len(edge):
            self._range = CompactRange.of_right_edge(covered, [found[node] for node in edge])

    def _store_pass(
        self, nodes: list[tuple[int, int, bytes]], due: list[tuple[int, bytes]]
    ) -> None:
        """A pass's subtree roots and the checkpoints it makes due, in one transaction: whoever
        resumes from the stored roots finds every checkpoint below them signed. Roots and
        checkpoints another process stored first are kept."""
        signed = [self._signed(tree_size, root_hash) for tree_size, root_hash in due]
        with self._engine.begin() as conn:
            if nodes:
                # One unnest statement on PostgreSQL: 20,000 roots took 0.05 s against 0.3 s
                # by executemany, most of a catch-up pass.
                levels, indexes, hashes = zip(*nodes, strict=True)
                insert_columns(
                    conn,
                    merkle_nodes,
                    {"level": levels, "index": indexes, "hash": hashes},
                    on_conflict_do_nothing=True,
                )
            if signed:
                self._insert_checkpoints(conn, signed)

    def _store(self, tree_size: int, root_hash: bytes) -> dict[str, Any]:
        with self._engine.begin() as conn:
            self._insert_checkpoints(conn, [self._signed(tree_size, root_hash)])
        return self.checkpoint(tree_size)

    def _signed(self, tree_size: int, root_hash: bytes) -> dict[str, Any]:
        checkpoint: dict[str, Any] = {
            "tree_size": tree_size,
            "root_hash": root_hash.hex(),
            "issued_at": format_instant(datetime.now(UTC)),
        }
        checkpoint["signature"] = sign_checkpoint(self._key, checkpoint)
        return checkpoint

    @staticmethod
    def _insert_checkpoints(conn: Connection, signed: list[dict[str, Any]]) -> None:
        """The first checkpoint of a size stays: another process may have signed it first."""
        insert_columns(
            conn,
            checkpoints,
            {name: [c[name] for c in signed] for name in signed[0]},
            on_conflict_do_nothing=True,
        )
        for _ in signed:
            metrics.checkpoint_issued()

    def checkpoint(self, tree_size: int) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(checkpoints).where(checkpoints.c.tree_size == tree_size)
            ).first()
        if row is None:
            raise NotFound(
                "tree_size",
                f"no checkpoint of tree size {tree_size}",
                f"没有树大小为 {tree_size} 的检查点",
            )
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
            raise NotFound(None, "no checkpoint has been issued yet", "尚未签发任何检查点")
        return dict(row._mapping)

    def inclusion(self, position: int, tree_size: int) -> dict[str, Any]:
        """The audit path of the entry at ``position`` in the tree of ``tree_size`` leaves."""
        with self._reader.connect() as conn:
            row = conn.execute(
                select(chain.c.leaf_index, chain.c.leaf_hash).where(chain.c.position == position)
            ).first()
        if row is None:
            raise NotFound(
                "position", f"no log entry at position {position}", f"日志位置 {position} 没有条目"
            )
        if tree_size < 1:
            raise self._beyond_the_log("tree_size")
        if row.leaf_index >= tree_size:
            raise Invalid(
                "tree_size",
                f"position {position} is not in a tree of {tree_size} leaves",
                f"位置 {position} 不在大小为 {tree_size} 的树中",
            )
        path = inclusion_spans(row.leaf_index, tree_size)
        hashes = self._hashes([*path, (0, tree_size)], tree_size, "tree_size")
        return {
            "position": position,
            "leaf_index": row.leaf_index,
            "leaf_hash": row.leaf_hash,
            "tree_size": tree_size,
            "root_hash": span_hash((0, tree_size), hashes).hex(),
            "proof": [span_hash(span, hashes).hex() for span in path],
        }

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second``."""
        if not 0 < first <= second:
            raise Invalid("from", "must be at least 1 and at most `to`", "须不小于 1 且不大于 to")
        path = consistency_spans(first, second)
        hashes = self._hashes([*path, (0, first), (0, second)], second, "to")
        return {
            "from": first,
            "to": second,
            "from_root": span_hash((0, first), hashes).hex(),
            "to_root": span_hash((0, second), hashes).hex(),
            "proof": [span_hash(span, hashes).hex() for span in path],
        }

    def _hashes(self, spans: list[Span], tree_size: int, field: str) -> dict[Node, bytes]:
        """The stored roots these subtrees of the tree of ``tree_size`` fold from.

        The spans include the tree's own, whose last piece ends at its last leaf: when every
        root is found the log holds the tree. A root not found yet is one no checkpointer has
        reached (the follower polls each second): catch up here first, as ``issue`` does.
        """
        wanted = nodes_of(spans)
        with self._reader.connect() as conn:
            found = self._read(conn, wanted)
        if len(found) < len(wanted):
            if tree_size > self._log_size():
                raise self._beyond_the_log(field)
            self.advance()
            with self._reader.connect() as conn:
                found = self._read(conn, wanted)
            if len(found) < len(wanted):
                missing = sorted(wanted - found.keys())
                raise RuntimeError(f"Merkle nodes {missing[:5]} are missing after catching up")
        return found

    @staticmethod
    def _read(conn: Connection, wanted: set[Node]) -> dict[Node, bytes]:
        """One query by key: leaves from the chain (hex), the perfect subtrees above them."""
        leaves = select(
            literal(0).label("level"),
            chain.c.leaf_index.label("index"),
            chain.c.leaf_hash.label("hex"),
            cast(null(), LargeBinary).label("hash"),
        ).where(chain.c.leaf_index.in_([index for level, index in wanted if level == 0]))
        above = select(
            merkle_nodes.c.level,
            merkle_nodes.c.index,
            cast(null(), String).label("hex"),
            merkle_nodes.c.hash,
        ).where(
            tuple_(merkle_nodes.c.level, merkle_nodes.c.index).in_(
                [node for node in wanted if node[0] > 0]
            )
        )
        rows = conn.execute(union_all(leaves, above)).all()
        return {
            (level, index): bytes.fromhex(hex_hash) if level == 0 else bytes(node)
            for level, index, hex_hash, node in rows
        }

    def _log_size(self) -> int:
        """Leaves in the log: the highest leaf index plus one, read from its unique index."""
        with self._reader.connect() as conn:
            last = conn.execute(
                select(chain.c.leaf_index).order_by(chain.c.leaf_index.desc()).limit(1)
            ).scalar()
        return 0 if last is None else int(last) + 1

    def _beyond_the_log(self, field: str) -> Invalid:
        size = self._log_size()
        return Invalid(
            field,
            f"must be between 1 and the log's size ({size})",
            f"须介于 1 与日志大小（{size}）之间",
        )
