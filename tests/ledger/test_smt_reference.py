"""Batch updates give the root of the tree's definition, whatever the batches, and store only honest nodes.

The reference is the definition in ``ledger.smt``'s docstring, written naively (no node store, no batching):
the root of a set of (path, value_hash) leaves is EMPTY_ROOT for none, the leaf hash for one, else the node
hash of the roots of the two halves split on the next path bit. Blocks are applied as a node does: a fresh
``SparseMerkleTree`` per block over one node store, so nodes written by one block are read by the next.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.smt import EMPTY_ROOT, MemoryNodes, SparseMerkleTree, decode_node


def _h(tag: str, data: bytes) -> bytes:
    return hashlib.sha256(tag.encode() + b"\x00" + data).digest()


def _bit(path: bytes, depth: int) -> int:
    return (path[depth // 8] >> (7 - depth % 8)) & 1


def reference_root(state: dict[bytes, bytes]) -> bytes:
    leaves = sorted((_h("carecoin/v1/state-key", k), _h("carecoin/v1/state-value", v)) for k, v in state.items())

    def root(part: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not part:
            return EMPTY_ROOT
        if len(part) == 1:
            return _h("carecoin/v1/smt-leaf", part[0][0] + part[0][1])
        left = [leaf for leaf in part if not _bit(leaf[0], depth)]
        right = [leaf for leaf in part if _bit(leaf[0], depth)]
        return _h("carecoin/v1/smt-node", root(left, depth + 1) + root(right, depth + 1))

    return root(leaves, 0)


# A small key space, so later blocks update and delete keys of earlier ones; some big batches too.
keys = st.integers(0, 400).map(lambda i: b"k%d" % i)
blocks = st.lists(st.dictionaries(keys, st.none() | st.binary(max_size=6), max_size=60), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(blocks)
def test_block_after_block_the_root_is_the_reference_root_of_the_state(batches):
    store = MemoryNodes()
    state: dict[bytes, bytes] = {}
    root = EMPTY_ROOT
    for batch in batches:
        root, nodes = SparseMerkleTree(store).update(root, batch)
        # every node written is the honest node of its hash
        for node_hash, raw in nodes.items():
            kind, a, b = decode_node(raw)
            tag = "carecoin/v1/smt-leaf" if kind == 0 else "carecoin/v1/smt-node"
            assert _h(tag, a + b) == node_hash
        store.put_many(nodes)
        for k, v in batch.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
        assert root == reference_root(state)
    # the final tree reads back every value from the store alone (a cold tree: no memo of this test's trees)
    cold = SparseMerkleTree(MemoryNodes(dict(store._nodes)), cache_nodes=0)
    for k, v in state.items():
        assert cold.get(root, k) == _h("carecoin/v1/state-value", v)
