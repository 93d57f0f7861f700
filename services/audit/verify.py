"""Verification an auditor can run trusting only the registry's public key.

One streaming pass over the log recomputes every entry's hash and the chain between them,
and the Merkle tree's root at every checkpoint's size; then each checkpoint's signature is
checked, and, given a checkpoint the auditor already held, that the log extends it. The first
thing wrong is named: the position of an entry, or the tree size of a checkpoint.

The chain alone proves nothing against someone who rewrites an entry and recomputes every hash
after it: only a signed checkpoint does. So the verdict says how many entries no checkpoint
covers, and fails when that tail is longer than the registry signs checkpoints at (every
``TCR_CHECKPOINT_EVERY`` entries), when a non-empty log has no checkpoint at all, or when the
bundle's manifest disagrees with the entries it holds.

:meth:`Verdict.summary` is the verdict's one wording, for the command line, the API and the
report alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from services.audit.sources import LogSource, policy_digests
from services.common.envelope import GENESIS_HASH, canonical_bytes, entry_hash
from services.common.merkle import CompactRange, leaf_hash
from services.common.signing import checkpoint_signed_by, load_public_key

DEFAULT_CHECKPOINT_EVERY = 1000  # the registry's default TCR_CHECKPOINT_EVERY


@dataclass
class Verdict:
    """The outcome: ``ok``, how far it got, and the first problem if any."""

    ok: bool = True
    checked: int = 0
    last_position: int = 0
    head_hash: str = GENESIS_HASH
    root_hash: str = ""
    checkpoints_verified: int = 0
    # Entries within the largest checkpoint verified, and after it (chain-checked only).
    covered: int = 0
    uncovered: int = 0
    max_uncovered: int | None = None
    manifest_checked: bool = False
    position: int | None = None
    checkpoint: int | None = None
    problem: str | None = None
    # True when nothing was found wrong but the log could not be proved unaltered.
    unproven: bool = False
    trusted: dict[str, Any] | None = field(default=None)

    def fail(
        self,
        problem: str,
        *,
        position: int | None = None,
        checkpoint: int | None = None,
        unproven: bool = False,
    ) -> Verdict:
        self.ok, self.problem, self.position, self.checkpoint = False, problem, position, checkpoint
        self.unproven = unproven
        return self

    def where(self) -> str:
        """What the failure is named by: an entry's position, a checkpoint, or the log."""
        if self.position is not None:
            return f"position {self.position}"
        if self.checkpoint is not None:
            return f"checkpoint {self.checkpoint}"
        return "the log's tail" if self.unproven else "the bundle"

    def headline(self) -> str:
        if self.ok:
            return "VERIFIED"
        return "NOT PROVEN" if self.unproven else "TAMPERING DETECTED"

    def headline_zh(self) -> str:
        """:meth:`headline` in Chinese, for the report's readers."""
        if self.ok:
            return "防篡改校验通过"
        return "未能证明" if self.unproven else "检测到篡改"

    def summary(self) -> str:
        """The verdict in words: what was proved, or the first thing wrong and where."""
        if self.ok:
            extends = (
                f"; it extends the trusted checkpoint of {self.trusted['tree_size']}"
                if self.trusted
                else ""
            )
            return (
                f"verified: {self.checked:,} entries to position {self.last_position}, "
                f"{self.checkpoints_verified} checkpoints, root {self.root_hash}{extends}; "
                f"{self.coverage()}"
            )
        after = self.coverage() if self.unproven else f"{self.checked:,} entries before it verified"
        return f"{self.headline()} at {self.where()}: {self.problem} ({after})"

    def coverage(self) -> str:
        """How much of the log a signed checkpoint covers, and how much only the chain does."""
        allowed = (
            f", at most {self.max_uncovered:,} allowed" if self.max_uncovered is not None else ""
        )
        return (
            f"{self.covered:,} entries covered by a signed checkpoint, {self.uncovered:,} after "
            f"the last one by the chain alone{allowed}"
        )

    def as_json(self) -> dict[str, Any]:
        shown = {k: v for k, v in self.__dict__.items() if v is not None}
        shown["message"] = self.summary()
        return shown


@dataclass(frozen=True)
class Trust:
    """What verification trusts: a checkpoint held independently, the registry's public key as
    published (None: the source's own), and the registry's checkpoint interval."""

    trusted_checkpoint: dict[str, Any] | None = None
    public_key_pem: str | None = None
    checkpoint_every: int | None = DEFAULT_CHECKPOINT_EVERY


def verify_source(
    source: LogSource,
    trust: Trust,
    progress: Callable[[int], None] = lambda n: None,
    also: Callable[[dict[str, Any]], None] | None = None,
) -> Verdict:
    """:func:`verify_log` over a source; ``also`` sees every entry of the same pass, to the end
    even past a break (so what it computes covers the whole log, under the verdict)."""
    checkpoints = source.checkpoints()  # first: a live source then reads the log as of them
    entries = _each(source.envelopes(), also)
    verdict = verify_log(
        entries,
        checkpoints,
        trust.public_key_pem or source.public_key_pem(),
        trust.trusted_checkpoint,
        progress,
        checkpoint_every=trust.checkpoint_every,
        manifest=source.manifest(),
        policy=policy_digests(source.policy_files() or {}),
    )
    for _ in entries:  # verification stopped at a break: ``also`` still sees the rest
        pass
    return verdict


def _each(
    envelopes: Iterable[dict[str, Any]], also: Callable[[dict[str, Any]], None] | None
) -> Iterator[dict[str, Any]]:
    for envelope in envelopes:
        if also is not None:
            also(envelope)
        yield envelope


def verify_log(
    envelopes: Iterable[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    public_key_pem: str,
    trusted: dict[str, Any] | None = None,
    progress: Callable[[int], None] = lambda n: None,
    *,
    checkpoint_every: int | None = DEFAULT_CHECKPOINT_EVERY,
    manifest: dict[str, Any] | None = None,
    policy: dict[str, str] | None = None,
) -> Verdict:
    """Verify a log, its checkpoints and (optionally) that it extends a trusted checkpoint.

    ``checkpoint_every`` is the registry's checkpoint interval: a longer tail after the last
    checkpoint fails (``None``: any tail passes, still counted). ``manifest``, a bundle's,
    must agree with the entries and with ``policy``, the digests of the policy files it holds.
    """
    verdict = Verdict(trusted=trusted, max_uncovered=checkpoint_every)
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
            verdict.covered = tree.size
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
    verdict.uncovered = tree.size - verdict.covered
    beyond = [size for size in expected if size > tree.size]
    if beyond:
        return verdict.fail(
            f"a checkpoint covers {min(beyond)} entries but the log has only {tree.size}: entries "
            "were removed from its end",
            checkpoint=min(beyond),
        )
    if manifest is not None:
        disagreement = _manifest_disagreement(manifest, verdict, len(checkpoints), policy or {})
        if disagreement is not None:
            return verdict.fail(disagreement)
        verdict.manifest_checked = True
    return _tail_verdict(verdict, checkpoint_every)


def _tail_verdict(verdict: Verdict, checkpoint_every: int | None) -> Verdict:
    if verdict.checked and not verdict.covered:
        return verdict.fail(
            f"no signed checkpoint covers any of the {verdict.checked:,} entries: the chain "
            "alone can be recomputed by whoever rewrites the log (checkpoints deleted, or none "
            "issued yet: ask the registry for one, POST /v1/checkpoints)",
            unproven=True,
        )
    if checkpoint_every is not None and verdict.uncovered > checkpoint_every:
        return verdict.fail(
            f"{verdict.uncovered:,} entries after the last signed checkpoint (tree size "
            f"{verdict.covered:,}) are covered by none, but the registry signs one every "
            f"{checkpoint_every:,} entries: later checkpoints were removed, or entries were "
            "appended without the registry's key",
            unproven=True,
        )
    return verdict


def _manifest_disagreement(
    manifest: dict[str, Any], verdict: Verdict, checkpoints: int, policy: dict[str, str]
) -> str | None:
    said: list[tuple[str, Any, Any]] = [("events", manifest.get("events"), verdict.checked)]
    for name, found in (
        ("last_position", verdict.last_position),
        ("checkpoints", checkpoints),
        ("head_hash", verdict.head_hash),
    ):
        if name in manifest:
            said.append((name, manifest[name], found))
    for name, claimed, found in said:
        if claimed != found:
            return (
                f"the bundle's manifest says {name} {claimed!r} but the bundle holds {found!r}: "
                "entries or checkpoints were removed or added after the export"
            )
    # A bundle from before schedules lists no policy file, and must hold none.
    claimed_policy = manifest.get("policy", {})
    if not isinstance(claimed_policy, dict):
        return "the bundle's manifest does not list its policy files by name and digest"
    if claimed_policy != policy:
        altered = sorted(
            name
            for name in claimed_policy.keys() | policy.keys()
            if claimed_policy.get(name) != policy.get(name)
        )
        return (
            f"the bundle's manifest and its policy files disagree ({', '.join(altered)}): a "
            "policy file was altered, removed or added after the export"
        )
    return None
