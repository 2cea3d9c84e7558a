"""RFC 6962/9162 Merkle trees: agreement with a plain reference, published vectors, and tamper refusal."""

from __future__ import annotations

import functools
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import LedgerError, ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- a naive reference, written from the RFC 9162 §2.1 definitions -------------------------------------------
# It works on ranges [start, end) of one fixed leaf list so the recursion can be memoised; apart from that it
# is the RFC's text transcribed: MTH, PATH and SUBPROOF.

MAX = 300
LEAVES = [b""] + [b"leaf %d" % i for i in range(1, MAX + 8)]


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def ref_mth(start: int, end: int) -> bytes:
    n = end - start
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + LEAVES[start])
    k = largest_power_of_two_below(n)
    return sha(b"\x01" + ref_mth(start, start + k) + ref_mth(start + k, end))


@functools.cache
def ref_path(m: int, start: int, end: int) -> tuple[bytes, ...]:
    n = end - start
    if n == 1:
        return ()
    k = largest_power_of_two_below(n)
    if m < k:
        return ref_path(m, start, start + k) + (ref_mth(start + k, end),)
    return ref_path(m - k, start + k, end) + (ref_mth(start, start + k),)


@functools.cache
def ref_subproof(m: int, start: int, end: int, b: bool) -> tuple[bytes, ...]:
    n = end - start
    if m == n:
        return () if b else (ref_mth(start, end),)
    k = largest_power_of_two_below(n)
    if m <= k:
        return ref_subproof(m, start, start + k, b) + (ref_mth(start + k, end),)
    return ref_subproof(m - k, start + k, end, False) + (ref_mth(start, start + k),)


def ref_consistency(m: int, n: int) -> list[bytes]:
    return [] if m == 0 else list(ref_subproof(m, 0, n, True))


def ref_sides(m: int, n: int) -> tuple[bool, ...]:
    """The shape of an audit path: for each element, whether the sibling is on the right."""
    if n == 1:
        return ()
    k = largest_power_of_two_below(n)
    return ref_sides(m, k) + (True,) if m < k else ref_sides(m - k, n - k) + (False,)


@pytest.fixture(scope="module")
def full_tree() -> MerkleTree:
    return MerkleTree.from_leaves(LEAVES[:MAX])


def flip(data: bytes, pos: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[pos] ^= 1 << bit
    return bytes(b)


def refused(fn, *args) -> bool:
    try:
        fn(*args)
    except ProofError:
        return True
    return False


# --- RFC 6962 published vectors (google/certificate-transparency merkle tree tests,
# --- as kept in transparency-dev/merkle testonly/constants.go and proof/verify_test.go) -------------------------

CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
_H = {  # named nodes of the 8-leaf vector tree, to keep the proof tables readable
    "l1": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "l4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "l6": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "n01": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "n23": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "n45": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "n67": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "n0123": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "n4567": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "l0": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
}
CT_INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (0, 8, ["l1", "n23", "n4567"]),
    (5, 8, ["l4", "n67", "n0123"]),
    (2, 3, ["n01"]),
    (1, 5, ["l0", "n23", "l4"]),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["l1", "n23", "n4567"]),
    (6, 8, ["n45", "n67", "n0123"]),
    (2, 5, ["n23", "l4"]),
    (6, 7, ["n45", "l6", "n0123"]),
]


def _hashes(names: list[str]) -> list[bytes]:
    return [bytes.fromhex(_H[n]) for n in names]


def test_published_roots_for_sizes_0_to_8_from_list_tree_and_appends():
    tree = MerkleTree()
    assert tree.root() == CT_ROOTS[0]
    for n in range(1, 9):
        tree.append(CT_LEAVES[n - 1])
        assert root(CT_LEAVES[:n]) == CT_ROOTS[n]
        assert tree.root() == CT_ROOTS[n]
        assert MerkleTree.from_leaves(CT_LEAVES[:n]).root() == CT_ROOTS[n]
    assert root([]) == CT_ROOTS[0] == EMPTY_ROOT == sha(b"")


def test_published_leaf_and_node_hashes():
    assert leaf_hash(CT_LEAVES[0]) == bytes.fromhex(_H["l0"])
    assert leaf_hash(CT_LEAVES[1]) == bytes.fromhex(_H["l1"])
    assert node_hash(bytes.fromhex(_H["l0"]), bytes.fromhex(_H["l1"])) == bytes.fromhex(_H["n01"])


@pytest.mark.parametrize("index,size,names", CT_INCLUSION)
def test_published_inclusion_proofs_are_built_and_verify(index, size, names):
    expected = _hashes(names)
    assert inclusion_proof(CT_LEAVES[:size], index) == expected
    assert MerkleTree.from_leaves(CT_LEAVES).inclusion_proof(index, size) == expected
    verify_inclusion(CT_LEAVES[index], index, size, expected, CT_ROOTS[size])


@pytest.mark.parametrize("old,new,names", CT_CONSISTENCY)
def test_published_consistency_proofs_are_built_and_verify(old, new, names):
    expected = _hashes(names)
    assert consistency_proof(CT_LEAVES[:new], old) == expected
    assert MerkleTree.from_leaves(CT_LEAVES).consistency_proof(old, new) == expected
    verify_consistency(old, new, CT_ROOTS[old], CT_ROOTS[new], expected)


@pytest.mark.parametrize("old,new,names", [c for c in CT_CONSISTENCY if c[2]])
def test_published_consistency_proofs_refuse_the_certificate_transparency_corruptions(old, new, names):
    proof = _hashes(names)
    r1, r2 = CT_ROOTS[old], CT_ROOTS[new]
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (old - 1, new, r1, r2, proof), (old + 1, new, r1, r2, proof), (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof), (old, new // 2, r1, r2, proof),
        (old, new, some, r2, proof), (old, new, r1, some, proof), (old, new, r2, r1, proof),
        (old, new, r1, r2, []), (old, new, r1, r2, proof + [r1]), (old, new, r1, r2, proof + [r2]),
        (old, new, r1, r2, [r1] + proof), (old, new, r1, r2, [r2] + proof), (old, new, r1, r2, proof[:1] + proof),
        (old, new, r1, r2, proof[:-1]),
    ] + [(old, new, r1, r2, proof[:i] + [flip(proof[i], 0, 4)] + proof[i + 1:]) for i in range(len(proof))]
    for probe in probes:
        assert refused(verify_consistency, *probe), probe[:2]


# --- agreement with the reference at every size --------------------------------------------------------------


def test_root_agrees_with_reference_for_every_size_0_to_300():
    tree = MerkleTree()
    for n in range(MAX + 1):
        if n:
            assert tree.append(LEAVES[n - 1]) == n - 1
        assert tree.size == n
        assert tree.root() == ref_mth(0, n)
        assert root(LEAVES[:n]) == ref_mth(0, n)


def test_incremental_tree_gives_reference_inclusion_proofs_at_every_size_and_index_and_they_verify():
    tree = MerkleTree()
    for n in range(1, MAX + 1):
        tree.append(LEAVES[n - 1])
        r = tree.root()
        for i in range(n):
            proof = tree.inclusion_proof(i)
            assert proof == list(ref_path(i, 0, n)), (i, n)
            verify_inclusion(LEAVES[i], i, n, proof, r)


def test_incremental_tree_gives_reference_consistency_proofs_for_every_old_size_and_they_verify():
    tree = MerkleTree()
    for n in range(1, MAX + 1):
        tree.append(LEAVES[n - 1])
        new_root = tree.root()
        for m in range(n + 1):
            proof = tree.consistency_proof(m)
            assert proof == ref_consistency(m, n), (m, n)
            verify_consistency(m, n, ref_mth(0, m), new_root, proof)


def test_proofs_for_past_sizes_match_reference(full_tree):
    for n in range(1, MAX + 1, 7):
        assert full_tree.root(n) == ref_mth(0, n)
        for i in range(0, n, 3):
            assert full_tree.inclusion_proof(i, n) == list(ref_path(i, 0, n))
        for m in range(0, n + 1, 3):
            assert full_tree.consistency_proof(m, n) == ref_consistency(m, n)


def test_list_functions_agree_with_reference_for_sizes_up_to_64():
    for n in range(1, 65):
        leaves = LEAVES[:n]
        for i in range(n):
            assert inclusion_proof(leaves, i) == list(ref_path(i, 0, n))
        for m in range(n + 1):
            assert consistency_proof(leaves, m) == ref_consistency(m, n)


def test_append_hash_and_from_leaves_build_the_same_tree_as_append():
    a, b = MerkleTree(), MerkleTree()
    for leaf in LEAVES[:77]:
        a.append(leaf)
        b.append_hash(leaf_hash(leaf))
    c = MerkleTree.from_leaves(LEAVES[:77])
    assert a.root() == b.root() == c.root() == ref_mth(0, 77)
    assert a.inclusion_proof(70) == b.inclusion_proof(70) == c.inclusion_proof(70)
    assert c.leaf_hash_at(5) == leaf_hash(LEAVES[5])


# --- tampering -------------------------------------------------------------------------------------------------


def test_inclusion_refuses_any_flipped_byte_in_proof_leaf_or_root(full_tree):
    for n in range(1, 41):
        r = full_tree.root(n)
        for i in range(n):
            proof = full_tree.inclusion_proof(i, n)
            for j in range(len(proof)):
                for pos in (0, 17, 31):
                    bad = proof[:j] + [flip(proof[j], pos, pos % 8)] + proof[j + 1:]
                    assert refused(verify_inclusion, LEAVES[i], i, n, bad, r)
            assert refused(verify_inclusion, LEAVES[i] + b"!", i, n, proof, r)
            if LEAVES[i]:
                assert refused(verify_inclusion, flip(LEAVES[i], 0), i, n, proof, r)
            for pos in (0, 31):
                assert refused(verify_inclusion, LEAVES[i], i, n, proof, flip(r, pos, 7))


def test_inclusion_refuses_extra_or_missing_elements(full_tree):
    for n in range(1, 41):
        r = full_tree.root(n)
        for i in range(n):
            proof = full_tree.inclusion_proof(i, n)
            assert refused(verify_inclusion, LEAVES[i], i, n, proof + [r], r)
            assert refused(verify_inclusion, LEAVES[i], i, n, [r] + proof, r)
            assert refused(verify_inclusion, LEAVES[i], i, n, proof + [proof[-1] if proof else r], r)
            if proof:
                assert refused(verify_inclusion, LEAVES[i], i, n, proof[:-1], r)
                assert refused(verify_inclusion, LEAVES[i], i, n, proof[1:], r)


def test_inclusion_refuses_every_wrong_index(full_tree):
    for n in range(1, 41):
        r = full_tree.root(n)
        for i in range(n):
            proof = full_tree.inclusion_proof(i, n)
            for other in range(n + 3):
                if other != i:
                    assert refused(verify_inclusion, LEAVES[i], other, n, proof, r), (i, other, n)


def test_inclusion_refuses_a_wrong_size_whenever_the_path_shape_differs(full_tree):
    # The size is authenticated only through the path's shape (see the module docstring), so the exact
    # statement is: a wrong size is accepted if and only if the RFC path has the same shape at both sizes.
    for n in range(1, 41):
        r = full_tree.root(n)
        for i in range(n):
            proof = full_tree.inclusion_proof(i, n)
            for other in range(i + 1, 2 * n + 2):
                if other == n:
                    continue
                same_shape = ref_sides(i, other) == ref_sides(i, n)
                assert refused(verify_inclusion, LEAVES[i], i, other, proof, r) != same_shape, (i, n, other)


def test_inclusion_proof_of_one_size_fails_against_the_genuine_root_of_any_other_size(full_tree):
    for n in range(1, 41):
        for i in range(n):
            proof = full_tree.inclusion_proof(i, n)
            for other in range(i + 1, 45):
                if other != n:
                    assert refused(verify_inclusion, LEAVES[i], i, other, proof, full_tree.root(other))


def test_tree_size_is_bound_only_through_the_signed_header():
    # Leaf 0 has the same path shape in trees of 5 and 6 leaves, so the 5-leaf proof also "verifies" as a
    # 6-leaf claim against the 5-leaf root. Receipts are safe because tx_count and results_root come from
    # the same signed header; this test pins the behaviour so nobody relies on the proof alone for the size.
    proof = inclusion_proof(LEAVES[:5], 0)
    verify_inclusion(LEAVES[0], 0, 6, proof, ref_mth(0, 5))
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], 0, 6, proof, ref_mth(0, 6))


def test_consistency_refuses_any_flipped_byte_extra_or_missing_element_or_swapped_root(full_tree):
    for n in range(2, 41):
        r2 = full_tree.root(n)
        for m in range(1, n):
            r1 = full_tree.root(m)
            proof = full_tree.consistency_proof(m, n)
            for j in range(len(proof)):
                for pos in (0, 31):
                    bad = proof[:j] + [flip(proof[j], pos, 3)] + proof[j + 1:]
                    assert refused(verify_consistency, m, n, r1, r2, bad), (m, n, j)
            for pos in (0, 31):
                assert refused(verify_consistency, m, n, flip(r1, pos), r2, proof)
                assert refused(verify_consistency, m, n, r1, flip(r2, pos), proof)
            assert refused(verify_consistency, m, n, r2, r1, proof)
            assert refused(verify_consistency, m, n, r1, r2, proof + [r1])
            assert refused(verify_consistency, m, n, r1, r2, [r2] + proof)
            assert refused(verify_consistency, m, n, r1, r2, proof[:-1])
            assert refused(verify_consistency, m, n, r1, r2, proof[1:])


def test_consistency_proof_fails_against_the_genuine_roots_of_any_other_sizes(full_tree):
    roots = [full_tree.root(n) for n in range(27)]
    for n in range(2, 25):
        for m in range(1, n):
            proof = full_tree.consistency_proof(m, n)
            for m2 in range(1, 27):
                for n2 in range(m2 + 1, 27):
                    if (m2, n2) != (m, n):
                        assert refused(verify_consistency, m2, n2, roots[m2], roots[n2], proof), (m, n, m2, n2)


def test_consistency_edge_cases_empty_and_equal_sizes():
    r5 = ref_mth(0, 5)
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    verify_consistency(5, 5, r5, r5, [])
    assert refused(verify_consistency, 0, 5, r5, r5, [])  # an empty tree's root is sha256(b"")
    assert refused(verify_consistency, 5, 5, r5, ref_mth(0, 4), [])
    assert refused(verify_consistency, 5, 5, r5, r5, [r5])
    assert refused(verify_consistency, 0, 5, EMPTY_ROOT, r5, [r5])
    assert refused(verify_consistency, 1, 2, ref_mth(0, 1), ref_mth(0, 2), [])


# --- property tests over arbitrary leaves ------------------------------------------------------------------------

leaf_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=200)


@given(leaf_lists, st.data())
def test_any_tree_inclusion_proof_verifies_and_any_single_bit_flip_is_refused(leaves, data):
    n = len(leaves)
    i = data.draw(st.integers(0, n - 1), label="index")
    r = root(leaves)
    proof = inclusion_proof(leaves, i)
    verify_inclusion(leaves[i], i, n, proof, r)
    target = data.draw(st.integers(0, len(proof)), label="element (len = root)")
    pos, bit = data.draw(st.integers(0, 31), label="byte"), data.draw(st.integers(0, 7), label="bit")
    if target == len(proof):
        assert refused(verify_inclusion, leaves[i], i, n, proof, flip(r, pos, bit))
    else:
        bad = proof[:target] + [flip(proof[target], pos, bit)] + proof[target + 1:]
        assert refused(verify_inclusion, leaves[i], i, n, bad, r)


@given(leaf_lists, st.data())
def test_any_tree_consistency_proof_verifies_and_any_single_bit_flip_is_refused(leaves, data):
    n = len(leaves)
    m = data.draw(st.integers(1, n), label="old size")
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf)
    r1, r2 = root(leaves[:m]), tree.root()
    proof = tree.consistency_proof(m)
    assert proof == consistency_proof(leaves, m)
    verify_consistency(m, n, r1, r2, proof)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1), label="element")
        pos, bit = data.draw(st.integers(0, 31), label="byte"), data.draw(st.integers(0, 7), label="bit")
        assert refused(verify_consistency, m, n, r1, r2, proof[:j] + [flip(proof[j], pos, bit)] + proof[j + 1:])


@given(st.integers(1, 1 << 40), st.data())
def test_proof_length_helpers_match_the_rfc_recursions(size, data):
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    assert merkle.inclusion_proof_length(index, size) == len(ref_sides(index, size))

    def subproof_len(m, n, b):
        if m == n:
            return 0 if b else 1
        k = largest_power_of_two_below(n)
        return 1 + (subproof_len(m, k, b) if m <= k else subproof_len(m - k, n - k, False))

    assert merkle.consistency_proof_length(old, size) == (0 if old == 0 else subproof_len(old, size, True))


# --- argument validation -------------------------------------------------------------------------------------


def test_out_of_range_and_malformed_arguments_raise_proof_errors_naming_seen_and_expected(full_tree):
    tree = MerkleTree.from_leaves(LEAVES[:5])
    r = tree.root()
    proof = tree.inclusion_proof(1)
    cases = [
        (lambda: tree.inclusion_proof(5), "leaf index 5 is out of range for a tree of 5 leaves"),
        (lambda: tree.inclusion_proof(-1), "leaf index is -1"),
        (lambda: tree.inclusion_proof(True), "leaf index is bool; expected int"),
        (lambda: tree.consistency_proof(6), "old size 6 is larger than the tree size 5"),
        (lambda: tree.root(6), "tree size 6 is larger than the 5 leaves held"),
        (lambda: inclusion_proof([], 0), "out of range for a tree of 0 leaves"),
        (lambda: root([b"a", "b"]), "leaf 1 is str; expected bytes"),
        (lambda: root(b"abc"), "leaves is bytes; expected a sequence of bytes"),
        (lambda: tree.append(7), "leaf is int; expected bytes"),
        (lambda: tree.append_hash(b"short"), "leaf hash is 5 bytes; expected 32 bytes"),
        (lambda: node_hash(b"x", r), "left child hash is 1 bytes; expected 32 bytes"),
        (lambda: verify_inclusion(LEAVES[1], 1, 5, proof + [r], r), "has 4 hashes; expected exactly 3"),
        (lambda: verify_inclusion(LEAVES[1], 1, 5, proof[:2], r), "has 2 hashes; expected exactly 3"),
        (lambda: verify_inclusion(LEAVES[1], 5, 5, proof, r), "leaf index 5 is out of range"),
        (lambda: verify_inclusion(LEAVES[1], 0, 0, [], EMPTY_ROOT), "out of range for a tree of 0 leaves"),
        (lambda: verify_inclusion(LEAVES[1], 1, 5, proof, r[:31]), "root is 31 bytes; expected 32 bytes"),
        (lambda: verify_inclusion(LEAVES[1], 1, 5, [proof[0], proof[1][:-1], proof[2]], r),
         "element 1 is 31 bytes; expected 32 bytes"),
        (lambda: verify_inclusion(LEAVES[1], 1, 5, "abc", r), "is str; expected a list"),
        (lambda: verify_inclusion("leaf", 1, 5, proof, r), "leaf is str; expected bytes"),
        (lambda: verify_inclusion(LEAVES[2], 1, 5, proof, r), f"expected {r.hex()}"),
        (lambda: verify_consistency(6, 5, r, r, []), "old size 6 is larger than new size 5"),
        (lambda: verify_consistency(2, 5, r, r, []), "has 0 hashes; expected exactly"),
    ]
    for call, fragment in cases:
        with pytest.raises(ProofError) as info:
            call()
        assert fragment in str(info.value), (fragment, str(info.value))
        assert info.value.code == "bad_proof"
        assert isinstance(info.value, LedgerError)
