"""RFC 6962 / RFC 9162 Merkle trees: roots, inclusion proofs and consistency proofs.

Theory of operation
-------------------
A tree over n leaves (raw bytes, applied in order) has the hash MTH defined by RFC 9162 §2.1.1:
``MTH([]) = sha256(b"")``, ``MTH([d]) = sha256(0x00 || d)`` and, for n > 1 with k the largest power of two
below n, ``MTH(D) = sha256(0x01 || MTH(D[:k]) || MTH(D[k:]))``. The last leaf is never duplicated.

Every subtree the RFC's recursions ever touch is either *perfect* (2^h leaves starting at a multiple of
2^h) or a *right-edge* subtree ``D[start:n]`` whose start is a multiple of 2^ceil(log2(n - start)). A
right-edge subtree splits, from the left, into perfect pieces (one per set bit of its size) and its hash is
those pieces folded right to left. So it is enough to keep ``levels[h]``: the hashes of the perfect subtrees
of 2^h leaves, in order. Appending a leaf adds at most one hash per level (amortised O(1)); the root, any
subtree hash, and every proof element are O(log n) lookups and folds over those cached levels.

Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) literally, after first
refusing a proof whose length is not exactly the one the RFC's generation algorithm gives for the sizes:
a longer or shorter proof is an error even where the fold would happen to succeed.

What a proof does *not* bind: an inclusion proof authenticates the leaf against a root, and the tree size
only through the shape of the path. Two sizes with the same path shape accept the same proof, so callers
must take the size from the same signed object as the root (a block header's ``tx_count``).

Every error raised here is a ``ProofError`` (code ``bad_proof``) naming what was seen and what was expected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


# --- hashing -------------------------------------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    """Return ``sha256(0x00 || leaf)``, the RFC 6962 hash of one raw leaf."""
    _check_bytes(leaf, "leaf")
    return _sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``sha256(0x01 || left || right)``, the RFC 6962 hash of an interior node."""
    _check_hash(left, "left child hash")
    _check_hash(right, "right child hash")
    return _sha256(_NODE_PREFIX + left + right).digest()


def _check_bytes(value: object, what: str) -> None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ProofError(f"{what} is {type(value).__name__}; expected bytes")


def _check_hash(value: object, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        seen = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise ProofError(f"{what} is {seen}; expected {HASH_SIZE} bytes")


def _check_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProofError(f"{what} is {type(value).__name__}; expected int")
    if value < 0:
        raise ProofError(f"{what} is {value}; expected a non-negative integer")
    return value


def _hash_leaves(leaves: Sequence[bytes]) -> list[bytes]:
    """Leaf hashes of a whole list, one pass; names the first non-bytes leaf if there is one."""
    try:
        return [_sha256(_LEAF_PREFIX + leaf).digest() for leaf in leaves]
    except TypeError:
        for i, leaf in enumerate(leaves):
            if not isinstance(leaf, (bytes, bytearray, memoryview)):
                raise ProofError(f"leaf {i} is {type(leaf).__name__}; expected bytes") from None
        raise


def _pair_up(level: list[bytes]) -> list[bytes]:
    """Hash adjacent pairs of a level; an odd last hash is dropped (the caller decides what to do with it)."""
    it = iter(level)
    return [_sha256(_NODE_PREFIX + a + b).digest() for a, b in zip(it, it)]


# --- whole-list functions --------------------------------------------------------------------------------


def root(leaves: Sequence[bytes]) -> bytes:
    """Return the RFC 6962 root (MTH) of the raw leaves; ``sha256(b"")`` when there are none."""
    if not isinstance(leaves, Sequence) or isinstance(leaves, (bytes, str)):
        raise ProofError(f"leaves is {type(leaves).__name__}; expected a sequence of bytes")
    level = _hash_leaves(leaves)
    if not level:
        return EMPTY_ROOT
    # Carrying an odd last hash up a level unchanged builds exactly the RFC tree: the left part of every
    # split is a perfect subtree, so the lone node on the right is the (possibly partial) right edge.
    while len(level) > 1:
        carry = level[-1] if len(level) & 1 else None
        level = _pair_up(level)
        if carry is not None:
            level.append(carry)
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the RFC 9162 §2.1.3.1 audit path of leaf ``index`` in the tree over ``leaves``."""
    return MerkleTree.from_leaves(leaves).inclusion_proof(index)


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the RFC 9162 §2.1.4.1 proof that the first ``old_size`` leaves are a prefix of ``leaves``."""
    return MerkleTree.from_leaves(leaves).consistency_proof(old_size)


# --- incremental tree ------------------------------------------------------------------------------------


class MerkleTree:
    """An append-only RFC 6962 tree that caches every perfect subtree hash (see the module docstring)."""

    __slots__ = ("_levels", "_size")

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]
        self._size = 0

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> "MerkleTree":
        """Build a tree over raw leaves in one pass (faster than appending them one by one)."""
        if not isinstance(leaves, Sequence) or isinstance(leaves, (bytes, str)):
            raise ProofError(f"leaves is {type(leaves).__name__}; expected a sequence of bytes")
        tree = cls()
        level = _hash_leaves(leaves)
        tree._size = len(level)
        tree._levels = [level]
        while len(level) > 1:
            level = _pair_up(level)
            tree._levels.append(level)
        return tree

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> int:
        """Append one raw leaf; return its index."""
        _check_bytes(leaf, "leaf")
        self.append_hash(_sha256(_LEAF_PREFIX + leaf).digest())
        return self._size - 1

    def append_hash(self, leaf_digest: bytes) -> None:
        """Append a leaf given as its ``leaf_hash`` (for callers that already hashed it)."""
        _check_hash(leaf_digest, "leaf hash")
        levels = self._levels
        levels[0].append(leaf_digest)
        self._size += 1
        h = 0
        # A level that just became even completed a perfect subtree one level up.
        while not len(levels[h]) & 1:
            node = _sha256(_NODE_PREFIX + levels[h][-2] + levels[h][-1]).digest()
            if h + 1 == len(levels):
                levels.append([])
            levels[h + 1].append(node)
            h += 1

    def leaf_hash_at(self, index: int) -> bytes:
        """Return the stored leaf hash at ``index``."""
        self._check_index(index, self._size)
        return self._levels[0][index]

    def root(self, tree_size: int | None = None) -> bytes:
        """Return the root of the first ``tree_size`` leaves (default: all); ``sha256(b"")`` when empty."""
        n = self._checked_size(tree_size)
        return self._subtree(0, n) if n else EMPTY_ROOT

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """Return the RFC 9162 §2.1.3.1 audit path of leaf ``index`` in the tree of ``tree_size`` leaves."""
        n = self._checked_size(tree_size)
        self._check_index(index, n)
        # PATH(m, D[start:start+n]) descends towards the leaf; each step appends the other side's hash,
        # so the collected hashes are in root-to-leaf order and the proof is their reverse.
        path: list[bytes] = []
        start, m = 0, index
        while n > 1:
            k = 1 << ((n - 1).bit_length() - 1)
            if m < k:
                path.append(self._subtree(start + k, n - k))
                n = k
            else:
                path.append(self._subtree(start, k))
                start, m, n = start + k, m - k, n - k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, tree_size: int | None = None) -> list[bytes]:
        """Return the RFC 9162 §2.1.4.1 proof that the first ``old_size`` leaves are a prefix of the tree."""
        n = self._checked_size(tree_size)
        m = _check_int(old_size, "old size")
        if m > n:
            raise ProofError(f"old size {m} is larger than the tree size {n}; expected old size <= {n}")
        if m == 0 or m == n:
            return []
        # SUBPROOF(m, D[start:start+n], b), unrolled; hashes collected top-down, returned bottom-up.
        path: list[bytes] = []
        start, whole = 0, True
        while m != n:
            k = 1 << ((n - 1).bit_length() - 1)
            if m <= k:
                path.append(self._subtree(start + k, n - k))
                n = k
            else:
                path.append(self._subtree(start, k))
                start, m, n, whole = start + k, m - k, n - k, False
        if not whole:
            path.append(self._subtree(start, n))
        path.reverse()
        return path

    def _subtree(self, start: int, count: int) -> bytes:
        """MTH(D[start:start+count]) for a perfect or right-edge subtree (the only kinds the RFC uses)."""
        levels = self._levels
        h = (count - 1).bit_length()
        if count == 1 << h:
            return levels[h][start >> h]
        pieces = []
        while count:
            h = count.bit_length() - 1
            pieces.append(levels[h][start >> h])
            start += 1 << h
            count -= 1 << h
        acc = pieces.pop()
        while pieces:
            acc = _sha256(_NODE_PREFIX + pieces.pop() + acc).digest()
        return acc

    def _checked_size(self, tree_size: int | None) -> int:
        if tree_size is None:
            return self._size
        n = _check_int(tree_size, "tree size")
        if n > self._size:
            raise ProofError(f"tree size {n} is larger than the {self._size} leaves held; expected <= {self._size}")
        return n

    @staticmethod
    def _check_index(index: int, n: int) -> None:
        _check_int(index, "leaf index")
        if index >= n:
            raise ProofError(f"leaf index {index} is out of range for a tree of {n} leaves; "
                             f"expected 0 <= index < {n}")


# --- verification ------------------------------------------------------------------------------------------


def inclusion_proof_length(index: int, size: int) -> int:
    """Return the exact audit-path length RFC 9162 gives for leaf ``index`` in a tree of ``size`` leaves."""
    length = 0
    while size > 1:
        k = 1 << ((size - 1).bit_length() - 1)
        if index < k:
            size = k
        else:
            index, size = index - k, size - k
        length += 1
    return length


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """Return the exact consistency-proof length RFC 9162 gives for ``old_size`` -> ``new_size``."""
    m, n = old_size, new_size
    if m == 0 or m >= n:
        return 0
    length, whole = 0, True
    while m != n:
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            n = k
        else:
            m, n, whole = m - k, n - k, False
        length += 1
    return length + (0 if whole else 1)


def _check_proof(proof: object, expected_len: int, what: str) -> list[bytes]:
    if not isinstance(proof, (list, tuple)):
        raise ProofError(f"{what} is {type(proof).__name__}; expected a list of {HASH_SIZE}-byte hashes")
    if len(proof) != expected_len:
        raise ProofError(f"{what} has {len(proof)} hashes; expected exactly {expected_len}")
    for i, p in enumerate(proof):
        _check_hash(p, f"{what} element {i}")
    return list(proof)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that raw ``leaf`` sits at ``index`` of the ``size``-leaf tree with ``root``; raise ProofError if not."""
    _check_bytes(leaf, "leaf")
    index = _check_int(index, "leaf index")
    size = _check_int(size, "tree size")
    _check_hash(root, "root")
    if index >= size:
        raise ProofError(f"leaf index {index} is out of range for a tree of {size} leaves; "
                         f"expected 0 <= index < {size}")
    path = _check_proof(proof, inclusion_proof_length(index, size), f"inclusion proof for leaf {index} of {size}")
    # RFC 9162 §2.1.3.2, step by step.
    fn, sn = index, size - 1
    r = _sha256(_LEAF_PREFIX + leaf).digest()
    for p in path:
        if sn == 0:  # unreachable after the length check; kept so this loop is the RFC's, verbatim
            raise ProofError(f"inclusion proof for leaf {index} of {size} is too long")
        if fn & 1 or fn == sn:
            r = _sha256(_NODE_PREFIX + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(_NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:  # likewise unreachable after the length check; the RFC's own final test
        raise ProofError(f"inclusion proof for leaf {index} of {size} is too short")
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} of {size} leads to root {r.hex()}; "
                         f"expected {root.hex()}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check that the ``old_size`` tree with ``old_root`` is a prefix of the ``new_size`` tree; raise if not."""
    m = _check_int(old_size, "old size")
    n = _check_int(new_size, "new size")
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    if m > n:
        raise ProofError(f"old size {m} is larger than new size {n}; expected old size <= new size")
    what = f"consistency proof from {m} to {n} leaves"
    path = _check_proof(proof, consistency_proof_length(m, n), what)
    if m == 0:
        # Every tree extends the empty tree; the only thing to check is that the old root is the empty root.
        if old_root != EMPTY_ROOT:
            raise ProofError(f"old root of an empty tree is {old_root.hex()}; expected {EMPTY_ROOT.hex()}")
        return
    if m == n:
        if old_root != new_root:
            raise ProofError(f"{what}: roots of equal sizes differ: old {old_root.hex()}, new {new_root.hex()}")
        return
    # RFC 9162 §2.1.4.2, step by step.
    if m & (m - 1) == 0:
        path.insert(0, old_root)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"{what} is too long")
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE_PREFIX + c + fr).digest()
            sr = _sha256(_NODE_PREFIX + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"{what} is too short")
    if fr != old_root:
        raise ProofError(f"{what} leads to old root {fr.hex()}; expected {old_root.hex()}")
    if sr != new_root:
        raise ProofError(f"{what} leads to new root {sr.hex()}; expected {new_root.hex()}")
