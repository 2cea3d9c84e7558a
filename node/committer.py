"""Committing a block and everything that follows a commit: the end of the block pipeline.

``Committer.commit(block, seals, execution)`` writes the block in one synced batch (``Store.commit_block``),
then does the bookkeeping of a commit, in this order: the mempool drops what the block carried and
re-checks only the block's senders; the recent-block caches (tx hashes for ``/v1/blocks``, results for
followers) and the metrics move; submit->commit latencies are observed; ``wait_for_commit`` waiters wake;
and every subscriber (``subscribe``) is told ``(height, results)``. Subscribers are followers (erasure,
analytics): a subscriber must only queue work and return — it runs on the consensus task.

It also keeps the envelopes admission decoded (``decoded``: raw -> ``SignedTx``) until they commit, so
neither validation nor the commit decodes them again, and the submit time of each admitted tx.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Callable

from ledger import chain, state
from ledger.block import Block
from ledger.tx import SignedTx, decode_tx
from node.mempool import Mempool
from node.metrics import NodeMetrics

log = logging.getLogger("carecoin.node")

MAX_SUBMIT_TIMES = 50_000
MAX_CACHED_BLOCK_HASHES = 256
MAX_CACHED_RESULTS = 64  # the followers catch up every 0.25 s; this bounds memory at large blocks
MAX_CACHED_RESULT_TXS = 20_000  # ... and so does this, in results (64 full blocks would hold 640,000 of them)

CommitSubscriber = Callable[[int, list], None]  # (height, results), called on the consensus task


class Committer:
    """Commits blocks to ``store`` and runs the after-commit bookkeeping (see the module docstring)."""

    def __init__(self, store, mempool: Mempool, metrics: NodeMetrics) -> None:
        self.store = store
        self.mempool = mempool
        self.metrics = metrics
        self.decoded: dict[bytes, SignedTx] = {}  # raw envelope -> decoded, for admitted txs not yet committed
        self.submitted: OrderedDict[bytes, float] = OrderedDict()  # tx hash -> monotonic submit time
        self._block_hashes: OrderedDict[int, list[bytes]] = OrderedDict()  # height -> tx hashes (recent)
        self._recent_results: OrderedDict[int, list] = OrderedDict()  # height -> TxResults (recent)
        self._recent_result_txs = 0  # results held in _recent_results
        self._last_commit = time.monotonic()
        # the head block's timestamp: the block interval counts from it (QBFT R0)
        head = store.head() if store is not None else None
        self.head_timestamp_ms = store.get_header(head.height).timestamp_ms if head is not None else 0
        self._commit_waiters: list[asyncio.Future] = []
        self._subscribers: list[CommitSubscriber] = []

    def subscribe(self, subscriber: CommitSubscriber) -> Callable[[], None]:
        """Call ``subscriber(height, results)`` after every commit; return the function that unsubscribes."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber) if subscriber in self._subscribers else None

    def get_nonce(self, sender: bytes) -> int:
        """The committed nonce of ``sender``."""
        return state.get_nonce(self.store, sender)

    def commit(self, block: Block, seals, execution: "chain.BlockExecution", *, source: str,
               decoded: dict[bytes, SignedTx] | None = None) -> None:
        """Commit ``block`` (one synced batch), then update the mempool, metrics, waiters and subscribers.

        ``decoded`` (raw -> ``SignedTx``) may hold the block's txs decoded already (catch-up), so none is
        decoded again here."""
        self.store.commit_block(block, tuple(seals), execution.results, execution.state_writes,
                                execution.smt_nodes, execution.smt_replaced, execution.smt_reused)
        self._after_commit(block, execution, source, decoded or {})

    def _after_commit(self, block: Block, execution: "chain.BlockExecution", source: str,
                      known: dict[bytes, SignedTx]) -> None:
        self._last_commit = time.monotonic()
        self.head_timestamp_ms = block.header.timestamp_ms
        hashes = [r.tx_hash for r in execution.results]
        # Re-check only the block's senders: nobody else's nonce moved. The mempool knows the senders of the
        # txs it holds; the others come from this node's decoded envelopes, and only unknown ones are decoded.
        decoded = self.decoded
        senders = set()
        for raw, h in zip(block.txs, hashes):
            tx = decoded.pop(raw, None) or known.get(raw)
            if h not in self.mempool:
                senders.add((tx if tx is not None else decode_tx(raw)).body.sender)
        self._block_hashes[block.height] = hashes
        self._cache_results(block.height, execution.results)
        while len(self._block_hashes) > MAX_CACHED_BLOCK_HASHES:
            self._block_hashes.popitem(last=False)
        self.mempool.on_block_committed(hashes, self.get_nonce, senders)
        m = self.metrics
        m.height.set(block.height)
        m.committed_blocks.inc()
        m.committed_txs.inc(len(hashes))
        if source == "sync":
            m.synced_blocks.inc()
        now = time.monotonic()
        for h in hashes:
            t0 = self.submitted.pop(h, None)
            if t0 is not None:
                m.commit_latency.observe(now - t0)
        waiters, self._commit_waiters = self._commit_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(block.height)
        for subscriber in self._subscribers:
            try:
                subscriber(block.height, execution.results)
            except Exception:  # a follower's bug must never undo or stall a commit
                log.exception("commit subscriber %r failed at height %d", subscriber, block.height)
        log.info("committed block %d %s with %d txs (%s)", block.height, block.hash.hex()[:16], len(hashes),
                 source)

    def _cache_results(self, height: int, results: list) -> None:
        """Keep ``results`` for the followers; the oldest go past ``MAX_CACHED_RESULTS`` blocks or
        ``MAX_CACHED_RESULT_TXS`` results (the newest block always stays; a miss reads the store)."""
        cache = self._recent_results
        old = cache.pop(height, None)
        self._recent_result_txs += len(results) - (len(old) if old is not None else 0)
        cache[height] = results
        while len(cache) > MAX_CACHED_RESULTS or (self._recent_result_txs > MAX_CACHED_RESULT_TXS
                                                   and len(cache) > 1):
            self._recent_result_txs -= len(cache.popitem(last=False)[1])

    def trim_submitted(self) -> None:
        """Keep at most ``MAX_SUBMIT_TIMES`` submit times (the oldest go first)."""
        while len(self.submitted) > MAX_SUBMIT_TIMES:
            self.submitted.popitem(last=False)

    def get_last_commit_time(self) -> float:
        """Monotonic time of the last commit (or of the node's start)."""
        return self._last_commit

    def get_recent_block_hashes(self, height: int) -> list[bytes] | None:
        """The tx hashes of a recently committed block from memory (None when not cached)."""
        return self._block_hashes.get(height)

    def get_recent_results(self, height: int) -> list | None:
        """The results of a recently committed block from memory (None when not cached: read the store)."""
        return self._recent_results.get(height)

    async def wait_for_commit(self, timeout_s: float) -> int | None:
        """Wait until the next block commits (bounded); return its height or None on timeout."""
        fut = asyncio.get_running_loop().create_future()
        self._commit_waiters.append(fut)
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except asyncio.TimeoutError:
            return None

    def cancel_waiters(self) -> None:
        """Cancel every ``wait_for_commit`` (on stop)."""
        for fut in self._commit_waiters:
            if not fut.done():
                fut.cancel()
