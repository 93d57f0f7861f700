"""Merkle trees over the log, RFC 6962 / RFC 9162 style: hashes, proofs and their checks.

leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right); the tree over n leaves
splits at the largest power of two below n. Leaves are the canonical bytes of each envelope,
in log order; leaf indexes count entries from 0 (log positions may have gaps).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()

# A perfect subtree: (level, index) is the root of leaves [index << level, (index + 1) << level).
Node = tuple[int, int]
# A subtree as proofs name it: the leaves [start, end), perfect or at the tree's right edge.
Span = tuple[int, int]


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of the given leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    # Bottom-up pairing gives the same tree as RFC 6962's recursive split.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]): the audit path of leaf ``index`` in the tree over ``leaves``."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is outside a tree of {n} leaves")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), root(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), root(leaves[:k])]


def consistency_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): shows the tree of the first ``m`` leaves is a prefix of this one."""
    n = len(leaves)
    if not 0 < m <= n:
        raise ValueError(f"cannot prove a tree of {m} leaves consistent with one of {n}")
    return _subproof(m, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` place ``leaf`` at ``index`` under ``expected_root``?"""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show tree ``first`` is a prefix of tree ``second``?"""
    if first == second:
        return not proof and first_root == second_root
    if not 0 < first < second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # first is a power of two: its root starts the path
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


# -- proofs from stored perfect subtrees ------------------------------------------------------


def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees whose roots fold into MTH(D[start:end]), largest first.

    Every subtree in an RFC 6962 tree starts at a multiple of a power of two at least its
    size, so its split (the largest power of two below its size) leaves a perfect left half:
    the pieces are the binary digits of ``end - start``, highest first.
    """
    if not 0 <= start < end:
        raise ValueError(f"no subtree spans leaves [{start}, {end})")
    nodes: list[Node] = []
    for level in range((end - start).bit_length() - 1, -1, -1):
        if (end - start) >> level & 1:
            if start % (1 << level):
                raise ValueError(f"leaves [{start}, {end}) are not a subtree of a Merkle tree")
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def fold(pieces: Sequence[bytes]) -> bytes:
    """MTH of a subtree from the roots of its perfect pieces, largest (leftmost) first."""
    acc = pieces[-1]
    for piece in reversed(pieces[:-1]):
        acc = node_hash(piece, acc)
    return acc


def inclusion_spans(index: int, tree_size: int) -> list[Span]:
    """The subtrees whose roots make PATH(index, D[tree_size]), in the proof's order."""
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is outside a tree of {tree_size} leaves")
    spans: list[Span] = []
    start, end = 0, tree_size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            spans.append((start + k, end))
            end = start + k
        else:
            spans.append((start, start + k))
            start += k
    return spans[::-1]  # the recursion lists the deepest sibling first


def consistency_spans(first: int, second: int) -> list[Span]:
    """The subtrees whose roots make PROOF(first, D[second]), in the proof's order."""
    if not 0 < first <= second:
        raise ValueError(f"cannot prove a tree of {first} leaves consistent with one of {second}")
    spans: list[Span] = []
    start, end, m, complete = 0, second, first, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            spans.append((start + k, end))
            end = start + k
        else:
            spans.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        spans.append((start, end))
    return spans[::-1]


def nodes_of(spans: Sequence[Span]) -> set[Node]:
    """Every perfect subtree the given subtrees fold from."""
    return {node for start, end in spans for node in perfect_nodes(start, end)}


def span_hash(span: Span, hashes: Mapping[Node, bytes]) -> bytes:
    """MTH(D[start:end]) from the roots of its perfect subtrees (level 0: the leaf hashes)."""
    return fold([hashes[node] for node in perfect_nodes(*span)])


def right_edge(tree_size: int) -> list[Node]:
    """The perfect subtrees whose roots are a tree's compact range, largest first."""
    return perfect_nodes(0, tree_size) if tree_size else []


class CompactRange:
    """The roots of the perfect subtrees along the right edge: O(log n) memory, any n.

    Appending leaves one at a time gives the tree's root at every size, which is what a
    streaming verifier and the registry's checkpointer need.
    """

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []  # highest subtree first

    @classmethod
    def of_right_edge(cls, tree_size: int, roots: Sequence[bytes]) -> CompactRange:
        """The range of a tree of ``tree_size`` leaves from the roots of its ``right_edge``."""
        if len(roots) != len(right_edge(tree_size)):
            raise ValueError(f"a tree of {tree_size} leaves has {tree_size.bit_count()} peaks")
        compact = cls()
        compact.size, compact._peaks = tree_size, list(roots)
        return compact

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add the next leaf; answer the perfect subtrees it completes as (level, index, hash)."""
        self._peaks.append(leaf)
        completed: list[tuple[int, int, bytes]] = []
        size, level = self.size, 0
        while size & 1:
            right = self._peaks.pop()
            left = self._peaks.pop()
            self._peaks.append(node_hash(left, right))
            size >>= 1
            level += 1
            completed.append((level, size, self._peaks[-1]))
        self.size += 1
        return completed

    def copy(self) -> CompactRange:
        """An independent copy, to advance tentatively."""
        other = CompactRange()
        other.size, other._peaks = self.size, list(self._peaks)
        return other

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        acc = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            acc = node_hash(peak, acc)
        return acc
