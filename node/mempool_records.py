"""The mempool's vocabulary and memory: its limits, the status of a tx, and the bounded eviction records.

Nothing accepted is lost silently: a tx leaves the pool only by being committed or by eviction, and every
eviction leaves a ``TxStatus`` record (state ``evicted`` with its reason and a detail naming the numbers) in
``EvictionLog``, a bounded LRU, so ``Mempool.status`` answers pending / evicted(+reason) / unknown.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

PENDING = "pending"
EVICTED = "evicted"
UNKNOWN = "unknown"

REASON_NONCE_STALE = "nonce_stale"
REASON_EXPIRED_GAP = "expired_gap"
REASON_MANUAL = "manual"

DEFAULT_RECENT_EVICTIONS = 100_000
DEFAULT_RETRY_AFTER_S = 1


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    max_count: int = 20_000
    max_bytes: int = 32 * 1024 * 1024
    max_per_sender: int = 256
    recent_evictions: int = DEFAULT_RECENT_EVICTIONS
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    max_nonce_gap: int = 16  # a nonce may be at most this far past the sender's next runnable nonce
    gap_ttl_s: float = 30.0  # a gapped tx waiting this long is evicted (expired_gap)
    max_gapped_fraction: float = 0.25  # share of count/bytes that gapped txs may hold together
    reserve_fraction: float = 0.2  # share of count/bytes only privileged senders may fill
    pressure_fraction: float = 0.5  # above this fill the per-sender cap shrinks...
    min_per_sender: int = 16  # ...linearly down to this at a full pool


@dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a tx stands in this mempool: ``state`` is pending, evicted or unknown."""

    state: str
    reason: str = ""
    detail: str = ""


class EvictionLog:
    """The last ``capacity`` evictions by tx hash (least recently written or read goes first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._records: OrderedDict[bytes, TxStatus] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def record(self, tx_hash: bytes, reason: str, detail: str) -> None:
        """Remember that ``tx_hash`` was evicted for ``reason``."""
        records = self._records
        records[tx_hash] = TxStatus(EVICTED, reason, detail)
        records.move_to_end(tx_hash)
        while len(records) > self.capacity:
            records.popitem(last=False)

    def get(self, tx_hash: bytes) -> TxStatus | None:
        """The eviction record of ``tx_hash`` (refreshed as recently used), or None."""
        record = self._records.get(tx_hash)
        if record is not None:
            self._records.move_to_end(tx_hash)
        return record

    def forget(self, tx_hash: bytes) -> None:
        """Drop the record (the tx was admitted again: it is pending now)."""
        self._records.pop(tx_hash, None)
