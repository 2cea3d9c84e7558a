"""The mempool: pending transactions waiting for a block (pure data structure, no I/O; the clock is injected).

Theory of operation
-------------------
* Admission (``add``) runs cheap checks first — duplicate hash, size, same-nonce conflict, nonce gap bound,
  per-sender share, gapped share, global count/byte bounds and the reserve — and only then the ledger's
  ``check`` callable (chain id, kind, payload, signatures, nonce >= state + 1). That is the one place
  signatures are verified: a tx in the pool is trusted by ``select`` and by gossip. A ``LedgerError`` from
  ``check`` becomes ``TxRejected``.
* Nothing accepted is lost silently. A tx leaves the pool only by being committed (``on_block_committed``)
  or by eviction, and every eviction leaves a status record (reason) in a bounded LRU, so ``status``
  answers pending / evicted(+reason) / unknown. When the pool is full, ``add`` refuses with ``MempoolFull``
  (HTTP 503 + Retry-After) rather than pushing anything else out.
* Per-sender nonce order: a sender's txs are keyed by nonce. ``select`` takes, for each sender, only the run
  of consecutive nonces starting at state nonce + 1; a gap waits for the missing nonce. Senders are served
  round-robin (one tx per sender per pass), ordered by the arrival of their first eligible tx, so a busy
  sender cannot starve the others.
* After a block, ``on_block_committed`` drops the committed hashes and re-checks the senders' nonces: a tx
  whose nonce is now at or below the state nonce (another tx with that nonce committed) is evicted with
  reason ``nonce_stale``.

Runnable vs gapped (active when the pool is given ``get_nonce``, the committed-state nonce reader)
-------------------------------------------------------------------------------------------------
* The pool keeps, per sender, the committed nonce (``base``, read once when the sender enters the pool,
  refreshed after each block) and the length of the run of consecutive pending nonces from base + 1. A tx
  inside that run is *runnable*; one past a gap is *gapped*. ``runnable_count()`` is kept incrementally
  (pool size minus gapped count), so the proposer can time blocks by what can actually run.
* Expiry: a gapped tx that waits ``gap_ttl_s`` is evicted as ``expired_gap`` (a FIFO of (since, hash) in
  clock order: O(1) per expired tx); ``expire()`` runs at each block and at admission, or on a timer.
* Who may take room (the nonce-gap bound, fair shares, the gapped share and the reserve for role holders
  and registered customers, ``is_privileged``) is ``node.mempool_policy``; the limits, statuses and
  eviction records are ``node.mempool_records``.

Without ``get_nonce`` the pool cannot tell runnable from gapped: the gap bound, gapped share and expiry are
off and ``runnable_count()`` equals ``len(pool)`` (the behaviour before they existed).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ledger.errors import LedgerError
from ledger.tx import SignedTx
from node.errors import DuplicateTx, NonceConflict, TxRejected, TxTooLarge
from node.mempool_policy import Fill, RoomPolicy, SenderPredicate
from node.mempool_records import (  # noqa: F401  (re-exported: the pool's statuses and limits are public here)
    EVICTED,
    PENDING,
    REASON_EXPIRED_GAP,
    REASON_MANUAL,
    REASON_NONCE_STALE,
    UNKNOWN,
    EvictionLog,
    MempoolLimits,
    TxStatus,
)

AdmissionCheck = Callable[[SignedTx], None]
NonceGetter = Callable[[bytes], int]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class _Entry:
    tx: SignedTx
    seq: int  # arrival order
    size: int


class Mempool:
    """Bounded pool of admitted transactions with per-sender nonce order and eviction records.

    ``get_nonce(sender)`` reads the committed state nonce (turns on the runnable/gapped bookkeeping),
    ``is_privileged(sender)`` says who may use the reserve, ``now`` is the clock expiry runs on.
    """

    def __init__(self, limits: MempoolLimits | None = None, *, get_nonce: NonceGetter | None = None,
                 is_privileged: SenderPredicate | None = None, now: Clock = time.monotonic) -> None:
        self.limits = limits or MempoolLimits()
        self._get_nonce = get_nonce
        self._now = now
        self._by_hash: dict[bytes, _Entry] = {}
        self._by_sender: dict[bytes, dict[int, _Entry]] = {}
        self._bytes = 0
        self._seq = 0
        self._evicted = EvictionLog(self.limits.recent_evictions)
        self.counters: Counter[str] = Counter()
        self.policy = RoomPolicy(self.limits, is_privileged, self.counters)
        # runnable/gapped bookkeeping (only with get_nonce)
        self._base: dict[bytes, int] = {}  # sender -> committed nonce
        self._run: dict[bytes, int] = {}  # sender -> consecutive pending nonces from base + 1
        self._gapped: dict[bytes, float] = {}  # tx hash -> time it started waiting on a gap
        self._gapped_bytes = 0
        self._gap_queue: deque[tuple[float, bytes]] = deque()  # (since, hash), since ascending

    # --- reads ---

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def runnable_count(self) -> int:
        """Pending txs whose sender's nonce chain reaches them from the committed nonce (O(1))."""
        return len(self._by_hash) - len(self._gapped)

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
        return record if record is not None else TxStatus(UNKNOWN)

    def stats(self) -> dict[str, int]:
        """Size figures for /v1/status and /metrics."""
        return {"count": len(self._by_hash), "bytes": self._bytes, "senders": len(self._by_sender),
                "runnable": self.runnable_count(), "gapped": len(self._gapped),
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
        gapped = False
        base = next_nonce = 0
        now = 0.0
        if self._get_nonce is not None:
            now = self._now()
            queue = self._gap_queue
            if queue and queue[0][0] <= now - limits.gap_ttl_s:
                self.expire(now)
                mine = self._by_sender.get(sender, {})
            base = self._base.get(sender)
            if base is None:
                base = self._get_nonce(sender)
            next_nonce = base + self._run.get(sender, 0) + 1
            self.policy.check_gap(sender, nonce, next_nonce)
            gapped = nonce > next_nonce  # a stale nonce (<= base) is the ledger check's to refuse
        self.policy.check_room(sender, len(mine), size, gapped, self._get_fill())
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
        self._evicted.forget(h)  # re-admitted after an eviction: pending again
        self.counters["admitted"] += 1
        if self._get_nonce is not None:
            self._base[sender] = base
            if nonce == next_nonce:
                self._extend_run(sender, base)
            else:
                self._mark_gapped(entry, now)

    def get_sender_share(self) -> int:
        """How many pending txs one (unprivileged) sender may hold at the pool's current fill."""
        return self.policy.get_sender_share(self._get_fill())

    def _get_fill(self) -> Fill:
        return Fill(len(self._by_hash), self._bytes, len(self._gapped), self._gapped_bytes)

    def _count_refusal(self, reason: str) -> None:
        self.policy.refuse(reason)

    # --- runnable / gapped bookkeeping ---

    def _mark_gapped(self, entry: _Entry, now: float) -> None:
        h = entry.tx.tx_hash
        self._gapped[h] = now
        self._gapped_bytes += entry.size
        self._gap_queue.append((now, h))

    def _unmark_gapped(self, entry: _Entry) -> None:
        if self._gapped.pop(entry.tx.tx_hash, None) is not None:
            self._gapped_bytes -= entry.size

    def _extend_run(self, sender: bytes, base: int) -> None:
        """The sender's next runnable nonce arrived: it and any gapped txs right after it become runnable."""
        by_nonce = self._by_sender[sender]
        run = self._run.get(sender, 0) + 1
        n = base + run + 1
        while n in by_nonce:
            self._unmark_gapped(by_nonce[n])
            run += 1
            n += 1
        self._run[sender] = run

    def _advance(self, sender: bytes, base: int) -> None:
        """A block moved the sender's committed nonce to ``base`` (its txs at or below it are gone already)."""
        by_nonce = self._by_sender.get(sender)
        if not by_nonce:
            self._base.pop(sender, None)
            self._run.pop(sender, None)
            return
        old_base = self._base.get(sender, base)
        if base < old_base:  # never on a final chain; recompute from scratch rather than trust the run
            self._base[sender] = old_base = base
            self._cut(sender, base + 1)
        # What was runnable above the new base stays runnable; gapped txs right after it join the run.
        run = max(0, old_base + self._run.get(sender, 0) - base)
        n = base + run + 1
        while n in by_nonce:
            self._unmark_gapped(by_nonce[n])
            run += 1
            n += 1
        self._base[sender] = base
        self._run[sender] = run

    def _cut(self, sender: bytes, nonce: int) -> None:
        """``nonce`` left the sender's run (evicted): the txs after it now wait on a gap, from now."""
        by_nonce = self._by_sender.get(sender)
        base = self._base.get(sender)
        if not by_nonce or base is None:
            return
        run = min(self._run.get(sender, 0), max(0, nonce - base - 1))
        self._run[sender] = run
        if len(by_nonce) > run:
            now = self._now()
            for n, entry in by_nonce.items():
                if n > base + run and entry.tx.tx_hash not in self._gapped:
                    self._mark_gapped(entry, now)

    def expire(self, now: float | None = None) -> list[bytes]:
        """Evict every tx that has waited on a nonce gap for ``gap_ttl_s`` (reason ``expired_gap``).

        Cheap to call often: it pops due items off the front of a time-ordered queue only.
        """
        if now is None:
            now = self._now()
        ttl = self.limits.gap_ttl_s
        cutoff = now - ttl
        queue = self._gap_queue
        out: list[bytes] = []
        while queue and queue[0][0] <= cutoff:
            since, h = queue.popleft()
            if self._gapped.get(h) != since:
                continue  # it became runnable, left the pool, or started waiting again later
            entry = self._by_hash[h]
            sender = entry.tx.body.sender
            expected = self._base.get(sender, 0) + self._run.get(sender, 0) + 1
            self._evict(entry, REASON_EXPIRED_GAP,
                        f"nonce {entry.tx.body.nonce} waited {now - since:.1f} s for the sender's nonce {expected}; "
                        f"a tx that cannot run is kept at most {ttl:g} s")
            out.append(h)
        return out

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
        """Drop committed txs, evict stale nonces and expired gapped txs; return the evicted hashes.

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
        tracked = self._get_nonce is not None
        for sender in check:
            state_nonce = get_nonce(sender)
            for nonce in [n for n in self._by_sender.get(sender, {}) if n <= state_nonce]:
                entry = self._by_sender[sender][nonce]
                self._evict(entry, REASON_NONCE_STALE,
                            f"nonce {nonce} is at or below the sender's committed nonce {state_nonce}")
                evicted.append(entry.tx.tx_hash)
            if tracked:
                self._advance(sender, state_nonce)
        if tracked:
            evicted.extend(self.expire())
        return evicted

    def evict(self, tx_hash: bytes, reason: str = REASON_MANUAL, detail: str = "") -> bool:
        """Evict one pending tx, keeping a status record; False if it was not pending."""
        entry = self._by_hash.get(tx_hash)
        if entry is None:
            return False
        self._evict(entry, reason, detail)
        if self._get_nonce is not None:  # the sender's later nonces may now wait on this one
            self._cut(entry.tx.body.sender, entry.tx.body.nonce)
        return True

    def _evict(self, entry: _Entry, reason: str, detail: str) -> None:
        self._remove(entry)
        self.counters[f"evicted_{reason}"] += 1
        self._evicted.record(entry.tx.tx_hash, reason, detail)

    def _remove(self, entry: _Entry) -> None:
        tx = entry.tx
        sender = tx.body.sender
        del self._by_hash[tx.tx_hash]
        by_nonce = self._by_sender[sender]
        del by_nonce[tx.body.nonce]
        if not by_nonce:
            del self._by_sender[sender]
            self._base.pop(sender, None)
            self._run.pop(sender, None)
        self._bytes -= entry.size
        self._unmark_gapped(entry)
