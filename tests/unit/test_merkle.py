"""Merkle trees over the log: RFC 6962 known answers, and proofs that verify only when true.

The known answers are the sample tree of certificate-transparency's and trillian's reference
tests (eight leaves, their incremental roots, audit paths and consistency proofs). Beside them,
an independent transcription of RFC 6962 §2.1 (MTH, PATH, PROOF, recursive and slow) is the
oracle for every size hypothesis tries.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.common.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# -- the reference tree -----------------------------------------------------------------------

ENTRIES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
LEAVES = [leaf_hash(e) for e in ENTRIES]

# MTH of the first n entries, n = 1..8 (kSHA256Roots of certificate-transparency's tests).
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
EMPTY_TREE_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# (leaf index from 0, tree size, audit path); the reference files count leaves from 1.
INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (first size, second size, consistency proof).
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def hexes(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def unhex(hashes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]


# -- RFC 6962 §2.1, transcribed as written: the oracle ------------------------------------------


def rfc_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(entries: list[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = rfc_split(n)
    return hashlib.sha256(b"\x01" + rfc_mth(entries[:k]) + rfc_mth(entries[k:])).digest()


def rfc_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = rfc_split(n)
    if m < k:
        return [*rfc_path(m, entries[:k]), rfc_mth(entries[k:])]
    return [*rfc_path(m - k, entries[k:]), rfc_mth(entries[:k])]


def rfc_proof(m: int, entries: list[bytes]) -> list[bytes]:
    return rfc_subproof(m, entries, True)


def rfc_subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [rfc_mth(entries)]
    k = rfc_split(n)
    if m <= k:
        return [*rfc_subproof(m, entries[:k], b), rfc_mth(entries[k:])]
    return [*rfc_subproof(m - k, entries[k:], False), rfc_mth(entries[:k])]


def test_the_oracle_agrees_with_the_reference_roots() -> None:
    assert rfc_mth([]).hex() == EMPTY_TREE_ROOT
    assert {n: rfc_mth(ENTRIES[:n]).hex() for n in ROOTS} == ROOTS


# -- known answers -------------------------------------------------------------------------------


def test_leaf_and_node_hashes_are_domain_separated_sha256() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    assert leaf_hash(b"") != hashlib.sha256(b"").digest()


def test_the_root_of_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == EMPTY_TREE_ROOT
    assert root([]).hex() == EMPTY_TREE_ROOT
    assert CompactRange().root().hex() == EMPTY_TREE_ROOT


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_the_root_of_the_reference_tree_matches_rfc_6962_at_each_size(size: int) -> None:
    assert root(LEAVES[:size]).hex() == ROOTS[size]


def test_the_compact_range_gives_the_reference_root_after_each_leaf() -> None:
    tree = CompactRange()
    for size, leaf in enumerate(LEAVES, start=1):
        tree.append(leaf)
        assert (tree.size, tree.root().hex()) == (size, ROOTS[size])


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_PROOFS)
def test_the_audit_path_matches_the_reference(index: int, size: int, path: list[str]) -> None:
    assert hexes(inclusion_proof(index, LEAVES[:size])) == path
    assert verify_inclusion(LEAVES[index], index, size, unhex(path), bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY_PROOFS)
def test_the_consistency_proof_matches_the_reference(
    first: int, second: int, proof: list[str]
) -> None:
    assert hexes(consistency_proof(first, LEAVES[:second])) == proof
    assert verify_consistency(
        first, second, bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second]), unhex(proof)
    )


def test_every_audit_path_and_consistency_proof_of_the_reference_tree_is_rfc_6962s() -> None:
    for size in range(1, 9):
        for index in range(size):
            assert inclusion_proof(index, LEAVES[:size]) == rfc_path(index, ENTRIES[:size])
        for first in range(1, size + 1):
            assert consistency_proof(first, LEAVES[:size]) == rfc_proof(first, ENTRIES[:size])


# -- what the checks refuse ---------------------------------------------------------------------


def test_an_audit_path_for_an_index_outside_the_tree_cannot_be_asked_for() -> None:
    with pytest.raises(ValueError, match="outside a tree of 8"):
        inclusion_proof(8, LEAVES)
    with pytest.raises(ValueError):
        inclusion_proof(-1, LEAVES)
    with pytest.raises(ValueError):
        inclusion_proof(0, [])


def test_a_consistency_proof_needs_a_first_size_between_1_and_the_tree() -> None:
    for m in (0, 9, -1):
        with pytest.raises(ValueError, match="cannot prove"):
            consistency_proof(m, LEAVES)


def test_inclusion_is_refused_for_an_index_outside_the_claimed_tree() -> None:
    eight = bytes.fromhex(ROOTS[8])
    path = inclusion_proof(5, LEAVES)
    assert not verify_inclusion(LEAVES[5], 8, 8, path, eight)
    assert not verify_inclusion(LEAVES[5], -1, 8, path, eight)
    assert not verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)


def test_inclusion_is_refused_when_the_path_is_too_long_or_too_short() -> None:
    eight = bytes.fromhex(ROOTS[8])
    path = inclusion_proof(5, LEAVES)
    assert not verify_inclusion(LEAVES[5], 5, 8, path[:-1], eight)
    assert not verify_inclusion(LEAVES[5], 5, 8, [*path, path[-1]], eight)
    assert not verify_inclusion(LEAVES[0], 0, 1, [LEAVES[1]], bytes.fromhex(ROOTS[1]))
    assert verify_inclusion(LEAVES[0], 0, 1, [], bytes.fromhex(ROOTS[1]))


def test_inclusion_is_refused_for_the_entry_itself_instead_of_its_leaf_hash() -> None:
    path = inclusion_proof(3, LEAVES)
    assert not verify_inclusion(ENTRIES[3], 3, 8, path, bytes.fromhex(ROOTS[8]))


def test_consistency_of_a_tree_with_itself_needs_an_empty_proof_and_equal_roots() -> None:
    r5, r6 = bytes.fromhex(ROOTS[5]), bytes.fromhex(ROOTS[6])
    assert verify_consistency(5, 5, r5, r5, [])
    assert not verify_consistency(5, 5, r5, r6, [])
    assert not verify_consistency(5, 5, r5, r5, [r5])


def test_consistency_is_refused_from_an_empty_tree_or_backwards_or_without_a_proof() -> None:
    r3, r8 = bytes.fromhex(ROOTS[3]), bytes.fromhex(ROOTS[8])
    proof = consistency_proof(3, LEAVES)
    assert verify_consistency(3, 8, r3, r8, proof)
    assert not verify_consistency(0, 8, EMPTY_ROOT, r8, proof)
    assert not verify_consistency(8, 3, r8, r3, proof)
    assert not verify_consistency(3, 8, r3, r8, [])
    assert not verify_consistency(3, 8, r3, r8, proof[:-1])
    assert not verify_consistency(3, 8, r3, r8, [*proof, proof[0]])


# -- properties over any size --------------------------------------------------------------------

MAX_LEAVES = 200


def distinct_leaves(n: int, salt: int) -> list[bytes]:
    """``n`` leaf hashes, all different, so no proof can be right by coincidence."""
    return [leaf_hash(f"{salt}/{i}".encode()) for i in range(n)]


def extension(n: int) -> list[bytes]:
    """Leaves to grow a tree by, unlike any of ``distinct_leaves``."""
    return [leaf_hash(f"extra/{i}".encode()) for i in range(max(0, n))]


trees = st.builds(distinct_leaves, st.integers(1, MAX_LEAVES), st.integers(0, 2**32))


@given(entries=st.lists(st.binary(max_size=12), max_size=70))
def test_root_is_rfc_6962s_mth_of_any_entries(entries: list[bytes]) -> None:
    assert root([leaf_hash(e) for e in entries]) == rfc_mth(entries)


@given(entries=st.lists(st.binary(max_size=8), min_size=1, max_size=40), data=st.data())
def test_proofs_are_rfc_6962s_path_and_proof_for_any_entries(
    entries: list[bytes], data: st.DataObject
) -> None:
    leaves = [leaf_hash(e) for e in entries]
    index = data.draw(st.integers(0, len(entries) - 1), label="index")
    first = data.draw(st.integers(1, len(entries)), label="first")
    assert inclusion_proof(index, leaves) == rfc_path(index, entries)
    assert consistency_proof(first, leaves) == rfc_proof(first, entries)


@given(leaves=trees)
def test_the_compact_range_root_equals_root_at_every_size(leaves: list[bytes]) -> None:
    tree = CompactRange()
    for size, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        assert tree.size == size
        assert tree.root() == root(leaves[:size])


@given(leaves=trees, data=st.data())
def test_every_audit_path_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    index = data.draw(st.integers(0, n - 1), label="index")
    assert verify_inclusion(leaves[index], index, n, inclusion_proof(index, leaves), root(leaves))


@given(leaves=trees, data=st.data())
def test_an_audit_path_fails_for_another_leaf_index_size_or_root(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    index = data.draw(st.integers(0, n - 1), label="index")
    path, head = inclusion_proof(index, leaves), root(leaves)

    other_index = data.draw(st.integers(0, n - 1), label="other_index")
    if other_index != index:
        assert not verify_inclusion(leaves[index], other_index, n, path, head)
        assert not verify_inclusion(leaves[other_index], index, n, path, head)
    # Another size, with that size's own root: the path does not lead there.
    other_size = data.draw(st.integers(index + 1, MAX_LEAVES + 1), label="other_size")
    if other_size != n:
        other = [*leaves, *extension(other_size - n)][:other_size]
        assert not verify_inclusion(leaves[index], index, other_size, path, root(other))
    # Another root, and a path with one hash changed.
    assert not verify_inclusion(leaves[index], index, n, path, node_hash(head, head))
    if path:
        at = data.draw(st.integers(0, len(path) - 1), label="changed_hash")
        changed = [*path]
        changed[at] = node_hash(changed[at], changed[at])
        assert not verify_inclusion(leaves[index], index, n, changed, head)


@given(leaves=trees, data=st.data())
def test_every_consistency_proof_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    n = len(leaves)
    first = data.draw(st.integers(1, n), label="first")
    proof = consistency_proof(first, leaves)
    assert verify_consistency(first, n, root(leaves[:first]), root(leaves), proof)


@given(leaves=trees, data=st.data())
def test_a_consistency_proof_fails_for_another_size_or_root(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    assume(n > 1)
    first = data.draw(st.integers(1, n - 1), label="first")
    proof = consistency_proof(first, leaves)
    old, new = root(leaves[:first]), root(leaves)

    other_first = data.draw(st.integers(1, n - 1), label="other_first")
    if other_first != first:
        assert not verify_consistency(other_first, n, root(leaves[:other_first]), new, proof)
    other_second = data.draw(st.integers(first + 1, MAX_LEAVES), label="other_second")
    if other_second != n:
        longer = [*leaves, *extension(other_second - n)][:other_second]
        assert not verify_consistency(first, other_second, old, root(longer), proof)
    assert not verify_consistency(first, n, node_hash(old, old), new, proof)
    assert not verify_consistency(first, n, old, node_hash(new, new), proof)
    at = data.draw(st.integers(0, len(proof) - 1), label="changed_hash")
    changed = [*proof]
    changed[at] = node_hash(changed[at], changed[at])
    assert not verify_consistency(first, n, old, new, changed)


@given(leaves=trees, data=st.data())
def test_a_rewritten_prefix_is_not_consistent_with_the_old_root(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    assume(n > 1)
    first = data.draw(st.integers(1, n - 1), label="first")
    at = data.draw(st.integers(0, first - 1), label="rewritten")
    old = root(leaves[:first])
    rewritten = [*leaves]
    rewritten[at] = leaf_hash(b"forged")
    proof = consistency_proof(first, rewritten)
    assert not verify_consistency(first, n, old, root(rewritten), proof)
