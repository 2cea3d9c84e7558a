"""The receipt bench's sweep: its streamed audit paths are the RFC 6962 ones, and its tree receipts verify and
grow by one hash per doubling of leaves."""

from __future__ import annotations

import pytest

from bench.receipt import build_tree_receipt, measure_point, path_and_root, stand_in_leaf_hash
from ledger.errors import ReceiptError
from ledger.merkle import MerkleTree, inclusion_proof_length
from ledger.receipt import verify
from ledger.receipt_compact import LAYOUT_3_FIELDS, decode_compact, encode_compact
from tests.receipt_fixtures import make_genesis


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 13, 64, 100])
def test_streamed_path_and_root_equal_the_merkle_tree_for_every_leaf(n):
    leaves_hashed = [stand_in_leaf_hash(i) for i in range(n)]
    tree = MerkleTree()
    for h in leaves_hashed:
        tree.append_hash(h)
    for index in range(n):
        path, root = path_and_root(n, index, leaves_hashed.__getitem__)
        assert path == tree.inclusion_proof(index)
        assert root == tree.root()


def test_tree_receipt_verifies_against_the_genesis_with_the_trees_size():
    receipt = build_tree_receipt(3000, 2251)
    proved = verify(receipt, make_genesis())
    assert (proved.tx_count, proved.leaf_index) == (3000, 2251)
    assert len(receipt["audit_path"]) == inclusion_proof_length(2251, 3000) == 11


def test_tree_receipt_with_one_path_hash_altered_is_refused():
    receipt = build_tree_receipt(3000, 2251)
    first = receipt["audit_path"][0]
    receipt["audit_path"][0] = ("0" if first[0] != "0" else "1") + first[1:]
    with pytest.raises(ReceiptError) as err:
        verify(receipt, make_genesis())
    assert err.value.check == "audit_path"


def test_sweep_sizes_grow_by_32_compact_bytes_per_doubling_of_leaves():
    genesis = make_genesis()
    points = [measure_point(n, genesis, runs=1, block_max=0) for n in (1024, 2048, 4096, 8192)]
    assert [p["audit_path_len"] for p in points] == [10, 11, 12, 13]
    for small, big in zip(points, points[1:]):
        assert big["compact_bytes"] - small["compact_bytes"] == 32  # one hash more in the path's one bin
        assert 64 <= big["receipt_bytes"] - small["receipt_bytes"] <= 70  # 64 hex digits, quotes, comma
    assert all(p["built"] == "tree" and p["real_block"] for p in points)


def test_compact_size_reported_is_the_encoded_receipts():
    point = measure_point(1000, make_genesis(), runs=1, block_max=0)
    receipt = build_tree_receipt(1000, 751)
    assert point["compact_bytes"] == len(encode_compact(receipt))


def test_parts_of_a_point_are_its_compact_receipts_fields():
    point = measure_point(1000, make_genesis(), runs=1, block_max=0)
    parts = point["parts_bytes"]
    assert list(parts) == list(LAYOUT_3_FIELDS)
    assert parts["audit_path"] == 3 + 32 * point["audit_path_len"]  # one bin16 of 10 hashes
    assert parts["commit"] == 1 + (2 + 64) + 2 * (2 + 96)  # 3 of 4 validators: the proposer's seal is 64 bytes
    assert sum(parts.values()) + 1 == point["compact_bytes"]  # and the array header
    assert point["verify_compact_ms_p50"] > 0


def test_the_compact_receipt_at_10_to_the_6_leaves_meets_the_1536_byte_goal():
    """Issue 15's goal at its hardest point: a 20-hash path (a tree no real block can have)."""
    receipt = build_tree_receipt(10**6, 750_001)  # the sweep's point
    raw = encode_compact(receipt)
    assert len(receipt["audit_path"]) == 20 and len(raw) <= 1536
    assert verify(decode_compact(raw), make_genesis()).tx_count == 10**6
