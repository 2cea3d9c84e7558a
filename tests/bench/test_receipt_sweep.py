"""The receipt bench's sweep: its streamed audit paths are the RFC 6962 ones, and its tree receipts verify and
grow by one hash per doubling of leaves."""

from __future__ import annotations

import pytest

from bench.receipt import build_tree_receipt, measure_point, path_and_root, stand_in_leaf_hash
from ledger.errors import ReceiptError
from ledger.merkle import MerkleTree, inclusion_proof_length
from ledger.receipt import encode_compact, verify
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


def test_sweep_sizes_grow_by_about_32_bytes_per_doubling_of_leaves():
    genesis = make_genesis()
    points = [measure_point(n, genesis, runs=1, block_max=0) for n in (1024, 2048, 4096, 8192)]
    assert [p["audit_path_len"] for p in points] == [10, 11, 12, 13]
    for small, big in zip(points, points[1:]):
        assert 32 <= big["compact_bytes"] - small["compact_bytes"] <= 35  # bin8 header + 32-byte hash
        assert 64 <= big["receipt_bytes"] - small["receipt_bytes"] <= 70  # 64 hex digits, quotes, comma
    assert all(p["built"] == "tree" and p["real_block"] for p in points)


def test_compact_size_reported_is_the_encoded_receipts():
    point = measure_point(1000, make_genesis(), runs=1, block_max=0)
    receipt = build_tree_receipt(1000, 751)
    assert point["compact_bytes"] == len(encode_compact(receipt))


def test_parts_of_a_point_are_its_receipts_fields():
    point = measure_point(1000, make_genesis(), runs=1, block_max=0)
    assert point["parts_bytes"]["audit_path"] == 32 * point["audit_path_len"]
    assert point["parts_bytes"]["seals"] == 3 * 96  # 3 of 4 validators: key + signature each
    assert sum(point["parts_bytes"].values()) < point["compact_bytes"]  # the rest is framing and two hashes
