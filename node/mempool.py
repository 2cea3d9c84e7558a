"""The mempool: pending transactions waiting for a block (pure data structure, no I/O, no clock).

Theory of operation
-------------------
* Admission (``add``) runs cheap checks first — duplicate hash, size, same-nonce conflict, per-sender cap,
  global count/byte bounds — and only then the ledger's ``check`` callable (chain id, kind, payload,
  signatures, nonce >= state + 1). That is the one place signatures are verified: a tx in the pool is
  trusted by ``select`` and by gossip. A ``LedgerError`` from ``check`` becomes ``TxRejected``.
* Nothing accepted is lost silently. A tx leaves the pool only by being committed (``on_block_committed``)
  or by eviction, and every eviction leaves a status record (reason) in a bounded LRU, so ``status``
  answers pending / evicted(+reason) / unknown. When the pool is full, ``add`` refuses with ``MempoolFull``
  (HTTP 503 + Retry-After) rather than pushing anything else out.
* Per-sender nonce order: a sender's txs are keyed by nonce. ``select`` takes, for each sender, only the run
  of consecutive nonces starting at state nonce + 1; a gap waits for the missing nonce. Senders are served
  round-robin (one tx per sender per pass), ordered by the arrival of their first eligible tx, so a busy
  sender cannot starve the others; a per-sender cap stops one sender from filling the pool.
* After a block, ``on_block_committed`` drops the committed hashes and re-checks the senders' nonces: a tx
  whose nonce is now at or below the state nonce (another tx with that nonce committed) is evicted with
  reason ``nonce_stale``.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ledger.errors import LedgerError
from ledger.tx import SignedTx
from node.errors import DuplicateTx, MempoolFull, NonceConflict, SenderLimit, TxRejected, TxTooLarge

PENDING = "pending"
EVICTED = "evicted"
UNKNOWN = "unknown"

REASON_NONCE_STALE = "nonce_stale"
REASON_MANUAL = "manual"

DEFAULT_RECENT_EVICTIONS = 100_000
DEFAULT_RETRY_AFTER_S = 1

AdmissionCheck = Callable[[SignedTx], None]
NonceGetter = Callable[[bytes], int]


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    max_count: int = 20_000
    max_bytes: int = 32 * 1024 * 1024
    max_per_sender: int = 256
    recent_evictions: int = DEFAULT_RECENT_EVICTIONS
    retry_after_s: int = DEFAULT_RETRY_AFTER_S


@dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a tx stands in this mempool: ``state`` is pending, evicted or unknown."""

    state: str
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Entry:
    tx: SignedTx
    seq: int  # arrival order
    size: int


class Mempool:
    """Bounded pool of admitted transactions with per-sender nonce order and eviction records."""

    def __init__(self, limits: MempoolLimits | None = None) -> None:
        self.limits = limits or MempoolLimits()
        self._by_hash: dict[bytes, _Entry] = {}
        self._by_sender: dict[bytes, dict[int, _Entry]] = {}
        self._bytes = 0
        self._seq = 0
        self._evicted: OrderedDict[bytes, TxStatus] = OrderedDict()
        self.counters: Counter[str] = Counter()

    # --- reads ---

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, tx_hash: bytes) -> SignedTx | None:
        """The pending tx with this hash, or None."""
        entry = self._by_hash.get(tx_hash)
        return entry.tx if entry else None

    def get_pending_nonces(self, sender: bytes) -> list[int]:
        """The nonces this sender has pending, ascending."""
        return sorted(self._by_sender.get(sender, {}))

    def get_hashes(self) -> list[bytes]:
        """Every pending tx hash in arrival order (for gossip and status pages)."""
        return [h for h, _ in sorted(self._by_hash.items(), key=lambda kv: kv[1].seq)]

    def status(self, tx_hash: bytes) -> TxStatus:
        """pending, evicted (with reason) or unknown — a committed tx is unknown here; ask the store."""
        if tx_hash in self._by_hash:
            return TxStatus(PENDING)
        record = self._evicted.get(tx_hash)
        if record is not None:
            self._evicted.move_to_end(tx_hash)
            return record
        return TxStatus(UNKNOWN)

    def stats(self) -> dict[str, int]:
        """Size figures for /v1/status and /metrics."""
        return {"count": len(self._by_hash), "bytes": self._bytes, "senders": len(self._by_sender),
                "max_count": self.limits.max_count, "max_bytes": self.limits.max_bytes}

    # --- admission ---

    def add(self, tx: SignedTx, check: AdmissionCheck) -> None:
        """Admit ``tx`` after ``check`` (the ledger's admission check); raise a ``MempoolError`` subclass.

        ``DuplicateTx`` means the very same tx is already pending: gossip and API callers may treat it as
        success. ``check`` runs last, so a refused duplicate or a full pool costs no signature check.
        """
        limits = self.limits
        h = tx.tx_hash
        size = len(tx.raw)
        if h in self._by_hash:
            self._count_refusal("duplicate")
            raise DuplicateTx(f"tx {h.hex()[:16]}… is already pending")
        if size > limits.max_bytes:
            self._count_refusal("too_large")
            raise TxTooLarge(f"tx is {size} bytes; the mempool holds at most {limits.max_bytes} bytes")
        sender, nonce = tx.body.sender, tx.body.nonce
        mine = self._by_sender.get(sender, {})
        other = mine.get(nonce)
        if other is not None:
            self._count_refusal("nonce_conflict")
            raise NonceConflict(
                f"sender {sender.hex()[:16]}… already has tx {other.tx.tx_hash.hex()[:16]}… pending with nonce "
                f"{nonce}; replace-by-nonce is refused, wait for it to commit or be evicted")
        if len(mine) >= limits.max_per_sender:
            self._count_refusal("sender_limit")
            raise SenderLimit(
                f"sender {sender.hex()[:16]}… has {len(mine)} txs pending; the limit per sender is "
                f"{limits.max_per_sender}", limits.retry_after_s)
        if len(self._by_hash) >= limits.max_count or self._bytes + size > limits.max_bytes:
            self._count_refusal("full")
            raise MempoolFull(
                f"mempool is full: {len(self._by_hash)}/{limits.max_count} txs, "
                f"{self._bytes}+{size}/{limits.max_bytes} bytes; retry after {limits.retry_after_s} s",
                limits.retry_after_s)
        try:
            check(tx)
        except LedgerError as exc:
            self._count_refusal("rejected")
            raise TxRejected(f"tx {h.hex()[:16]}… refused: {exc.message}", exc.code) from None
        self._seq += 1
        entry = _Entry(tx, self._seq, size)
        self._by_hash[h] = entry
        self._by_sender.setdefault(sender, {})[nonce] = entry
        self._bytes += size
        self._evicted.pop(h, None)  # re-admitted after an eviction: pending again
        self.counters["admitted"] += 1

    def _count_refusal(self, reason: str) -> None:
        self.counters[f"refused_{reason}"] += 1

    # --- selection for a proposal ---

    def select(self, max_count: int, max_bytes: int, get_nonce: NonceGetter) -> list[SignedTx]:
        """Up to ``max_count`` txs / ``max_bytes`` bytes, consecutive nonces per sender, round-robin.

        ``get_nonce(sender)`` is the sender's nonce in the state the block builds on. The pool is not
        changed: txs leave only when their block commits.
        """
        queues: list[tuple[int, bytes, list[_Entry]]] = []
        for sender, by_nonce in self._by_sender.items():
            run: list[_Entry] = []
            n = get_nonce(sender) + 1
            while n in by_nonce:
                run.append(by_nonce[n])
                n += 1
            if run:
                queues.append((run[0].seq, sender, run))
        queues.sort(key=lambda q: q[0])
        out: list[SignedTx] = []
        used = 0
        depth = 0
        active = [q[2] for q in queues]
        while active and len(out) < max_count:
            still: list[list[_Entry]] = []
            for run in active:
                if len(out) >= max_count:
                    break
                entry = run[depth]
                if used + entry.size > max_bytes:
                    continue  # this sender stops here: its later nonces cannot skip this one
                out.append(entry.tx)
                used += entry.size
                if depth + 1 < len(run):
                    still.append(run)
            active = still
            depth += 1
        return out

    # --- after a block ---

    def on_block_committed(self, tx_hashes: Iterable[bytes], get_nonce: NonceGetter,
                           senders: Iterable[bytes] | None = None) -> list[bytes]:
        """Drop committed txs, evict those whose nonce is now stale; return the evicted hashes.

        ``get_nonce`` reads the state after the block. ``senders`` limits the nonce re-check to those
        accounts (the block's senders); by default every pending sender is re-checked.
        """
        touched: set[bytes] = set()
        for h in tx_hashes:
            entry = self._by_hash.get(h)
            if entry is not None:
                self._remove(entry)
                self.counters["committed"] += 1
                touched.add(entry.tx.body.sender)
        check = set(self._by_sender) if senders is None else (touched | set(senders)) & set(self._by_sender)
        evicted: list[bytes] = []
        for sender in check:
            state_nonce = get_nonce(sender)
            for nonce in [n for n in self._by_sender.get(sender, {}) if n <= state_nonce]:
                entry = self._by_sender[sender][nonce]
                self._evict(entry, REASON_NONCE_STALE,
                            f"nonce {nonce} is at or below the sender's committed nonce {state_nonce}")
                evicted.append(entry.tx.tx_hash)
        return evicted

    def evict(self, tx_hash: bytes, reason: str = REASON_MANUAL, detail: str = "") -> bool:
        """Evict one pending tx, keeping a status record; False if it was not pending."""
        entry = self._by_hash.get(tx_hash)
        if entry is None:
            return False
        self._evict(entry, reason, detail)
        return True

    def _evict(self, entry: _Entry, reason: str, detail: str) -> None:
        self._remove(entry)
        self.counters[f"evicted_{reason}"] += 1
        self._evicted[entry.tx.tx_hash] = TxStatus(EVICTED, reason, detail)
        self._evicted.move_to_end(entry.tx.tx_hash)
        while len(self._evicted) > self.limits.recent_evictions:
            self._evicted.popitem(last=False)

    def _remove(self, entry: _Entry) -> None:
        tx = entry.tx
        del self._by_hash[tx.tx_hash]
        by_nonce = self._by_sender[tx.body.sender]
        del by_nonce[tx.body.nonce]
        if not by_nonce:
            del self._by_sender[tx.body.sender]
        self._bytes -= entry.size
