"""Sparse Merkle tree over the state: ``state_root`` and state proofs.

Theory of operation
-------------------
The state is a map ``state_key -> value``. Each key is placed in a binary tree of depth 256 at the path
``key_path(k) = H("carecoin/v1/state-key", k)`` (32 bytes, read as 256 bits, most significant bit of byte 0
first: bit 0 chooses the root's child, 0 = left, 1 = right). The tree commits to ``value_hash(v) =
H("carecoin/v1/state-value", v)``, never to the value itself.

Like the Diem/Aptos sparse Merkle tree, a subtree that holds exactly one leaf is represented by that leaf,
placed at the highest level where it is alone; a subtree that holds nothing is the constant ``EMPTY_ROOT``.
So an internal node always has at least two leaves below it, and the depth of a tree of n keys is about
log2(n), not 256. The shape is a function of the set of paths only, so the root does not depend on the
order or batching of updates.

Hashes (``H(tag, data) = sha256(tag.encode() + b"\\x00" + data)``, ``||`` is concatenation):

- empty subtree:  ``EMPTY_ROOT = 32 zero bytes`` (never stored; it is no node's hash in practice)
- leaf:           ``H("carecoin/v1/smt-leaf", path || value_hash)``            (path and value_hash: 32 bytes)
- internal node:  ``H("carecoin/v1/smt-node", left_hash || right_hash)``       (each 32 bytes, may be EMPTY_ROOT)

The root of the empty tree is ``EMPTY_ROOT``; the root of a one-key tree is that key's leaf hash.

Node store (content addressed: ``node_hash -> P(node)``; a node's bytes never change, so a tree is readable as
long as its nodes are stored: an archive store keeps every height's tree, a pruned one only recent heights'
trees, see ``ledger.pruning``):

- leaf node:      ``P([0, path: bin32, value_hash: bin32])``
- internal node:  ``P([1, left_hash: bin32, right_hash: bin32])``

Proof format: ``P([leaf, siblings])`` where

- ``leaf`` is ``[]`` when the walk from the root along the key's path ends in an empty subtree, or
  ``[path: bin32, value_hash: bin32]`` for the leaf where the walk ends (the key's own leaf, or, for an
  absent key, a different leaf whose path shares the first ``len(siblings)`` bits with the key's path);
- ``siblings`` is ``[bin32, ...]``, at most 256, **root first**: ``siblings[d]`` is the hash of the child of
  the depth-``d`` node on the path that the path does *not* enter.

Verification of ``(root, key, value, proof)``, with ``p = key_path(key)``:

1. ``len(siblings) <= 256``; every hash is 32 bytes.
2. ``value`` given (membership): ``leaf`` must be ``[p, value_hash(value)]``.
   ``value`` is None (absence): ``leaf`` is ``[]``, or ``leaf.path != p`` and ``leaf.path`` shares the
   first ``len(siblings)`` bits with ``p``.
3. ``cur = EMPTY_ROOT`` if ``leaf`` is ``[]`` else ``H(smt-leaf, leaf.path || leaf.value_hash)``; then for
   ``d = len(siblings)-1`` down to ``0``: ``cur = H(smt-node, siblings[d] || cur)`` if bit ``d`` of ``p`` is 1,
   else ``H(smt-node, cur || siblings[d])``.
4. ``cur == root``.

Batch update: changes are sorted by path and pushed down the tree together; each touched node is read
once, and each new node is hashed once per batch, however many keys pass through it.

Replaced nodes (``update_tracked``): every stored node the update walks through (the old nodes on the changed
keys' paths) is noted; those absent from the new nodes are the ones the new tree no longer references
(``replaced``), those present again are ``reused`` (a leaf pushed down or up, an unchanged value written again).
A tree holds each stored node at most once (an internal node's hash fixes its leaves, a leaf's hash its path), so
``new tree = old tree - replaced + new nodes``: the store journals ``replaced`` to prune old heights.
"""

from __future__ import annotations

import itertools
from hashlib import sha256 as _sha256
from bisect import bisect_left
from dataclasses import dataclass
from typing import Mapping, Protocol

from ledger import codec
from ledger.errors import DecodeError, ProofError, SchemaError, StorageError
from ledger.hashing import TAG_SMT_LEAF, TAG_SMT_NODE, TAG_STATE_KEY, TAG_STATE_VALUE, H

EMPTY_ROOT = b"\x00" * 32
MAX_DEPTH = 256

NODE_LEAF = 0
NODE_INTERNAL = 1

# Kinds of a (sub)tree returned by the update recursion; the collapse rule needs to know them.
_EMPTY, _LEAF, _INTERNAL, _UNKNOWN = 0, 1, 2, 3

DEFAULT_CACHE_NODES = 50_000


# The four tags' prefixes, precomputed: ``H(tag, data) == sha256(prefix + data)`` (hot in batch updates).
_KEY_PREFIX = TAG_STATE_KEY.encode() + b"\x00"
_VALUE_PREFIX = TAG_STATE_VALUE.encode() + b"\x00"
_LEAF_PREFIX = TAG_SMT_LEAF.encode() + b"\x00"
_NODE_PREFIX = TAG_SMT_NODE.encode() + b"\x00"
_PATHS: dict[bytes, bytes] = {}  # state key -> path: the same accounts' keys change block after block
_PATHS_MAX = 50_000


def key_path(state_key: bytes) -> bytes:
    """The 256-bit path of ``state_key`` in the tree: ``H("carecoin/v1/state-key", state_key)``."""
    path = _PATHS.get(state_key)
    if path is None:
        path = _sha256(_KEY_PREFIX + state_key).digest()
        if type(state_key) is bytes:
            if len(_PATHS) >= _PATHS_MAX:
                _PATHS.clear()
            _PATHS[state_key] = path
    return path


def value_hash(value: bytes) -> bytes:
    """The hash the tree commits to for ``value``: ``H("carecoin/v1/state-value", value)``."""
    return _sha256(_VALUE_PREFIX + value).digest()


def compute_leaf_hash(path: bytes, vhash: bytes) -> bytes:
    """Hash of a leaf node: ``H("carecoin/v1/smt-leaf", path || value_hash)``."""
    return _sha256(_LEAF_PREFIX + path + vhash).digest()


def compute_node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an internal node: ``H("carecoin/v1/smt-node", left || right)``."""
    return _sha256(_NODE_PREFIX + left + right).digest()


# Both node kinds are a 3-array of a fixint and two bin8-32 strings, so their canonical msgpack bytes have a
# fixed layout: 0x93, kind, 0xc4 0x20, 32 bytes, 0xc4 0x20, 32 bytes (70 bytes). Writing and checking that
# layout directly is the same canonical encoding as ``codec``, several times faster on the hot path.
_LEAF_HEAD = b"\x93\x00\xc4\x20"
_NODE_HEAD = b"\x93\x01\xc4\x20"
_BIN32 = b"\xc4\x20"
NODE_BYTES = 70


def encode_leaf(path: bytes, vhash: bytes) -> bytes:
    """Stored form of a leaf node: ``P([0, path, value_hash])``."""
    return _LEAF_HEAD + path + _BIN32 + vhash


def encode_internal(left: bytes, right: bytes) -> bytes:
    """Stored form of an internal node: ``P([1, left_hash, right_hash])``."""
    return _NODE_HEAD + left + _BIN32 + right


def decode_node(raw: bytes) -> tuple[int, bytes, bytes]:
    """Decode a stored node into ``(kind, a, b)``: ``(0, path, value_hash)`` or ``(1, left, right)``."""
    if len(raw) != NODE_BYTES or raw[36:38] != _BIN32:
        raise SchemaError(f"smt node: expected {NODE_BYTES} bytes P([0|1, bin32, bin32]), got {len(raw)} bytes")
    head = raw[:4]
    if head == _NODE_HEAD:
        return NODE_INTERNAL, raw[4:36], raw[38:]
    if head == _LEAF_HEAD:
        return NODE_LEAF, raw[4:36], raw[38:]
    raise SchemaError(f"smt node: starts {head.hex()}; expected {_LEAF_HEAD.hex()} or {_NODE_HEAD.hex()}")


class NodeReader(Protocol):
    """Anything that returns a stored node's bytes by hash (``MemoryNodes``, ``ledger.storage.Store``)."""

    def get_node(self, node_hash: bytes) -> bytes | None: ...


class MemoryNodes:
    """A dict-backed ``NodeReader`` (tests, benchmarks, a verifier's scratch space)."""

    def __init__(self, nodes: Mapping[bytes, bytes] | None = None) -> None:
        self._nodes: dict[bytes, bytes] = dict(nodes or {})

    def get_node(self, node_hash: bytes) -> bytes | None:
        """The stored node bytes for ``node_hash``, or None."""
        return self._nodes.get(node_hash)

    def put_many(self, nodes: Mapping[bytes, bytes]) -> None:
        """Store every ``node_hash -> node bytes`` of ``nodes``."""
        self._nodes.update(nodes)

    def __len__(self) -> int:
        return len(self._nodes)


class OverlayNodes:
    """A ``NodeReader`` that sees ``pending`` nodes (not yet persisted) over a ``base`` reader.

    Lets the state transition chain several updates before the block's one write batch.
    """

    def __init__(self, base: NodeReader, pending: Mapping[bytes, bytes] | None = None) -> None:
        self.base = base
        self.pending: dict[bytes, bytes] = dict(pending or {})

    def get_node(self, node_hash: bytes) -> bytes | None:
        """The node from ``pending`` if there, else from ``base``."""
        raw = self.pending.get(node_hash)
        return raw if raw is not None else self.base.get_node(node_hash)

    def put_many(self, nodes: Mapping[bytes, bytes]) -> None:
        """Add ``nodes`` to ``pending``."""
        self.pending.update(nodes)


@dataclass(frozen=True, slots=True)
class SmtProof:
    """A membership or absence proof: the leaf where the path walk ends (or None) and the siblings, root first."""

    leaf: tuple[bytes, bytes] | None  # (path, value_hash)
    siblings: tuple[bytes, ...]

    def encode(self) -> bytes:
        """Canonical bytes ``P([leaf, siblings])`` with ``leaf`` = ``[]`` or ``[path, value_hash]``."""
        leaf = [] if self.leaf is None else [self.leaf[0], self.leaf[1]]
        return codec.encode([leaf, list(self.siblings)])

    @classmethod
    def decode(cls, raw: bytes) -> "SmtProof":
        """Parse and shape-check proof bytes; raise ``DecodeError``/``SchemaError`` when malformed."""
        obj = codec.decode(raw)
        if not (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], list) and isinstance(obj[1], list)):
            raise SchemaError("smt proof: expected [leaf, siblings]")
        leaf_obj, sibs = obj
        if leaf_obj == []:
            leaf = None
        elif (len(leaf_obj) == 2 and all(isinstance(x, bytes) and len(x) == 32 for x in leaf_obj)):
            leaf = (leaf_obj[0], leaf_obj[1])
        else:
            raise SchemaError("smt proof: leaf must be [] or [path: bin32, value_hash: bin32]")
        if len(sibs) > MAX_DEPTH:
            raise SchemaError(f"smt proof: {len(sibs)} siblings; at most {MAX_DEPTH}")
        if not all(isinstance(s, bytes) and len(s) == 32 for s in sibs):
            raise SchemaError("smt proof: every sibling must be 32 bytes")
        return cls(leaf, tuple(sibs))


def _bit(path_int: int, depth: int) -> int:
    return (path_int >> (MAX_DEPTH - 1 - depth)) & 1


def _common_prefix_bits(a: bytes, b: bytes) -> int:
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return MAX_DEPTH - x.bit_length()


def verify_proof(root: bytes, state_key: bytes, value: bytes | None, proof: SmtProof) -> None:
    """Raise ``ProofError`` unless ``proof`` shows ``state_key -> value`` under ``root`` (value None: absent)."""
    if not (isinstance(root, bytes) and len(root) == 32):
        raise ProofError("root must be 32 bytes")
    sibs = proof.siblings
    if len(sibs) > MAX_DEPTH:
        raise ProofError(f"proof has {len(sibs)} siblings; at most {MAX_DEPTH}")
    if not all(isinstance(s, bytes) and len(s) == 32 for s in sibs):
        raise ProofError("every sibling must be 32 bytes")
    path = key_path(state_key)
    if proof.leaf is None:
        if value is not None:
            raise ProofError("proof ends in an empty subtree (key absent); expected the key present with a value")
        cur = EMPTY_ROOT
    else:
        lpath, lvh = proof.leaf
        if not (isinstance(lpath, bytes) and len(lpath) == 32 and isinstance(lvh, bytes) and len(lvh) == 32):
            raise ProofError("proof leaf must be (path: 32 bytes, value_hash: 32 bytes)")
        if value is not None:
            if lpath != path:
                raise ProofError(f"proof leaf is for path {lpath.hex()[:16]}…; expected the key's path {path.hex()[:16]}…")
            expected_vh = value_hash(value)
            if lvh != expected_vh:
                raise ProofError(f"proof leaf holds value hash {lvh.hex()[:16]}…; expected {expected_vh.hex()[:16]}…")
        else:
            if lpath == path:
                raise ProofError("proof leaf is the key's own leaf (key present); expected absence")
            shared = _common_prefix_bits(lpath, path)
            if shared < len(sibs):
                raise ProofError(f"proof leaf shares {shared} path bits with the key; "
                                 f"expected at least {len(sibs)} (its depth)")
        cur = compute_leaf_hash(lpath, lvh)
    pint = int.from_bytes(path, "big")
    for depth in range(len(sibs) - 1, -1, -1):
        if _bit(pint, depth):
            cur = compute_node_hash(sibs[depth], cur)
        else:
            cur = compute_node_hash(cur, sibs[depth])
    if cur != root:
        raise ProofError(f"proof leads to root {cur.hex()[:16]}…; expected {root.hex()[:16]}…")


# An item of a batch: (path as int, path bytes, value hash or None for delete).
_Item = tuple[int, bytes, "bytes | None"]


@dataclass(frozen=True, slots=True)
class SmtUpdate:
    """What ``update_tracked`` returns: the new root, the nodes to store and what the new tree stops referencing.

    ``nodes``: node_hash -> node bytes of every node written on the changed paths, children before parents
    (some may already be stored: ``reused``). ``replaced``: hashes of the old tree's nodes the new tree no longer
    references. ``reused``: hashes of ``nodes`` that the old tree already held (not new to the store).
    """

    root: bytes
    nodes: dict[bytes, bytes]
    replaced: tuple[bytes, ...]
    reused: frozenset[bytes]


class SparseMerkleTree:
    """Reads and batch-updates trees whose nodes live in a ``NodeReader``; holds no root of its own.

    Decoded nodes are cached by hash (nodes are immutable, so the cache is never stale).
    """

    def __init__(self, nodes: NodeReader, *, cache_nodes: int = DEFAULT_CACHE_NODES) -> None:
        self.nodes = nodes
        self._cache: dict[bytes, tuple[int, bytes, bytes]] = {}
        self._cache_max = cache_nodes

    # ---- reading -------------------------------------------------------------------------------------

    def _load(self, node_hash: bytes) -> tuple[int, bytes, bytes]:
        node = self._cache.get(node_hash)
        if node is not None:
            return node
        raw = self.nodes.get_node(node_hash)
        if raw is None:
            raise StorageError(f"smt node {node_hash.hex()[:16]}… is missing from the node store (the tree it "
                               f"belongs to is of a pruned height, or the store is damaged)")
        node = _DECODED.get(raw)  # the bytes a previous update wrote (or read): decoded already
        if node is None:
            try:
                node = decode_node(raw)
            except (DecodeError, SchemaError) as exc:
                raise StorageError(f"smt node {node_hash.hex()[:16]}… is corrupt: {exc.message}") from None
            _remember(raw, node)
        if self._cache_max:
            if len(self._cache) >= self._cache_max:
                # dicts keep insertion order: drop the oldest eighth (FIFO, cheap, no per-hit bookkeeping)
                for old in list(itertools.islice(self._cache, self._cache_max // 8 + 1)):
                    del self._cache[old]
            self._cache[node_hash] = node
        return node

    def _load_once(self, node_hash: bytes) -> tuple[int, bytes, bytes]:
        """``_load`` for a node one update visits once: not added to the tree's cache (the memo of stored bytes
        answers the next block)."""
        raw = self.nodes.get_node(node_hash)
        node = _DECODED.get(raw)  # type: ignore[arg-type]
        return node if node is not None else self._load(node_hash)

    def _walk(self, root: bytes, path: bytes) -> tuple[tuple[bytes, bytes] | None, list[bytes]]:
        """Follow ``path`` from ``root``; return the leaf where it ends (or None) and the siblings, root first."""
        _check_root(root)
        if root != EMPTY_ROOT and root not in self._cache and self.nodes.get_node(root) is None:
            raise StorageError(f"state root {root.hex()[:16]}… is missing from the node store: the tree of that "
                               f"height was pruned (a pruned node keeps only its recent heights' trees) or never "
                               f"stored")
        pint = int.from_bytes(path, "big")
        siblings: list[bytes] = []
        h = root
        depth = 0
        while h != EMPTY_ROOT:
            kind, a, b = self._load(h)
            if kind == NODE_LEAF:
                return (a, b), siblings
            if depth >= MAX_DEPTH:
                raise StorageError(f"smt walk deeper than {MAX_DEPTH} levels under root {root.hex()[:16]}…")
            if _bit(pint, depth):
                siblings.append(a)
                h = b
            else:
                siblings.append(b)
                h = a
            depth += 1
        return None, siblings

    def get(self, root: bytes, state_key: bytes) -> bytes | None:
        """The value hash stored for ``state_key`` under ``root``, or None if the key is absent."""
        path = key_path(state_key)
        leaf, _ = self._walk(root, path)
        if leaf is not None and leaf[0] == path:
            return leaf[1]
        return None

    def prove(self, root: bytes, state_key: bytes) -> SmtProof:
        """A proof of ``state_key``'s value hash under ``root``, or of its absence."""
        leaf, siblings = self._walk(root, key_path(state_key))
        return SmtProof(leaf, tuple(siblings))

    # ---- writing -------------------------------------------------------------------------------------

    def update(self, root: bytes, changes: Mapping[bytes, bytes | None]) -> tuple[bytes, dict[bytes, bytes]]:
        """Apply ``changes`` (state_key -> value, None deletes) to the tree at ``root``.

        Returns ``(new_root, new_nodes)``; the caller persists ``new_nodes`` (node_hash -> node bytes).
        """
        done = self.update_tracked(root, changes)
        return done.root, done.nodes

    def update_tracked(self, root: bytes, changes: Mapping[bytes, bytes | None]) -> SmtUpdate:
        """``update``, also reporting the old nodes the new tree no longer references (``SmtUpdate``)."""
        _check_root(root)
        if not changes:
            return SmtUpdate(root, {}, (), frozenset())
        items: list[_Item] = []
        append, from_bytes, paths = items.append, int.from_bytes, _PATHS
        for key, value in changes.items():
            if not isinstance(key, bytes):
                raise SchemaError(f"state key must be bytes, got {type(key).__name__}")
            path = paths.get(key) or key_path(key)
            if value is None:
                append((from_bytes(path, "big"), path, None))
            elif isinstance(value, bytes):
                append((from_bytes(path, "big"), path, _sha256(_VALUE_PREFIX + value).digest()))
            else:
                raise SchemaError(f"state value must be bytes or None, got {type(value).__name__}")
        items.sort(key=_first)
        new_nodes: dict[bytes, bytes] = {}
        visited: list[bytes] = []
        if root == EMPTY_ROOT:
            new_root, _ = _build(0, [it for it in items if it[2] is not None], new_nodes)
        else:
            ints = [it[0] for it in items]
            new_root, _ = self._update(root, 0, items, ints, 0, len(items), new_nodes, visited)
        replaced = tuple([h for h in visited if h not in new_nodes])
        reused = frozenset([h for h in visited if h in new_nodes]) if len(replaced) < len(visited) else frozenset()
        return SmtUpdate(new_root, new_nodes, replaced, reused)

    def _kind(self, node_hash: bytes) -> int:
        if node_hash == EMPTY_ROOT:
            return _EMPTY
        return _LEAF if self._load(node_hash)[0] == NODE_LEAF else _INTERNAL

    def _update(self, h: bytes, depth: int, items: list[_Item], ints: list[int], lo: int, hi: int,
                out: dict[bytes, bytes], visited: list[bytes]) -> tuple[bytes, int]:
        """Apply ``items[lo:hi]`` (sorted, sharing ``depth`` leading bits; ``ints`` = their paths as ints)
        to the non-empty subtree ``h``; ``h`` goes to ``visited`` (the old nodes the update walked through)."""
        kind, a, b = self._cache.get(h) or self._load_once(h)
        visited.append(h)
        if kind == NODE_LEAF:
            part = items[lo:hi]
            merged = [it for it in part if it[2] is not None]
            if not any(it[1] == a for it in part):
                lint = int.from_bytes(a, "big")
                merged.insert(bisect_left(merged, lint, key=_first), (lint, a, b))
            return _build(depth, merged, out)
        left, right = a, b
        shift = MAX_DEPTH - depth
        split = bisect_left(ints, ((ints[lo] >> shift) << shift) | (1 << (shift - 1)), lo, hi)
        lkind = rkind = _UNKNOWN
        if split > lo:
            if left == EMPTY_ROOT:
                left, lkind = _build(depth + 1, [it for it in items[lo:split] if it[2] is not None], out)
            else:
                left, lkind = self._update(left, depth + 1, items, ints, lo, split, out, visited)
        if split < hi:
            if right == EMPTY_ROOT:
                right, rkind = _build(depth + 1, [it for it in items[split:hi] if it[2] is not None], out)
            else:
                right, rkind = self._update(right, depth + 1, items, ints, split, hi, out, visited)
        # An untouched child's kind matters only if the other side became empty (a lone leaf moves up).
        if lkind == _UNKNOWN:
            lkind = _EMPTY if left == EMPTY_ROOT else (self._kind(left) if rkind == _EMPTY else _INTERNAL)
        if rkind == _UNKNOWN:
            rkind = _EMPTY if right == EMPTY_ROOT else (self._kind(right) if lkind == _EMPTY else _INTERNAL)
        # ``_join``, inline (once per touched node: the hot line of a block's update)
        if lkind == _EMPTY and rkind != _INTERNAL:
            return right, rkind
        if rkind == _EMPTY and lkind != _INTERNAL:
            return left, lkind
        return _new_internal(left, right, out), _INTERNAL


def _first(item: _Item) -> int:
    return item[0]


def _build(depth: int, items: list[_Item], out: dict[bytes, bytes]) -> tuple[bytes, int]:
    """Build the subtree at ``depth`` holding exactly ``items`` (sorted, no deletes)."""
    if not items:
        return EMPTY_ROOT, _EMPTY
    if len(items) == 1:
        _, path, vh = items[0]
        h = _sha256(_LEAF_PREFIX + path + vh).digest()
        raw = out[h] = _LEAF_HEAD + path + _BIN32 + vh
        _remember(raw, (NODE_LEAF, path, vh))
        return h, _LEAF
    if depth >= MAX_DEPTH:
        raise StorageError("two distinct state keys share a 256-bit path")
    split = _split(items, depth)
    left, lkind = _build(depth + 1, items[:split], out)
    right, rkind = _build(depth + 1, items[split:], out)
    return _join(left, lkind, right, rkind, out)


def _split(items: list[_Item], depth: int) -> int:
    """Index of the first item whose bit ``depth`` is 1 (items are sorted and share ``depth`` leading bits)."""
    shift = MAX_DEPTH - depth
    threshold = ((items[0][0] >> shift) << shift) | (1 << (shift - 1))
    return bisect_left(items, threshold, key=_first)


def _join(left: bytes, lkind: int, right: bytes, rkind: int, out: dict[bytes, bytes]) -> tuple[bytes, int]:
    """The node over two children, collapsing a lone leaf (or nothing) upward."""
    if lkind == _EMPTY and rkind != _INTERNAL:
        return right, rkind
    if rkind == _EMPTY and lkind != _INTERNAL:
        return left, lkind
    return _new_internal(left, right, out), _INTERNAL


def _new_internal(left: bytes, right: bytes, out: dict[bytes, bytes]) -> bytes:
    """Hash and encode the internal node over ``left`` and ``right``, add it to ``out``; return its hash."""
    h = compute_node_hash(left, right)
    raw = out[h] = _NODE_HEAD + left + _BIN32 + right
    if len(_DECODED) >= _DECODED_MAX:
        _DECODED.clear()
    _DECODED[raw] = (NODE_INTERNAL, left, right)
    return h


# Stored node bytes -> decoded node, shared by every tree and thread: a pure function of the bytes (corrupt bytes
# are never in it, they fail ``decode_node``), seeded by the updates that write nodes, so the next block reads
# the nodes this one wrote without decoding them. Bounded: a full memo starts afresh.
_DECODED: dict[bytes, tuple[int, bytes, bytes]] = {}
_DECODED_MAX = 65_536


def _remember(raw: bytes, node: tuple[int, bytes, bytes]) -> None:
    if len(_DECODED) >= _DECODED_MAX:
        _DECODED.clear()
    _DECODED[raw] = node


def _check_root(root: bytes) -> None:
    if not (isinstance(root, bytes) and len(root) == 32):
        raise SchemaError(f"smt root must be 32 bytes, got {root!r:.40}")


def compute_root(state: Mapping[bytes, bytes]) -> bytes:
    """The state root of a whole ``state_key -> value`` map, built from nothing (checks, tests, recovery)."""
    root, _ = SparseMerkleTree(MemoryNodes(), cache_nodes=0).update(EMPTY_ROOT, dict(state))
    return root
