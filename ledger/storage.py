"""The node's store: one LevelDB database (through plyvel) per node.

Theory of operation
-------------------
Everything a committed block changes is written in **one** ``WriteBatch(sync=True)``: the block, its header,
the hash index, the commit certificate, the results, the tx index, the state writes, the new sparse-Merkle
nodes and the head marker. LevelDB applies a batch atomically and the sync makes it durable before
``commit_block`` returns, so after a crash the store holds the previous block or the new one, never half of
it. The head marker is the last complete block; readers trust nothing above it.

This is the only module in the project that imports plyvel.

Key layout (one prefix byte, then the fields; heights are 8-byte big-endian so iteration is ordered):

====================================  ========================================================
key                                   value
====================================  ========================================================
``b"V"``                              format version, ``P([2])`` (written at creation; a format 1 store is
                                      opened, and its first pruning commit writes 2: ``FORMAT_VERSION``)
``b"h"``                              head marker ``P([height, block_hash, state_root])``
``b"B" + height8``                    block ``P([header, [tx, ...]])``
``b"D" + height8``                    header ``P(header)`` (so reading a header skips the txs)
``b"K" + block_hash32``               ``height8`` (block-by-hash index)
``b"C" + height8``                    certificate ``P([[validator, signature], ...])``
``b"R" + height8 + index4``           result ``P([tx_hash, status, reason, events])``
``b"T" + tx_hash32``                  ``P([height, index])`` (tx index)
``b"S" + state_key``                  state value (current state only; history is in the SMT)
``b"N" + node_hash32``                sparse-Merkle node (see ``ledger.smt``)
``b"M" + name (utf-8)``               node metadata (``put_meta``/``get_meta``)
``b"W"``                              consensus write-ahead record (``put_wal``/``get_wal``)
``b"F" + height8 + index4``           a failed tx's rule message, utf-8 (node-local, never hashed; only the
                                      last ``DETAIL_BLOCKS`` blocks are kept: ``get_detail``)
``b"J" + height8``                    pruning journal: the 32-byte hashes of the nodes block ``height`` replaced
                                      (its tree no longer references them), still stored, concatenated
``b"A" + node_hash32``                ``height8``: the latest height that wrote this stored node again while its
                                      parent's tree did not hold it (a revival; rare: values going A -> B -> A;
                                      kept while a pending journal is below it, mirrored in memory)
``b"P" + node_hash32``                format 1 only (``height8``, the node's journal): never written now; a store
                                      upgraded from format 1 deletes them with their journals
====================================  ========================================================

State pruning (``state_history_blocks = K``; None: archive, every height's tree kept): ``commit_block`` journals
the nodes each block's tree stops referencing (``J`` rows; ``A`` markers for nodes written again) and deletes the
nodes of heights older than ``head - K`` in the block's own batch; the theory of operation is ``ledger.pruning``'s.

``paranoid_checks`` is on, yet LevelDB reads a torn tail of its newest ``.log`` as the end of the log and opens
without an error, short of the last writes (committed blocks, the WAL record). The node therefore keeps the
WAL record also in its own checksummed file beside this store (``node.wal_file``) and takes the newer one.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet as Set, Iterator, Mapping, Sequence

import plyvel

from ledger import codec, pruning
from ledger.block import Block, CommitSeal, Header, decode_certificate, encode_certificate
from ledger.errors import DecodeError, LedgerError, NotFound, SchemaError, StorageError
from ledger.results import TxResult

# 2: pruning marks revived nodes (``A``) instead of format 1's per-node journal index (``P``). A format 1 store
# opens (its journals are valid as they are) and its first commit that may journal or mark (pruned, or journals
# pending) writes 2, which format 1 code then refuses: it would not see the markers and could prune a revived
# node. An archive store without journals is the same in both formats and stays 1.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
_READABLE = {codec.encode([v]): v for v in READABLE_FORMATS}
# SMT nodes are read by random hash: a larger block cache and a bloom filter keep point reads off the disk.
BLOCK_CACHE_BYTES = 32 * 1024 * 1024
BLOOM_BITS_PER_KEY = 10
NODE_CACHE_MAX = 100_000  # SMT node bytes kept in memory by hash (~100 bytes each)
STATE_CACHE_MAX = 100_000  # current-state values kept in memory by key (a mirror of the "S" rows)

P_VERSION = b"V"
P_HEAD = b"h"
P_BLOCK = b"B"
P_HEADER = b"D"
P_HASH = b"K"
P_CERT = b"C"
P_RESULT = b"R"
P_TX = b"T"
P_STATE = b"S"
P_NODE = pruning.P_NODE  # b"N"
P_META = b"M"
P_WAL = b"W"
P_DETAIL = b"F"
P_JOURNAL = pruning.P_JOURNAL
P_REVIVED = pruning.P_REVIVED
P_LEGACY_PENDING = pruning.P_LEGACY_PENDING
MAX_STATE_HISTORY_BLOCKS = 10_000_000
DETAIL_BLOCKS = 100_000  # failed-tx messages of this many recent blocks are kept
MAX_DETAIL_BYTES = 1024


_MISSING = object()


def _h8(height: int) -> bytes:
    return height.to_bytes(8, "big")


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last complete block: its height, hash and state root."""

    height: int
    block_hash: bytes
    state_root: bytes

    def encode(self) -> bytes:
        return codec.encode([self.height, self.block_hash, self.state_root])

    @classmethod
    def decode(cls, raw: bytes) -> "ChainHead":
        obj = codec.decode(raw)
        if not (isinstance(obj, list) and len(obj) == 3 and isinstance(obj[0], int) and obj[0] >= 0
                and isinstance(obj[1], bytes) and len(obj[1]) == 32
                and isinstance(obj[2], bytes) and len(obj[2]) == 32):
            raise SchemaError("head marker: expected [height, block_hash: bin32, state_root: bin32]")
        return cls(obj[0], obj[1], obj[2])


class Store:
    """A node's LevelDB store: blocks, certificates, results, tx index, state, SMT nodes, metadata, WAL."""

    def __init__(self, db: "plyvel.DB", path: Path, state_history_blocks: int | None = None) -> None:
        self._db = db
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        self._history = state_history_blocks  # K: trees of heights head-K..head kept; None: archive
        # Sparse-Merkle nodes are content-addressed (immutable): recent ones are served from memory, so a
        # block's SMT update reads its paths without a LevelDB lookup each (new nodes enter at commit). A
        # pruned node leaves the cache in its commit; ``_node_gen`` moves then, and a reader fills a miss only
        # when no node was pruned since its LevelDB read, so the cache never holds a deleted node.
        self._node_cache: dict[bytes, bytes] = {}
        self._node_gen = 0
        self._node_lock = threading.Lock()  # the generation check and a miss's fill, against a commit's pruning
        # Current-state values read or written recently (None = known absent). Only ``commit_block`` changes
        # state: it updates the mirror under the lock and bumps ``_state_gen``, and a reader fills a miss
        # only when no commit ran since its LevelDB read, so the mirror never holds a stale value.
        self._state_cache: dict[bytes, bytes | None] = {}
        self._state_gen = 0
        self._state_lock = threading.Lock()  # held only for the mirror's bookkeeping, never across disk I/O
        raw = db.get(P_HEAD)
        try:
            self._head = ChainHead.decode(raw) if raw is not None else None
        except LedgerError as exc:
            db.close()
            raise StorageError(f"data dir {path} is corrupt: head marker unreadable ({exc.message})") from None
        self._journals: list[int] = []  # heights with a pruning journal, ascending
        for key in db.iterator(prefix=P_JOURNAL, include_value=False):
            if len(key) != 9:
                db.close()
                raise StorageError(f"data dir {path} is corrupt: pruning journal key {key.hex()} has {len(key)} "
                                   f"bytes; expected 9 (J + height8)")
            self._journals.append(int.from_bytes(key[1:], "big"))
        try:
            self._revivals = pruning.Revivals.load(db.iterator(prefix=P_REVIVED))
        except StorageError as exc:
            db.close()
            raise StorageError(f"data dir {path} is corrupt: {exc.message}") from None
        self._format = _READABLE.get(db.get(P_VERSION), FORMAT_VERSION)
        # Format 1 kept a ``P`` row per journaled node: the journals pending now may have them (deleted with
        # each journal; one seek tells whether any are left).
        with db.iterator(prefix=P_LEGACY_PENDING, include_value=False) as rows:
            legacy = next(rows, None) is not None
        self._legacy_until = self._journals[-1] if legacy and self._journals else -1

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, state_history_blocks: int | None = None) -> "Store":
        """Open (or create) the store in directory ``path``; ``StorageError`` if it is locked or corrupt.

        ``state_history_blocks``: K, keep the sparse-Merkle trees of heights ``head - K .. head`` and delete
        older ones' nodes as blocks commit; None (the default) is archive: every tree is kept (``ledger.pruning``).
        Opening changes nothing on disk: only ``commit_block`` journals and prunes.
        """
        if state_history_blocks is not None and (
                isinstance(state_history_blocks, bool) or not isinstance(state_history_blocks, int)
                or not 1 <= state_history_blocks <= MAX_STATE_HISTORY_BLOCKS):
            raise StorageError(f"state_history_blocks is {state_history_blocks!r}; expected None (archive) or an "
                               f"integer 1..{MAX_STATE_HISTORY_BLOCKS}")
        path = Path(path)
        try:
            if create:
                path.mkdir(parents=True, exist_ok=True)
            db = plyvel.DB(str(path), create_if_missing=create, paranoid_checks=True,
                           lru_cache_size=BLOCK_CACHE_BYTES, bloom_filter_bits=BLOOM_BITS_PER_KEY)
        except plyvel.IOError as exc:
            text = _text(exc)
            if "lock" in text.lower():
                raise StorageError(f"data dir {path} is in use by another node (LevelDB lock held): {text}") from None
            raise StorageError(f"data dir {path} cannot be opened: {text}") from None
        except plyvel.CorruptionError as exc:
            raise StorageError(f"data dir {path} is corrupt: {_text(exc)}") from None
        except plyvel.Error as exc:
            text = _text(exc)
            if "does not exist" in text:
                raise StorageError(f"data dir {path} holds no store (and create=False)") from None
            raise StorageError(f"data dir {path} cannot be opened: {text}") from None
        except OSError as exc:
            raise StorageError(f"data dir {path} cannot be created: {exc}") from None
        version = db.get(P_VERSION)
        if version is None:
            if db.get(P_HEAD) is not None:
                db.close()
                raise StorageError(f"data dir {path} is corrupt: blocks present but no format version")
            db.put(P_VERSION, codec.encode([FORMAT_VERSION]), sync=True)
        elif version not in _READABLE:
            db.close()
            raise StorageError(f"data dir {path} has store format {version.hex()}; expected one of "
                               f"{', '.join(v.hex() for v in _READABLE)} (versions "
                               f"{', '.join(map(str, READABLE_FORMATS))})")
        return cls(db, path, state_history_blocks)

    def close(self) -> None:
        """Close the database (idempotent); the directory lock is released."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def state_history_blocks(self) -> int | None:
        """K of a pruned store (trees of heights ``head - K .. head`` kept), None for an archive store."""
        return self._history

    def journal_heights(self) -> tuple[int, ...]:
        """Heights whose pruning journal is pending (ascending): their replaced nodes are still stored."""
        return tuple(self._journals)

    # ---- chain ---------------------------------------------------------------------------------------

    def head(self) -> ChainHead | None:
        """The last complete block, or None for an empty store."""
        return self._head

    def commit_block(self, block: Block, seals: Sequence[CommitSeal], results: Sequence[TxResult],
                     state_writes: Mapping[bytes, bytes | None], smt_nodes: Mapping[bytes, bytes],
                     smt_replaced: Sequence[bytes] | None = None, smt_reused: Set[bytes] = frozenset()) -> None:
        """Write ``block`` and everything it changes in one synced batch and make it the head.

        ``smt_replaced``/``smt_reused``: the block's ``SmtUpdate.replaced``/``reused`` (``BlockExecution``);
        a pruned store journals ``smt_replaced`` and needs it (None: ``StorageError``), an archive store ignores
        it. Refuses (``StorageError``) a block that is not ``head + 1`` on top of the head's hash (height 0 only
        on an empty store), or whose results do not match its transactions one for one.
        """
        header = block.header
        if self._history is not None and smt_replaced is None:
            raise StorageError(f"block {header.height}: a pruned store (state_history_blocks = {self._history}) "
                               f"needs the block's replaced sparse-Merkle nodes (smt_replaced); got None")
        if len(results) != len(block.txs) or header.tx_count != len(block.txs):
            raise StorageError(f"block {header.height} has {len(block.txs)} txs, header tx_count "
                               f"{header.tx_count} and {len(results)} results; expected all equal")
        with self._lock:
            self._check_open()
            head = self._head
            if head is None:
                if header.height != 0:
                    raise StorageError(f"block height {header.height} on an empty store; expected 0 (genesis)")
            else:
                if header.height != head.height + 1:
                    raise StorageError(f"block height {header.height}; expected {head.height + 1} (head + 1)")
                if header.prev_hash != head.block_hash:
                    raise StorageError(f"block {header.height} has prev_hash {header.prev_hash.hex()[:16]}…; "
                                       f"expected the head's hash {head.block_hash.hex()[:16]}…")
            h8 = _h8(header.height)
            new_head = ChainHead(header.height, block.hash, header.state_root)
            try:
                with self._db.write_batch(transaction=True, sync=True) as wb:
                    wb.put(P_BLOCK + h8, block.encode())
                    wb.put(P_HEADER + h8, header.encode())
                    wb.put(P_HASH + block.hash, h8)
                    wb.put(P_CERT + h8, encode_certificate(tuple(seals)))
                    # The tx index entry P([height, index]): the array header and height encoded once.
                    loc_head = codec.encode([header.height])
                    loc_head = bytes([loc_head[0] + 1]) + loc_head[1:]  # fixarray 1 -> 2
                    for index, result in enumerate(results):
                        wb.put(P_RESULT + h8 + index.to_bytes(4, "big"), result.encode())
                        wb.put(P_TX + result.tx_hash, loc_head + codec.encode(index))
                        if result.detail:
                            wb.put(P_DETAIL + h8 + index.to_bytes(4, "big"),
                                   result.detail.encode()[:MAX_DETAIL_BYTES])
                    if header.height >= DETAIL_BLOCKS:  # the window moves: one old block's messages go
                        for key in self._db.iterator(prefix=P_DETAIL + _h8(header.height - DETAIL_BLOCKS),
                                                     include_value=False):
                            wb.delete(key)
                    for key, value in state_writes.items():
                        if value is None:
                            wb.delete(P_STATE + key)
                        else:
                            wb.put(P_STATE + key, value)
                    for node_hash, node in smt_nodes.items():
                        wb.put(P_NODE + node_hash, node)
                    dropped, pruned, marked, unmarked, low = pruning.add_journal_and_prune(
                        self._db, wb, self._journals, self._history, header.height, smt_nodes, smt_replaced or (),
                        smt_reused, self._revivals, self._legacy_until)
                    upgrade = self._format != FORMAT_VERSION and (self._history is not None or bool(self._journals))
                    if upgrade:  # markers from now on: format 1 code must not open this store any more
                        wb.put(P_VERSION, codec.encode([FORMAT_VERSION]))
                    wb.put(P_HEAD, new_head.encode())
            except plyvel.Error as exc:
                raise StorageError(f"writing block {header.height} failed: {_text(exc)}") from None
            self._head = new_head
            if upgrade:
                self._format = FORMAT_VERSION
            if dropped:
                self._journals = self._journals[len(dropped):]  # the oldest ones, in order
            if self._history is not None and smt_replaced:
                self._journals.append(header.height)
            self._revivals.apply(header.height, marked, unmarked, low)
            if pruned:
                with self._node_lock:
                    self._node_gen += 1
                    cache = self._node_cache
                    for node_hash in pruned:
                        cache.pop(node_hash, None)
            self._cache_nodes(smt_nodes)
            with self._state_lock:
                self._state_gen += 1
                cache = self._state_cache
                if len(cache) + len(state_writes) > STATE_CACHE_MAX:
                    cache.clear()
                cache.update(state_writes)

    def get_height(self, block_hash: bytes) -> int:
        """The height of the block with ``block_hash``; ``NotFound`` if the store has no such block."""
        raw = self._get(P_HASH + block_hash)
        if raw is None:
            raise NotFound(f"no block with hash {block_hash.hex()}")
        return int.from_bytes(raw, "big")

    def get_block(self, height: int) -> Block:
        """The block at ``height``; ``NotFound`` above the head."""
        return self._decode(Block.decode, self._need(P_BLOCK + _h8(height), f"no block at height {height}"),
                            f"block {height}")

    def get_block_by_hash(self, block_hash: bytes) -> Block:
        """The block with ``block_hash``; ``NotFound`` if absent."""
        return self.get_block(self.get_height(block_hash))

    def get_header(self, height: int) -> Header:
        """The header at ``height``; ``NotFound`` above the head."""
        return self._decode(Header.decode, self._need(P_HEADER + _h8(height), f"no block at height {height}"),
                            f"header {height}")

    def get_certificate(self, height: int) -> tuple[CommitSeal, ...]:
        """The commit seals stored with the block at ``height``."""
        return self._decode(decode_certificate,
                            self._need(P_CERT + _h8(height), f"no certificate at height {height}"),
                            f"certificate {height}")

    def get_results(self, height: int) -> list[TxResult]:
        """The results of the block at ``height``, in transaction order."""
        self._need(P_HEADER + _h8(height), f"no block at height {height}")
        prefix = P_RESULT + _h8(height)
        self._check_open()
        return [self._decode(TxResult.decode, raw, f"result {height}/{int.from_bytes(key[-4:], 'big')}")
                for key, raw in self._db.iterator(prefix=prefix)]

    def get_result(self, height: int, index: int) -> TxResult:
        """The result of transaction ``index`` of the block at ``height``."""
        if not 0 <= index < 2**32:
            raise NotFound(f"no result {index} at height {height}")
        raw = self._need(P_RESULT + _h8(height) + index.to_bytes(4, "big"), f"no result {index} at height {height}")
        return self._decode(TxResult.decode, raw, f"result {height}/{index}")

    def get_detail(self, height: int, index: int) -> str | None:
        """The rule's message of failed tx ``index`` at ``height`` (None: applied, or older than the window)."""
        if not 0 <= index < 2**32:
            return None
        raw = self._get(P_DETAIL + _h8(height) + index.to_bytes(4, "big"))
        return None if raw is None else raw.decode(errors="replace")

    def get_tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """``(height, index)`` of a committed transaction, or None if it was never committed."""
        raw = self._get(P_TX + tx_hash)
        if raw is None:
            return None
        obj = self._decode(codec.decode, raw, f"tx index {tx_hash.hex()[:16]}…")
        if not (isinstance(obj, list) and len(obj) == 2 and all(isinstance(x, int) for x in obj)):
            raise StorageError(f"tx index entry for {tx_hash.hex()[:16]}… is corrupt")
        return obj[0], obj[1]

    # ---- state and SMT nodes -------------------------------------------------------------------------

    def get_state(self, key: bytes) -> bytes | None:
        """The current value of state ``key``, or None."""
        if self._closed:
            raise StorageError(f"store {self.path} is closed")
        cache = self._state_cache
        value = cache.get(key, _MISSING)
        if value is not _MISSING:
            return value
        gen = self._state_gen
        value = self._get(P_STATE + key)
        with self._state_lock:
            if gen == self._state_gen and len(cache) < STATE_CACHE_MAX:
                cache[key] = value
        return value

    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` of the current state whose key starts with ``prefix``, in key order."""
        self._check_open()
        cut = len(P_STATE)
        for key, value in self._db.iterator(prefix=P_STATE + prefix):
            yield key[cut:], value

    def scan(self, start: bytes, stop: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """At most ``limit`` ``(key, value)`` of the current state with ``start <= key < stop``, in key order."""
        self._check_open()
        cut, out = len(P_STATE), []
        if limit <= 0:
            return out
        for key, value in self._db.iterator(start=P_STATE + start, stop=P_STATE + stop):
            out.append((key[cut:], value))
            if len(out) >= limit:
                break
        return out

    def get_node(self, node_hash: bytes) -> bytes | None:
        """A sparse-Merkle node by hash (a Store is a ``ledger.smt.NodeReader``); None if absent or pruned."""
        node = self._node_cache.get(node_hash)
        if node is None:
            gen = self._node_gen
            node = self._get(P_NODE + node_hash)
            if node is not None:
                with self._node_lock:
                    if gen == self._node_gen:  # no commit pruned nodes since the read
                        self._cache_nodes({node_hash: node})
        return node

    def _cache_nodes(self, nodes: Mapping[bytes, bytes]) -> None:
        cache = self._node_cache
        cache.update(nodes)
        if len(cache) > NODE_CACHE_MAX:
            # Drop the oldest half (dicts keep insertion order): amortised O(1) per insert. A node may read
            # nodes from a second thread (block pre-building): if the dict moves under us, start afresh.
            try:
                for key in list(itertools.islice(cache, len(cache) - NODE_CACHE_MAX // 2)):
                    cache.pop(key, None)
            except RuntimeError:
                cache.clear()

    # ---- metadata and consensus WAL ------------------------------------------------------------------

    def get_meta(self, name: str) -> bytes | None:
        """The metadata value ``name``, or None."""
        return self._get(P_META + name.encode())

    def put_meta(self, name: str, value: bytes) -> None:
        """Set metadata ``name`` (synced to disk before returning)."""
        self._put(P_META + name.encode(), value)

    def put_wal(self, record: bytes, *, sync: bool = True) -> None:
        """Replace the consensus write-ahead record; durable (fsync) before returning unless ``sync=False`` (the
        node keeps the durable copy in ``<data_dir>/consensus.wal``, written first: a torn log can lose this
        copy, see the module docstring, so the node writes this one as a second opinion without its own fsync;
        the next synced write, at the latest the block's commit, makes it durable too)."""
        self._put(P_WAL, record, sync=sync)

    def get_wal(self) -> bytes | None:
        """The last consensus write-ahead record, or None."""
        return self._get(P_WAL)

    # ---- helpers -------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"store {self.path} is closed")

    def _get(self, key: bytes) -> bytes | None:
        self._check_open()
        try:
            return self._db.get(key)
        except plyvel.Error as exc:
            raise StorageError(f"reading {self.path} failed: {_text(exc)}") from None

    def _put(self, key: bytes, value: bytes, *, sync: bool = True) -> None:
        if not isinstance(value, bytes):
            raise StorageError(f"value must be bytes, got {type(value).__name__}")
        with self._lock:
            self._check_open()
            try:
                self._db.put(key, value, sync=sync)
            except plyvel.Error as exc:
                raise StorageError(f"writing {self.path} failed: {_text(exc)}") from None

    def _need(self, key: bytes, missing: str) -> bytes:
        raw = self._get(key)
        if raw is None:
            raise NotFound(missing)
        return raw

    def _decode(self, fn, raw: bytes, what: str):
        try:
            return fn(raw)
        except (DecodeError, SchemaError) as exc:
            raise StorageError(f"{what} in {self.path} is corrupt: {exc.message}") from None


def _text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
