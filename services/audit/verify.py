"""Verification an auditor can run trusting only the registry's public key.

One streaming pass over the log recomputes every entry's hash and the chain between them,
and the Merkle tree's root at every checkpoint's size; then each checkpoint's signature is
checked, and, given a checkpoint the auditor already held, that the log extends it. The first
thing wrong is named: the position of an entry, or the tree size of a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from services.common.envelope import GENESIS_HASH, canonical_bytes, entry_hash
from services.common.merkle import CompactRange, leaf_hash
from services.common.signing import checkpoint_signed_by, load_public_key


@dataclass
class Verdict:
    """The outcome: ``ok``, how far it got, and the first problem if any."""

    ok: bool = True
    checked: int = 0
    last_position: int = 0
    head_hash: str = GENESIS_HASH
    root_hash: str = ""
    checkpoints_verified: int = 0
    position: int | None = None
    checkpoint: int | None = None
    problem: str | None = None
    trusted: dict[str, Any] | None = field(default=None)

    def fail(
        self, problem: str, *, position: int | None = None, checkpoint: int | None = None
    ) -> Verdict:
        self.ok, self.problem, self.position, self.checkpoint = False, problem, position, checkpoint
        return self

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def verify_log(
    envelopes: Iterable[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    public_key_pem: str,
    trusted: dict[str, Any] | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> Verdict:
    """Verify a log, its checkpoints and (optionally) that it extends a trusted checkpoint."""
    verdict = Verdict(trusted=trusted)
    try:
        public_key = load_public_key(public_key_pem)
    except ValueError as exc:
        return verdict.fail(f"the public key cannot be read: {exc}")

    # Signatures first: a forged checkpoint is named even if the log is also damaged.
    for checkpoint in sorted(checkpoints, key=lambda c: c.get("tree_size", 0)):
        if not checkpoint_signed_by(public_key, checkpoint):
            return verdict.fail(
                "the checkpoint's signature is not the registry key's (forged, altered, or "
                "signed with another key)",
                checkpoint=checkpoint.get("tree_size"),
            )
    if trusted is not None and not checkpoint_signed_by(public_key, trusted):
        return verdict.fail(
            "the trusted checkpoint is not signed by this key", checkpoint=trusted.get("tree_size")
        )

    expected = {int(c["tree_size"]): c["root_hash"] for c in checkpoints}
    if trusted is not None:
        expected.setdefault(int(trusted["tree_size"]), trusted["root_hash"])
        if expected[int(trusted["tree_size"])] != trusted["root_hash"]:
            return verdict.fail(
                "the registry's checkpoint of this size differs from the trusted one",
                checkpoint=int(trusted["tree_size"]),
            )

    tree = CompactRange()
    prev, last_position = GENESIS_HASH, 0
    entries = iter(envelopes)
    while True:
        try:
            envelope = next(entries)
        except StopIteration:
            break
        except ValueError as exc:  # a line of the bundle that is not JSON
            return verdict.fail(f"unreadable entry after position {last_position}: {exc}")
        if not isinstance(envelope, dict):
            return verdict.fail(f"the entry after position {last_position} is not a JSON object")
        position = envelope.get("position")
        if not isinstance(position, int) or position <= last_position:
            return verdict.fail(
                f"position {position} does not follow {last_position}: entries were reordered "
                "or duplicated",
                position=position if isinstance(position, int) else None,
            )
        if envelope.get("prev_hash") != prev:
            return verdict.fail(
                "prev_hash is not the hash of the entry before it: an entry was removed, "
                "inserted or moved before this one",
                position=position,
            )
        if entry_hash(prev, envelope) != envelope.get("hash"):
            return verdict.fail(
                "the entry's hash does not match its bytes: it was altered", position=position
            )
        tree.append(leaf_hash(canonical_bytes(envelope)))
        root = expected.get(tree.size)
        if root is not None:
            if tree.root().hex() != root:
                return verdict.fail(
                    f"the Merkle root of the first {tree.size} entries differs from the "
                    "checkpoint's: the log before it was rewritten",
                    checkpoint=tree.size,
                )
            verdict.checkpoints_verified += 1
        prev, last_position = envelope["hash"], position
        verdict.checked += 1
        if verdict.checked % 10_000 == 0:
            progress(10_000)
    progress(verdict.checked % 10_000)

    verdict.last_position, verdict.head_hash, verdict.root_hash = (
        last_position,
        prev,
        tree.root().hex(),
    )
    beyond = [size for size in expected if size > tree.size]
    if beyond:
        return verdict.fail(
            f"a checkpoint covers {min(beyond)} entries but the log has only {tree.size}: entries "
            "were removed from its end",
            checkpoint=min(beyond),
        )
    return verdict
