"""Proofs from stored perfect subtrees: the same bytes as the recursive RFC 6962 proofs.

The registry stores the root of every perfect subtree (level, index) as the log grows and
answers a proof from O(log n) of them; these tests hold that arithmetic to the recursive
``inclusion_proof`` / ``consistency_proof`` for every index and size of the small trees.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.merkle import (
    CompactRange,
    Node,
    consistency_proof,
    consistency_spans,
    fold,
    inclusion_proof,
    inclusion_spans,
    leaf_hash,
    nodes_of,
    perfect_nodes,
    right_edge,
    root,
    span_hash,
)

SMALL = 70
LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(SMALL)]


def stored_nodes(leaves: list[bytes]) -> dict[Node, bytes]:
    """What the registry stores for these leaves, computed here from the definition of MTH."""
    nodes: dict[Node, bytes] = {}
    level = 0
    while 1 << level <= len(leaves):
        width = 1 << level
        for index in range(len(leaves) // width):
            nodes[level, index] = root(leaves[index * width : (index + 1) * width])
        level += 1
    return nodes


NODES = stored_nodes(LEAVES)


def within(tree_size: int, nodes: set[Node]) -> bool:
    return all((index + 1) << level <= tree_size for level, index in nodes)


def test_inclusion_proofs_from_stored_nodes_equal_the_recursive_ones_up_to_70_leaves() -> None:
    for tree_size in range(1, SMALL + 1):
        leaves = LEAVES[:tree_size]
        for index in range(tree_size):
            spans = inclusion_spans(index, tree_size)
            assert within(tree_size, nodes_of(spans)), (index, tree_size)
            proof = [span_hash(span, NODES) for span in spans]
            assert proof == inclusion_proof(index, leaves), (index, tree_size)


def test_consistency_proofs_from_stored_nodes_equal_the_recursive_ones_up_to_70_leaves() -> None:
    for second in range(1, SMALL + 1):
        leaves = LEAVES[:second]
        for first in range(1, second + 1):
            spans = consistency_spans(first, second)
            assert within(second, nodes_of(spans)), (first, second)
            proof = [span_hash(span, NODES) for span in spans]
            assert proof == consistency_proof(first, leaves), (first, second)


def test_the_root_of_any_tree_folds_from_its_perfect_subtrees() -> None:
    for tree_size in range(1, SMALL + 1):
        assert span_hash((0, tree_size), NODES) == root(LEAVES[:tree_size]), tree_size


def test_a_proof_needs_a_logarithmic_number_of_stored_nodes() -> None:
    for tree_size in range(1, SMALL + 1):
        bound = 2 * tree_size.bit_length()
        for index in range(tree_size):
            assert len(nodes_of(inclusion_spans(index, tree_size))) <= bound
        for first in range(1, tree_size + 1):
            assert len(nodes_of(consistency_spans(first, tree_size))) <= bound


def test_the_perfect_pieces_of_a_subtree_are_the_binary_digits_of_its_size() -> None:
    assert perfect_nodes(0, 1) == [(0, 0)]
    assert perfect_nodes(0, 8) == [(3, 0)]
    assert perfect_nodes(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert perfect_nodes(8, 11) == [(1, 4), (0, 10)]


@pytest.mark.parametrize(("start", "end"), [(0, 0), (3, 2), (-1, 1), (1, 3), (2, 6)])
def test_leaves_that_are_no_subtree_have_no_perfect_pieces(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="subtree"):
        perfect_nodes(start, end)


def test_a_proof_cannot_be_asked_outside_the_tree() -> None:
    with pytest.raises(ValueError, match="outside"):
        inclusion_spans(5, 5)
    with pytest.raises(ValueError, match="consistent"):
        consistency_spans(0, 5)
    with pytest.raises(ValueError, match="consistent"):
        consistency_spans(6, 5)


def test_folding_one_piece_is_that_piece() -> None:
    assert fold([LEAVES[3]]) == LEAVES[3]


def test_the_compact_range_completes_every_perfect_subtree_once_as_leaves_arrive() -> None:
    compact = CompactRange()
    completed: dict[Node, bytes] = {}
    for leaf in LEAVES:
        for level, index, node in compact.append(leaf):
            assert (level, index) not in completed
            completed[level, index] = node

    assert completed == {node: h for node, h in NODES.items() if node[0] > 0}


def test_a_compact_range_rebuilt_from_its_right_edge_goes_on_as_one_built_leaf_by_leaf() -> None:
    for size in range(SMALL):
        built = CompactRange()
        for leaf in LEAVES[:size]:
            built.append(leaf)
        rebuilt = CompactRange.of_right_edge(size, [NODES[node] for node in right_edge(size)])

        assert (rebuilt.size, rebuilt.root()) == (size, root(LEAVES[:size])), size
        for leaf in LEAVES[size:]:
            assert rebuilt.append(leaf) == built.append(leaf), size
            assert rebuilt.root() == built.root(), size


def test_the_right_edge_of_a_tree_is_one_perfect_subtree_per_binary_digit_of_its_size() -> None:
    assert right_edge(0) == []
    assert right_edge(1) == [(0, 0)]
    assert right_edge(1000) == [(9, 0), (8, 2), (7, 6), (6, 14), (5, 30), (3, 124)]
    with pytest.raises(ValueError, match="6 peaks"):
        CompactRange.of_right_edge(1000, [LEAVES[0]] * 5)


@settings(max_examples=30, deadline=None)
@given(
    tree_size=st.integers(min_value=1, max_value=3000),
    data=st.data(),
)
def test_proofs_from_stored_nodes_equal_the_recursive_ones_in_larger_trees(
    tree_size: int, data: st.DataObject
) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(tree_size)]
    nodes = stored_nodes(leaves)
    index = data.draw(st.integers(min_value=0, max_value=tree_size - 1))
    first = data.draw(st.integers(min_value=1, max_value=tree_size))

    inclusion = [span_hash(s, nodes) for s in inclusion_spans(index, tree_size)]
    consistency = [span_hash(s, nodes) for s in consistency_spans(first, tree_size)]

    assert inclusion == inclusion_proof(index, leaves)
    assert consistency == consistency_proof(first, leaves)
