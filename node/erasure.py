"""The erasure follower: crypto-shred a customer's vault key once ``erase-customer-data`` commits.

Theory of operation. The follower is fed by the commit path: ``on_commit(height, results)`` is a commit
subscriber (``Committer.subscribe``) that only queues the block's results (bounded) and wakes the task. The
task (``run``) first catches up from the store (every block since ``height``; empty blocks cost one header
read), then applies fed blocks in height order, and reads from the store whatever it was not fed (a gap, an
overflow). For every applied ``customer_data_erased`` event it calls ``on_erased(customer)``, which deletes
the wrapped key (``Vault.erase`` is idempotent, so a block seen twice is harmless).

It is independent of the analytics index on purpose: a change to analytics can never stop an erasure.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable

from ledger.events import CustomerDataErased, decode_event

log = logging.getLogger("carecoin.erasure")

MAX_FED = 256  # blocks queued by the commit path; beyond, the follower reads them from the store
MAX_FED_TXS = 20_000  # ... and results queued (memory is bounded at large blocks too)
BATCH = 500  # blocks applied between two yields to the event loop
BATCH_TXS = 5_000  # ... or this many results, whichever comes first (a start on a chain of large blocks)
STEP_PAUSE_S = 0.05  # pause between batches while behind: requests are served between them
PERIOD_S = 1.0  # the task also looks at the head this often, fed or not


class ErasureFollower:
    """Applies committed erasures to ``on_erased`` (see the module docstring)."""

    def __init__(self, store: Any, on_erased: Callable[[bytes], None],
                 results_of: Callable[[int], Any] | None = None) -> None:
        self.store, self.on_erased, self.results_of = store, on_erased, results_of
        self.height = 0  # every block up to here is applied (genesis erases nobody)
        self._fed: deque[tuple[int, list]] = deque()
        self._fed_txs = 0  # results held in _fed
        self._wake: asyncio.Event | None = None

    def on_commit(self, height: int, results: list) -> None:
        """Commit subscriber: queue the block's results and wake the task (constant time)."""
        if len(self._fed) < MAX_FED and self._fed_txs + len(results) <= MAX_FED_TXS:
            self._fed.append((height, results))
            self._fed_txs += len(results)
        if self._wake is not None:
            self._wake.set()

    def catch_up(self, max_blocks: int = 10_000, max_txs: int | None = None) -> int:
        """Apply committed blocks after ``self.height`` (at most ``max_blocks``, and no block more once
        ``max_txs`` results are applied); return the applied height."""
        stop = min(self.store.head().height, self.height + max_blocks)
        txs = 0
        while self.height < stop and (max_txs is None or txs < max_txs):
            h = self.height + 1
            results = self._take_fed(h)
            if results is None:
                if self.store.get_header(h).tx_count == 0:
                    self.height = h
                    continue
                results = self.results_of(h) if self.results_of is not None else None
                if results is None:
                    results = self.store.get_results(h)
            self._apply(results)
            txs += len(results)
            self.height = h
        return self.height

    def _take_fed(self, height: int) -> list | None:
        fed = self._fed
        while fed and fed[0][0] < height:
            self._fed_txs -= len(fed.popleft()[1])
        if fed and fed[0][0] == height:
            results = fed.popleft()[1]
            self._fed_txs -= len(results)
            return results
        return None

    def _apply(self, results) -> None:
        for result in results:
            if result.status != 0 or not result.events:
                continue
            for event in map(decode_event, result.events):
                if type(event) is CustomerDataErased:
                    self.on_erased(event.customer)

    async def run(self, is_closed: Callable[[], bool]) -> None:
        """Catch up from the store, then follow commits (runs until cancelled or the store closes)."""
        self._wake = asyncio.Event()
        while True:
            self._wake.clear()
            try:
                if is_closed():
                    return
                while self.catch_up(BATCH, BATCH_TXS) < self.store.head().height:
                    await asyncio.sleep(STEP_PAUSE_S)
            except Exception:  # never take the node down; retry at the next wake
                log.exception("erasure catch-up failed at height %d", self.height)
            try:
                await asyncio.wait_for(self._wake.wait(), PERIOD_S)
            except asyncio.TimeoutError:
                pass
