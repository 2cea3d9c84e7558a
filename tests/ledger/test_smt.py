"""Sparse Merkle tree: behaviour against a dict model, proofs, canonical shape, formats."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger import codec
from ledger.errors import DecodeError, ProofError, SchemaError, StorageError
from ledger.hashing import TAG_SMT_LEAF, TAG_SMT_NODE, TAG_STATE_KEY, TAG_STATE_VALUE, H
from ledger.smt import (
    EMPTY_ROOT,
    MemoryNodes,
    OverlayNodes,
    SmtProof,
    SparseMerkleTree,
    compute_root,
    key_path,
    value_hash,
    verify_proof,
)

# Small key space so batches collide with existing keys (updates and deletes, not only inserts).
keys = st.binary(min_size=0, max_size=3)
values = st.binary(min_size=0, max_size=8)
batches = st.dictionaries(keys, st.one_of(st.none(), values), max_size=20)


def apply(tree: SparseMerkleTree, store: MemoryNodes, root: bytes, changes: dict) -> bytes:
    root, nodes = tree.update(root, changes)
    store.put_many(nodes)
    return root


def fresh() -> tuple[SparseMerkleTree, MemoryNodes]:
    store = MemoryNodes()
    return SparseMerkleTree(store), store


class SmtVersusDict(RuleBasedStateMachine):
    """Random batches of inserts, updates and deletes; the tree must always agree with a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.tree, self.store = fresh()
        self.root = EMPTY_ROOT
        self.model: dict[bytes, bytes] = {}
        self.history: list[tuple[bytes, dict[bytes, bytes]]] = []

    @rule(changes=batches)
    def apply_batch(self, changes):
        self.root = apply(self.tree, self.store, self.root, changes)
        for k, v in changes.items():
            if v is None:
                self.model.pop(k, None)
            else:
                self.model[k] = v
        self.history.append((self.root, dict(self.model)))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_a_present_key(self, data):
        k = data.draw(st.sampled_from(sorted(self.model)))
        self.root = apply(self.tree, self.store, self.root, {k: None})
        del self.model[k]

    @rule(k=keys)
    def get_matches_model(self, k):
        expected = value_hash(self.model[k]) if k in self.model else None
        assert self.tree.get(self.root, k) == expected

    @rule(k=keys)
    def proof_verifies_with_the_model_value_and_fails_with_another(self, k):
        proof = SmtProof.decode(self.tree.prove(self.root, k).encode())
        value = self.model.get(k)
        verify_proof(self.root, k, value, proof)
        wrong = (value + b"x") if value is not None else b"not-there"
        with pytest.raises(ProofError):
            verify_proof(self.root, k, wrong, proof)
        if value is not None:
            with pytest.raises(ProofError):
                verify_proof(self.root, k, None, proof)

    @invariant()
    def root_equals_root_built_from_scratch(self):
        assert self.root == compute_root(self.model)

    @invariant()
    def old_roots_stay_readable(self):
        if self.history:
            old_root, old_model = self.history[0]
            for k, v in list(old_model.items())[:3]:
                assert self.tree.get(old_root, k) == value_hash(v)


TestSmtVersusDict = SmtVersusDict.TestCase
TestSmtVersusDict.settings = settings(max_examples=30, stateful_step_count=15, deadline=None)


@given(st.dictionaries(st.binary(max_size=6), values, max_size=60), st.randoms(use_true_random=False))
def test_root_is_independent_of_insertion_order_and_batching(state, rnd):
    one_batch = compute_root(state)
    items = list(state.items())
    rnd.shuffle(items)
    tree, store = fresh()
    root = EMPTY_ROOT
    i = 0
    while i < len(items):
        n = rnd.randint(1, 7)
        root = apply(tree, store, root, dict(items[i:i + n]))
        i += n
    assert root == one_batch


@given(st.dictionaries(st.binary(max_size=6), values, min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_deleting_everything_returns_the_empty_root(state, rnd):
    tree, store = fresh()
    root = apply(tree, store, EMPTY_ROOT, state)
    assert root != EMPTY_ROOT
    ks = list(state)
    rnd.shuffle(ks)
    half = len(ks) // 2
    root = apply(tree, store, root, {k: None for k in ks[:half]})
    root = apply(tree, store, root, {k: None for k in ks[half:]})
    assert root == EMPTY_ROOT


@given(st.dictionaries(st.binary(max_size=4), values, min_size=2, max_size=40), st.data())
def test_tampered_sibling_or_leaf_fails_verification(state, data):
    tree, store = fresh()
    root = apply(tree, store, EMPTY_ROOT, state)
    k = data.draw(st.sampled_from(sorted(state)))
    proof = tree.prove(root, k)
    assert proof.siblings, "a tree of 2+ keys has siblings on every path"
    i = data.draw(st.integers(0, len(proof.siblings) - 1))
    bit = data.draw(st.integers(0, 255))
    sibs = list(proof.siblings)
    flipped = bytearray(sibs[i])
    flipped[bit // 8] ^= 1 << (bit % 8)
    sibs[i] = bytes(flipped)
    with pytest.raises(ProofError):
        verify_proof(root, k, state[k], SmtProof(proof.leaf, tuple(sibs)))
    with pytest.raises(ProofError):  # dropping the top sibling
        verify_proof(root, k, state[k], SmtProof(proof.leaf, proof.siblings[1:]))
    with pytest.raises(ProofError):  # adding an empty sibling below
        verify_proof(root, k, state[k], SmtProof(proof.leaf, proof.siblings + (EMPTY_ROOT,)))


def test_known_vectors_pin_the_hash_and_node_formats():
    """A verifier written from the module comment must get these exact roots."""
    assert EMPTY_ROOT == bytes(32)
    assert compute_root({}) == EMPTY_ROOT
    pa, va = key_path(b"a"), value_hash(b"1")
    assert pa == H(TAG_STATE_KEY, b"a") and va == H(TAG_STATE_VALUE, b"1")
    leaf_a = H(TAG_SMT_LEAF, pa + va)
    assert compute_root({b"a": b"1"}) == leaf_a
    pb, vb = key_path(b"b"), value_hash(b"2")
    leaf_b = H(TAG_SMT_LEAF, pb + vb)
    # Split at the first differing bit; above it, one-sided internal nodes with an empty sibling.
    diff = next(d for d in range(256) if (pa[d // 8] >> (7 - d % 8)) & 1 != (pb[d // 8] >> (7 - d % 8)) & 1)
    a_right = (pa[diff // 8] >> (7 - diff % 8)) & 1
    cur = H(TAG_SMT_NODE, leaf_b + leaf_a) if a_right else H(TAG_SMT_NODE, leaf_a + leaf_b)
    for d in range(diff - 1, -1, -1):
        bit = (pa[d // 8] >> (7 - d % 8)) & 1
        cur = H(TAG_SMT_NODE, EMPTY_ROOT + cur) if bit else H(TAG_SMT_NODE, cur + EMPTY_ROOT)
    assert compute_root({b"a": b"1", b"b": b"2"}) == cur
    tree, store = fresh()
    root = apply(tree, store, EMPTY_ROOT, {b"a": b"1", b"b": b"2"})
    assert store.get_node(leaf_a) == codec.encode([0, pa, va])
    top = codec.decode(store.get_node(root))
    assert top[0] == 1 and store.get_node(root) == codec.encode(top) and root == H(TAG_SMT_NODE, top[1] + top[2])
    proof = tree.prove(root, b"a")
    assert proof.encode() == codec.encode([[pa, va], list(proof.siblings)])
    assert len(proof.siblings) == diff + 1


def test_absence_proof_by_a_different_leaf_on_the_path():
    tree, store = fresh()
    root = apply(tree, store, EMPTY_ROOT, {b"only": b"v"})
    proof = tree.prove(root, b"other")
    assert proof.leaf == (key_path(b"only"), value_hash(b"v")) and proof.siblings == ()
    verify_proof(root, b"other", None, proof)
    with pytest.raises(ProofError, match="expected absence"):
        verify_proof(root, b"only", None, proof)


def test_absence_proof_in_the_empty_tree():
    tree, _ = fresh()
    proof = tree.prove(EMPTY_ROOT, b"k")
    assert proof == SmtProof(None, ())
    verify_proof(EMPTY_ROOT, b"k", None, proof)
    with pytest.raises(ProofError, match="expected the key present"):
        verify_proof(EMPTY_ROOT, b"k", b"v", proof)


def test_absence_proof_with_a_leaf_off_the_path_is_refused():
    tree, store = fresh()
    state = {bytes([i]): b"v" for i in range(64)}
    root = apply(tree, store, EMPTY_ROOT, state)
    absent = b"missing"
    proof = tree.prove(root, absent)
    verify_proof(root, absent, None, proof)
    # Swap in some other real leaf that is not on the absent key's path.
    other = next(k for k in state if not key_path(k)[:1] == key_path(absent)[:1])
    forged = SmtProof((key_path(other), value_hash(b"v")), proof.siblings)
    with pytest.raises(ProofError):
        verify_proof(root, absent, None, forged)


def test_depth_grows_like_log_n_not_256():
    tree, store = fresh()
    state = {i.to_bytes(4, "big"): b"v" for i in range(2000)}
    root = apply(tree, store, EMPTY_ROOT, state)
    depths = [len(tree.prove(root, k).siblings) for k in list(state)[:200]]
    assert max(depths) <= 32 and sum(depths) / len(depths) < 16


def test_batch_hashes_each_shared_upper_node_once(monkeypatch):
    import ledger.smt as smt_module

    tree, store = fresh()
    changed = [i.to_bytes(4, "big") for i in range(100)]
    root = apply(tree, store, EMPTY_ROOT, {i.to_bytes(4, "big"): b"a" for i in range(1000)})
    calls = []
    real = smt_module.compute_node_hash
    monkeypatch.setattr(smt_module, "compute_node_hash", lambda l, r: calls.append(1) or real(l, r))
    new_root, nodes = tree.update(root, {k: b"b" for k in changed})
    monkeypatch.undo()
    store.put_many(nodes)
    # The internal nodes on the union of the changed keys' paths in the new tree: each hashed exactly once.
    on_paths = set()
    for k in changed:
        h = new_root
        for sib in tree.prove(new_root, k).siblings:
            on_paths.add(h)
            kind, left, right = smt_module.decode_node(store.get_node(h))
            h = right if left == sib else left
    assert len(calls) == len(on_paths)
    per_key_depth_sum = sum(len(tree.prove(new_root, k).siblings) for k in changed)
    assert len(calls) < per_key_depth_sum * 0.7


def test_overlay_nodes_let_updates_chain_before_persisting():
    base = MemoryNodes()
    overlay = OverlayNodes(base)
    tree = SparseMerkleTree(overlay, cache_nodes=0)
    r1, n1 = tree.update(EMPTY_ROOT, {b"a": b"1", b"b": b"2"})
    overlay.put_many(n1)
    r2, n2 = tree.update(r1, {b"c": b"3"})
    assert len(base) == 0
    assert r2 == compute_root({b"a": b"1", b"b": b"2", b"c": b"3"})


def test_a_missing_node_is_a_storage_error_not_a_wrong_answer():
    tree, store = fresh()
    root = apply(tree, store, EMPTY_ROOT, {b"a": b"1", b"b": b"2"})
    with pytest.raises(StorageError, match="missing"):
        SparseMerkleTree(MemoryNodes()).get(root, b"a")


def test_update_rejects_non_bytes_keys_and_values():
    tree, _ = fresh()
    with pytest.raises(SchemaError):
        tree.update(EMPTY_ROOT, {"a": b"1"})
    with pytest.raises(SchemaError):
        tree.update(EMPTY_ROOT, {b"a": 1})
    with pytest.raises(SchemaError):
        tree.update(b"short", {b"a": b"1"})


def test_empty_changes_keep_the_root_and_write_nothing():
    tree, store = fresh()
    root = apply(tree, store, EMPTY_ROOT, {b"a": b"1"})
    assert tree.update(root, {}) == (root, {})


@pytest.mark.parametrize("raw", [
    codec.encode([[], [b"\x00" * 31]]),
    codec.encode([[b"\x00" * 32], []]),
    codec.encode([[], [b"\x00" * 32] * 257]),
    codec.encode([[]]),
])
def test_malformed_proof_bytes_are_refused(raw):
    with pytest.raises((SchemaError, DecodeError)):
        SmtProof.decode(raw)


@pytest.mark.parametrize("raw", [
    b"",
    codec.encode([2, b"\x00" * 32, b"\x00" * 32]),
    codec.encode([0, b"\x00" * 32, b"\x00" * 31]) + b"\x00",
    codec.encode([1, b"\x00" * 32, b"\x00" * 32])[:-1],
])
def test_corrupt_stored_node_is_a_storage_error(raw):
    store = MemoryNodes({b"\x11" * 32: raw})
    with pytest.raises(StorageError, match="corrupt"):
        SparseMerkleTree(store).get(b"\x11" * 32, b"k")


def test_node_cache_stays_correct_when_it_evicts():
    store = MemoryNodes()
    tree = SparseMerkleTree(store, cache_nodes=16)
    state = {i.to_bytes(2, "big"): b"v%d" % i for i in range(300)}
    root = apply(tree, store, EMPTY_ROOT, state)
    root = apply(tree, store, root, {k: b"w" for k in list(state)[::3]})
    state.update({k: b"w" for k in list(state)[::3]})
    assert root == compute_root(state)
    assert all(tree.get(root, k) == value_hash(v) for k, v in state.items())


def test_proof_round_trips_through_bytes():
    tree, store = fresh()
    rnd = random.Random(7)
    state = {rnd.randbytes(8): rnd.randbytes(4) for _ in range(300)}
    root = apply(tree, store, EMPTY_ROOT, state)
    for k in list(state)[:20] + [b"absent-1", b"absent-2"]:
        proof = tree.prove(root, k)
        again = SmtProof.decode(proof.encode())
        assert again == proof
        verify_proof(root, k, state.get(k), again)
