"""The block pipeline: build, validate, pre-build and decide blocks (committing goes through ``Committer``).

Theory of operation. The pipeline is given the store, the mempool, the genesis and the node key explicitly;
it knows nothing of queues, timers or peers. The consensus driver calls it on the consensus task:

- ``process_request_block`` picks txs from the mempool and executes them on top of the head
  (``ledger.chain.build_block``), or proposes the block pre-built for that height and parent;
- ``process_validate_block`` re-executes a proposed block (``ledger.chain.validate_block``), trusting the
  signatures of the exact envelopes the mempool verified, and decoding from the envelopes admission kept;
- ``process_decide`` commits the decided block without re-executing it (executions are cached by block hash);
- ``commit_synced`` checks each block from catch-up right before it runs (its certificate against the set in
  force at its height, known once its parent is committed), re-executes it and commits it.

After each commit, ``get_scheduled_change(H)`` answers ``ValidatorSetScheduled(H + 2, V(H + 2))`` when block H
decided a validator-set change (``ledger.validator_sets``): the consensus loop feeds it to the replica before
any other event (docs/architecture.md, "The contract with the node").

Block-time sweeps (``ledger.sweeps``): ``get_sweep_due_in_ms`` tells the driver when the earliest due entry
comes due on this node's clock, so a block is proposed for it with an empty mempool (and only then: an idle
network with nothing due keeps its idle pace); ``ledger.chain.build_block`` adds the ``block-sweep`` itself.

Blocks are sized to a time budget: ``BLOCK_TIME_SHARE`` of the base round timeout, from a moving average of
the per-tx execution time measured here. When this node proposes the next height's round 0, it pre-builds
that block on a worker thread on top of the block just validated (``PendingState``/``OverlayNodes``) while
the votes of the current height run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import OrderedDict
from typing import Callable, Sequence

from consensus.events import (BlockProposalReady, BlockValidated, Decide, RequestBlock, ValidateBlock,
                              ValidatorSetScheduled)
from ledger import chain, reasons, state, sweeps, validator_sets
from ledger.block import Block, Header
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.keys import KeyPair
from ledger.smt import OverlayNodes
from ledger.tx import SignedTx, decode_tx
from node.clock import now_ms  # the node's one wall clock (block timestamps, max_future_ms)
from node.committer import Committer
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node.options import ServiceOptions

log = logging.getLogger("carecoin.driver")

MAX_EXEC_CACHE = 32
BLOCK_TIME_SHARE = 0.3  # a block's execution should take at most this share of the base round timeout
MIN_BLOCK_TXS = 50       # never aim below this many txs per block
MIN_SAMPLE_TXS = 20      # executions of fewer txs say little about the per-tx cost
EWMA = 0.3
PREBUILD_WAIT_S = 2.0  # bound on waiting for a running pre-build when the PROPOSE timer fires


class PendingState:
    """A ``StateReader``: the net writes of a block not yet committed, over the store's current state."""

    __slots__ = ("_base", "_writes")

    def __init__(self, base, writes: dict[bytes, bytes | None]) -> None:
        self._base, self._writes = base, writes

    def get_state(self, key: bytes) -> bytes | None:
        """The value of ``key`` once the pending block is applied."""
        if key in self._writes:
            return self._writes[key]
        return self._base.get_state(key)

    def scan(self, start: bytes, stop: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """The store's scan with the pending block's writes laid over it."""
        return state.merge_scan(self._base, self._writes, start, stop, limit)


class BlockPipeline:
    """Builds, validates, pre-builds and decides blocks for one node (called only from its consensus task).

    ``is_next_proposer(height)`` and ``consensus_height()`` are the two facts it needs from consensus (to
    decide whether to pre-build).
    """

    def __init__(self, *, store, mempool: Mempool, genesis: Genesis, key: KeyPair, options: ServiceOptions,
                 metrics: NodeMetrics, committer: Committer,
                 is_next_proposer: Callable[[int], bool] = lambda height: False,
                 consensus_height: Callable[[], int] = lambda: -1) -> None:
        self.store, self.mempool, self.genesis, self.key = store, mempool, genesis, key
        self.options, self.metrics, self.committer = options, metrics, committer
        self.chain_id = genesis.chain_id
        self.is_next_proposer, self.consensus_height = is_next_proposer, consensus_height
        self._executions: OrderedDict[bytes, chain.BlockExecution] = OrderedDict()
        self._per_tx_s = 0.0  # moving average of block execution time per tx
        self._prebuilt: tuple[int, bytes, chain.BlockExecution, list] | None = None  # (height, parent hash, ...)
        self._prebuild_task: asyncio.Future | None = None
        self._prebuild_height = -1
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    # ---- validator sets ------------------------------------------------------------------------------

    def get_validators_at(self, height: int) -> tuple[bytes, ...]:
        """V(height) from the committed state (answers any height up to head + 2)."""
        return validator_sets.get_validators_at(self.store, height)

    def get_scheduled_change(self, height: int) -> ValidatorSetScheduled | None:
        """After committing block ``height``: the set it scheduled for ``height + 2``, or None if it changed none."""
        new = self.get_validators_at(height + 2)
        return ValidatorSetScheduled(height + 2, new) if new != self.get_validators_at(height + 1) else None

    # ---- mempool views ---------------------------------------------------------------------------

    def head_header(self) -> Header:
        """The header of the last committed block."""
        return self.store.get_header(self.store.head().height)

    def pending_count(self) -> int:
        """Txs in the mempool that can run now (gapped ones wait for their missing nonce: they make no block)."""
        return self.mempool.runnable_count()

    def get_sweep_due_in_ms(self) -> float | None:
        """Milliseconds until the earliest due entry (expiry, SLA) comes due on our clock (<= 0: due now).

        None when every due queue is empty. A block whose timestamp reaches it starts with the block-sweep.
        """
        next_due = sweeps.get_next_due(self.store)
        return None if next_due is None else float(next_due - now_ms())

    def expire_gapped(self) -> list[bytes]:
        """Evict the txs that waited on a nonce gap for too long (housekeeping); return their hashes."""
        return self.mempool.expire()

    def get_parent_age_ms(self) -> float:
        """Milliseconds from the head block's timestamp to our wall clock now (negative if it is ahead)."""
        return float(now_ms() - self.committer.head_timestamp_ms)

    def get_last_commit_time(self) -> float:
        """Monotonic time of the last commit (or of the node's start)."""
        return self.committer.get_last_commit_time()

    def mempool_select(self, max_txs: int | None = None) -> list[SignedTx]:
        """The proposer's candidates: per-sender nonce order, bounded by the block limits (and ``max_txs``)."""
        count = self.options.block_max_txs if max_txs is None else min(max_txs, self.options.block_max_txs)
        return self.mempool.select(count, self.options.block_max_bytes, self.committer.get_nonce)

    def decode_known(self, raw: bytes) -> SignedTx:
        """``decode_tx(raw)``, answered from the envelopes this node admitted when it has seen these bytes."""
        tx = self.committer.decoded.get(raw)
        return tx if tx is not None else decode_tx(raw)

    def is_known_verified(self, tx: SignedTx) -> bool:
        """True when this exact envelope (same raw bytes) sits in the mempool: its signatures were checked."""
        pending = self.mempool.get(tx.tx_hash)
        return pending is not None and pending.raw == tx.raw

    def evict_rejected(self, rejected) -> list[bytes]:
        """Drop txs the block builder refused for good, keeping the reason; return the evicted hashes.

        A ``nonce_gap`` tx stays pending: it becomes valid once the missing nonce commits (the mempool
        bounds it by its per-sender and global limits, and drops it as ``nonce_stale`` if it is overtaken).
        """
        evicted = []
        for tx, err in rejected:
            if err.code == reasons.NONCE_GAP:
                continue
            if self.mempool.evict(tx.tx_hash, err.code, err.message):
                evicted.append(tx.tx_hash)
        return evicted

    # ---- block size ------------------------------------------------------------------------------

    def get_block_target(self) -> int:
        """Txs per block: the configured max, lowered so that executing a block stays within a time budget.

        The budget is ``BLOCK_TIME_SHARE`` of the base round timeout; the per-tx cost is a moving average of
        what this node measured building and validating blocks (so a loaded machine makes smaller blocks
        instead of blocks that outlast the round timer on every validator).
        """
        opts = self.options
        budget_s = opts.base_timeout_ms / 1000.0 * BLOCK_TIME_SHARE
        by_time = int(budget_s / self._per_tx_s) if self._per_tx_s > 0 else opts.block_max_txs
        return max(MIN_BLOCK_TXS, min(opts.block_max_txs, by_time))

    def _observe_execution(self, seconds: float, txs: int) -> None:
        self.metrics.block_execution.observe(seconds)
        if txs >= MIN_SAMPLE_TXS:
            sample = seconds / txs
            self._per_tx_s = sample if self._per_tx_s <= 0 else (1 - EWMA) * self._per_tx_s + EWMA * sample

    # ---- blocks ----------------------------------------------------------------------------------

    def _get_cached(self, block: Block) -> "chain.BlockExecution | None":
        """The cached execution of this very block: same hash *and* same body.

        The hash covers the header only; a copy with the honest header and a corrupted body must never ride
        on the verdict (or the execution) of the honest copy, so the txs are compared too.
        """
        execution = self._executions.get(block.hash)
        if execution is None or execution.block.txs != block.txs:
            return None
        return execution

    def _remember(self, execution: "chain.BlockExecution") -> None:
        self._executions[execution.block.hash] = execution
        while len(self._executions) > MAX_EXEC_CACHE:
            self._executions.popitem(last=False)

    def process_request_block(self, action: RequestBlock) -> BlockProposalReady | None:
        """Build a block for (height, round) from the mempool on top of the head; None if not at that height."""
        parent = self.head_header()
        if parent.height + 1 != action.height:
            log.warning("asked to build height %d while the head is %d; skipped", action.height, parent.height)
            return None
        prebuilt, self._prebuilt = self._prebuilt, None
        if (action.round == 0 and prebuilt is not None and prebuilt[0] == action.height
                and prebuilt[1] == parent.hash()):
            _, _, execution, rejected = prebuilt
            if rejected:
                self.evict_rejected(rejected)
            self._remember(execution)
            log.debug("proposing the pre-built block %d: %d txs", action.height, len(execution.block.txs))
            return BlockProposalReady(action.height, action.round, execution.block)
        t0 = time.perf_counter()
        target = self.get_block_target()
        if action.round > 0:  # a round timed out: its timer is longer, but a smaller block is likelier to fit
            target = max(MIN_BLOCK_TXS, target // 2)
        candidates = self.mempool_select(target)
        timestamp = max(now_ms(), parent.timestamp_ms + 1)
        # The mempool verified every candidate's signatures at admission: not again here.
        execution, rejected = chain.build_block(
            self.store, self.store, parent, candidates, timestamp, self.key.public_key,
            self.genesis.validator_set_hash, chain_id=self.chain_id, max_txs=target,
            signatures_checked=True)
        self._observe_execution(time.perf_counter() - t0, len(candidates))
        log.debug("built block %d round %d: %d txs in %.0f ms (target %d)", action.height, action.round,
                  len(execution.block.txs), (time.perf_counter() - t0) * 1000, target)
        if rejected:
            self.evict_rejected(rejected)
        self._remember(execution)
        return BlockProposalReady(action.height, action.round, execution.block)

    def process_validate_block(self, action: ValidateBlock) -> BlockValidated:
        """Re-execute a proposed block against the head; answer whether it matches its header."""
        block = action.block
        if self._get_cached(block) is not None:
            return BlockValidated(action.height, block.hash, True)
        parent = self.head_header()
        if parent.height + 1 != block.height:
            return BlockValidated(action.height, block.hash, False,
                                  f"block height {block.height}; the next height here is {parent.height + 1}")
        if block.header.proposer not in self.get_validators_at(block.height):
            return BlockValidated(action.height, block.hash, False, f"proposer {block.header.proposer.hex()[:16]}… "
                                  f"is not in the validator set in force at height {block.height}")
        t0 = time.perf_counter()
        try:
            execution = chain.validate_block(self.store, self.store, parent, block, now_ms(),
                                             self.options.max_future_ms, self.genesis.validator_set_hash,
                                             known_verified=self.is_known_verified, decode=self.decode_known)
        except LedgerError as exc:
            self.metrics.remote_faults.labels("invalid_block").inc()
            log.warning("invalid block %s at height %d: %s", block.hash.hex()[:16], block.height, exc)
            return BlockValidated(action.height, block.hash, False, f"{exc.code}: {exc}")
        self._observe_execution(time.perf_counter() - t0, len(block.txs))
        log.debug("validated block %d: %d txs in %.0f ms", block.height, len(block.txs),
                  (time.perf_counter() - t0) * 1000)
        self._remember(execution)
        self._schedule_prebuild(execution)
        return BlockValidated(action.height, block.hash, True)

    def process_decide(self, action: Decide) -> ValidatorSetScheduled | None:
        """Commit the decided block with its certificate (the committer lets the mempool drop what it carried);
        return the validator-set change it scheduled, if any (``get_scheduled_change``)."""
        block: Block = action.block
        execution = self._get_cached(block)
        if execution is None:
            # Decided without our own validation (possible when we joined late): execute it now. A block
            # with a quorum certificate that does not execute here is a local fault: we cannot follow.
            parent = self.head_header()
            execution = chain.validate_block(self.store, self.store, parent, block, now_ms(), 10**12,
                                             self.genesis.validator_set_hash, known_verified=self.is_known_verified)
        self.committer.commit(block, action.seals, execution, source="consensus")
        self._executions.clear()
        return self.get_scheduled_change(block.height)

    def commit_synced(self, blocks: Sequence[tuple[Block, tuple]],
                      verify: Callable[[Block, tuple], None] | None = None,
                      scheduled: list[ValidatorSetScheduled] | None = None) -> Block | None:
        """Check, re-execute and commit blocks from catch-up in order; return the last one committed.

        ``verify(block, seals)`` runs right before each block executes, once its parent is committed, so it can
        check the certificate against the set in force at that very height; whatever it raises stops the batch
        (the blocks before stay committed). Each block that scheduled a validator-set change appends its
        ``ValidatorSetScheduled`` to ``scheduled``, in height order.

        A block whose certificate ``verify`` accepted re-executes without checking its txs' signatures again
        (an honest sealer checked these very envelopes: docs/architecture.md, catch-up); all else of
        ``validate_block`` runs, the state root included. Without ``verify`` every signature is checked.
        """
        last = None
        for block, seals in blocks:
            head = self.store.head()
            if block.height <= head.height:
                continue
            if block.height != head.height + 1:
                break
            if verify is not None:
                verify(block, seals)
            parent = self.store.get_header(head.height)
            decoded: dict[bytes, SignedTx] = {}  # each tx decoded once: validation and the commit share it
            execution = chain.validate_block(
                self.store, self.store, parent, block, now_ms(), self.options.max_future_ms,
                self.genesis.validator_set_hash, known_verified=None if verify is None else lambda tx: True,
                decode=lambda raw: decoded.get(raw) or decoded.setdefault(raw, decode_tx(raw)))
            self.committer.commit(block, seals, execution, source="sync", decoded=decoded)
            last = block
            change = self.get_scheduled_change(block.height)
            if change is not None and scheduled is not None:
                scheduled.append(change)
        return last

    def forget(self) -> None:
        """Drop cached executions and the pre-built block (after a catch-up)."""
        self._executions.clear()
        self._prebuilt = None

    # ---- pipelining: the next proposer builds while this height's votes are exchanged -------------

    def _schedule_prebuild(self, parent: "chain.BlockExecution") -> None:
        """When this node proposes the next height's round 0, start building that block on ``parent``'s state.

        The build runs on a worker thread (``_prebuild``) so this event loop keeps exchanging this height's
        votes meanwhile; at its PROPOSE timer the node then proposes the finished block (waiting for it if
        needed) instead of executing while every validator waits. If ``parent`` is not the block decided,
        the pre-built block is not used (``process_request_block`` checks the parent hash).
        """
        height = parent.header.height + 1
        if not self.is_next_proposer(height):
            return
        if self.mempool.runnable_count() == 0 and not self._is_sweep_due(parent):
            return
        if self._prebuild_task is not None and not self._prebuild_task.done():
            return
        self._prebuild_task = asyncio.ensure_future(self._prebuild(parent))
        self._prebuild_height = height

    def _is_sweep_due(self, parent: "chain.BlockExecution") -> bool:
        """True when a block built now on the pending ``parent`` would start with a block-sweep."""
        reader = PendingState(self.store, parent.state_writes)
        return sweeps.get_due_now(reader, max(now_ms(), parent.header.timestamp_ms + 1)) is not None

    async def _prebuild(self, parent: "chain.BlockExecution") -> None:
        """Build the next block on the pending ``parent`` (worker thread) and keep it for the PROPOSE timer."""
        head = self.store.head()
        if head.height + 1 != parent.header.height or self.consensus_height() != parent.header.height:
            return  # the parent committed already (or the node moved on): the normal path builds
        t0 = time.perf_counter()
        reader = PendingState(self.store, parent.state_writes)
        nodes = OverlayNodes(self.store, parent.smt_nodes)
        target = self.get_block_target()
        candidates = self.mempool.select(target, self.options.block_max_bytes,
                                         lambda sender: state.get_nonce(reader, sender))
        timestamp = max(now_ms(), parent.header.timestamp_ms + 1)
        if not candidates and sweeps.get_due_now(reader, timestamp) is None:
            return
        key, validator_set_hash, chain_id = self.key.public_key, self.genesis.validator_set_hash, self.chain_id

        def build():
            return chain.build_block(reader, nodes, parent.header, candidates, timestamp, key,
                                     validator_set_hash, chain_id=chain_id, max_txs=target,
                                     signatures_checked=True)
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prebuild")
        try:
            execution, rejected = await asyncio.get_running_loop().run_in_executor(self._pool, build)
        except LedgerError as exc:
            log.warning("pre-building block %d failed: %s", parent.header.height + 1, exc)
            return
        self._prebuilt = (parent.header.height + 1, parent.header.hash(), execution, rejected)
        self._observe_execution(time.perf_counter() - t0, len(candidates))
        log.debug("pre-built block %d: %d txs in %.0f ms", parent.header.height + 1, len(execution.block.txs),
                  (time.perf_counter() - t0) * 1000)

    async def await_prebuild(self, action: RequestBlock) -> None:
        """Before building (height, 0), let a pre-build of that height finish (bounded): it is the same work."""
        task = self._prebuild_task
        if task is None or task.done() or action.round != 0 or self._prebuild_height != action.height:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), PREBUILD_WAIT_S)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - a failed pre-build only means no shortcut
            pass

    def close(self) -> None:
        """Stop the pre-build worker thread (on stop)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
