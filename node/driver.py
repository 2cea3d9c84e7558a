"""Carries out the replica's actions: the only place consensus decisions touch disk, network and clock.

Theory of operation. ``Replica.handle(event)`` returns a list of actions that must be carried out **in
order**. ``Driver.execute(actions)`` walks that list on the service's single consensus task:

- ``Persist``   -> ``store.put_wal`` (a synced LevelDB write) *before* the next action runs, so a vote never
  leaves the node ahead of its write-ahead record (QBFT.md "What is persisted"). (A synced write takes
  ~0.2 ms here: a worker thread would cost more in hand-off than it saves.)
- ``Broadcast`` / ``SendTo`` -> the peer network, channel ``consensus`` (wire-encoded, signed messages).
  Broadcast messages of the current height are also kept (bounded) and re-sent every ``retransmit_ms``
  while the height does not move, so a peer that reconnects, or one that restarted, still hears the
  round-changes it missed (the replica treats duplicates as no-ops).
- ``StartTimer`` -> ``loop.call_later``; the expiry is posted back to the consensus queue. The replica
  drops stale expiries itself; the driver only cancels a superseded timer of the same kind to keep the
  loop's timer heap small.
- ``RequestBlock`` -> pick txs from the mempool, execute them on top of the head (``ledger.chain.build_block``)
  and answer ``BlockProposalReady``. ``ValidateBlock`` -> ``ledger.chain.validate_block`` and answer
  ``BlockValidated``. Executions are cached by block hash so ``Decide`` commits without re-executing.
- ``Decide`` -> ``store.commit_block`` (one synced batch), then ``mempool.on_block_committed``.
- ``RequestSync`` -> hand the target height to the catch-up task (``node.sync``).

Follow-up events (``BlockProposalReady``, ``BlockValidated``) are returned to the caller, which feeds them
to the replica before it takes the next event from the queue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from consensus.events import (
    TIMER_PROPOSE, BlockProposalReady, BlockValidated, Broadcast, Decide, Persist, ReportEvidence, RequestBlock,
    RequestSync, SendTo, StartTimer, TimerExpired, ValidateBlock,
)
from consensus.messages import RoundChange
from consensus.wal import encode_record
from consensus.wire import encode_message
from ledger import chain, state
from ledger.block import Block
from ledger.errors import LedgerError
from ledger.smt import OverlayNodes
from node.errors import NodeError

if TYPE_CHECKING:  # pragma: no cover
    from node.service import NodeService

log = logging.getLogger("carecoin.driver")

CHANNEL_CONSENSUS = "consensus"
MAX_EXEC_CACHE = 32
MAX_RETRANSMIT = 16
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


class WalWriteFailed(NodeError):
    """The WAL could not be made durable: a local fault, the node stops voting."""

    code = "wal_write_failed"
    http_status = 503


def now_ms() -> int:
    """Wall-clock milliseconds (block timestamps and the future-timestamp bound use it)."""
    return int(time.time() * 1000)


class Driver:
    """Executes a replica's action lists for one ``NodeService`` (called only from its consensus task)."""

    def __init__(self, service: "NodeService") -> None:
        self.service = service
        self._executions: OrderedDict[bytes, chain.BlockExecution] = OrderedDict()
        self._timers: dict[str, object] = {}
        self._recent: list[tuple[bool, bytes]] = []  # (is round-change, encoded) broadcast at this height
        self._recent_height = -1
        self._propose: tuple[TimerExpired, float, int] | None = None  # the armed PROPOSE timer's event
        self._per_tx_s = 0.0  # moving average of block execution time per tx
        self._prebuilt: tuple[int, bytes, chain.BlockExecution, list] | None = None  # (height, parent hash, ...)
        self._prebuild_task: asyncio.Future | None = None
        self._prebuild_height = -1
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    # ---- the action walk -------------------------------------------------------------------------

    async def execute(self, actions: list) -> list:
        """Carry out ``actions`` in order; return the follow-up events for the replica."""
        follow: list = []
        for action in actions:
            if isinstance(action, Persist):
                self.process_persist(action)
            elif isinstance(action, Broadcast):
                await self.process_broadcast(action)
            elif isinstance(action, SendTo):
                await self.process_send(action)
            elif isinstance(action, StartTimer):
                self.process_start_timer(action)
            elif isinstance(action, RequestBlock):
                await self._await_prebuild(action)
                event = self.process_request_block(action)
                if event is not None:
                    follow.append(event)
            elif isinstance(action, ValidateBlock):
                follow.append(self.process_validate_block(action))
            elif isinstance(action, Decide):
                await self.process_decide(action)
            elif isinstance(action, RequestSync):
                self.service.request_sync(action.height)
            elif isinstance(action, ReportEvidence):
                log.warning("equivocation by %s at height %d round %d", action.first.signer.hex()[:16],
                            action.first.height, action.first.round)
                self.service.metrics.remote_faults.labels("equivocation").inc()
            else:  # a new action type the driver does not know: a bug, say so loudly
                log.error("unknown consensus action %r dropped", type(action).__name__)
        return follow

    def process_persist(self, action: Persist) -> None:
        """Write the WAL record durably (a synced write); a failure stops the node before any vote leaves."""
        try:
            self.service.store.put_wal(encode_record(action.record))
        except (OSError, LedgerError) as exc:
            raise WalWriteFailed(f"cannot write the consensus WAL: {exc}; refusing to vote") from exc

    async def process_broadcast(self, action: Broadcast) -> None:
        """Send a signed message to every other validator and keep it for retransmission."""
        raw = encode_message(action.message)
        msg = action.message
        if msg.height != self._recent_height:
            self._recent, self._recent_height = [], msg.height
        if isinstance(msg, RoundChange):
            # Only the latest round-change matters to a peer; older ones are superseded.
            self._recent = [(rc, r) for rc, r in self._recent if not rc]
        self._recent.append((isinstance(msg, RoundChange), raw))
        if len(self._recent) > MAX_RETRANSMIT:
            del self._recent[: len(self._recent) - MAX_RETRANSMIT]
        await self.service.broadcast(CHANNEL_CONSENSUS, raw)

    async def process_send(self, action: SendTo) -> None:
        """Send a signed message to one validator."""
        await self.service.send(action.validator, CHANNEL_CONSENSUS, encode_message(action.message))

    async def retransmit(self, height: int) -> int:
        """Re-send this height's broadcast messages (no-op after the height moved); return how many."""
        if self._recent_height != height:
            return 0
        for _, raw in list(self._recent):
            await self.service.broadcast(CHANNEL_CONSENSUS, raw)
        return len(self._recent)

    def process_start_timer(self, action: StartTimer) -> None:
        """Arm a timer whose expiry is posted to the consensus queue (PROPOSE is paced, see below)."""
        old = self._timers.pop(action.kind, None)
        if old is not None:
            old.cancel()
        event = TimerExpired(action.height, action.round, action.kind)
        delay_ms = max(action.delay_ms, 0)
        if action.kind == TIMER_PROPOSE:
            self._propose = (event, time.monotonic(), delay_ms)
            delay_ms = self.compute_propose_delay(delay_ms)
        loop = self.service.loop
        self._timers[action.kind] = loop.call_later(delay_ms / 1000.0, self._fire, action.kind, event)

    def _fire(self, kind: str, event: TimerExpired) -> None:
        log.debug("timer %s fired for height %d round %d", kind, event.height, event.round)
        if kind == TIMER_PROPOSE:
            self._propose = None
        self._timers.pop(kind, None)
        self.service.post(event)

    def compute_propose_delay(self, interval_ms: int) -> float:
        """How long the PROPOSE timer of a new height waits (every node, so round timers stay in step).

        - A full block's worth of txs waits in the mempool: fire now (no block interval).
        - Some txs wait: the block interval.
        - None: hold until a tx arrives (``on_txs_admitted``) or ``empty_block_interval_ms`` has passed since
          the last commit, so an idle network makes one empty block per that interval, not one per interval.
        """
        svc = self.service
        pending = len(svc.mempool)
        if pending >= self.get_block_target():
            return 0.0
        if pending:
            return interval_ms
        idle_ms = (time.monotonic() - svc.get_last_commit_time()) * 1000.0
        return max(float(interval_ms), svc.options.empty_block_interval_ms - idle_ms)

    def on_txs_admitted(self) -> None:
        """New txs entered the mempool: a PROPOSE timer held for lack of txs is re-armed at the block interval."""
        if self._propose is None or self.service.loop is None:
            return
        event, armed_at, interval_ms = self._propose
        handle = self._timers.get(TIMER_PROPOSE)
        if handle is None:
            return
        elapsed_ms = (time.monotonic() - armed_at) * 1000.0
        due_ms = 0.0 if len(self.service.mempool) >= self.get_block_target() else max(0.0, interval_ms - elapsed_ms)
        remaining_ms = (handle.when() - self.service.loop.time()) * 1000.0
        if due_ms + 1.0 < remaining_ms:
            handle.cancel()
            self._timers[TIMER_PROPOSE] = self.service.loop.call_later(due_ms / 1000.0, self._fire, TIMER_PROPOSE,
                                                                      event)

    def get_block_target(self) -> int:
        """Txs per block: the configured max, lowered so that executing a block stays within a time budget.

        The budget is ``BLOCK_TIME_SHARE`` of the base round timeout; the per-tx cost is a moving average of
        what this node measured building and validating blocks (so a loaded machine makes smaller blocks
        instead of blocks that outlast the round timer on every validator).
        """
        opts = self.service.options
        budget_s = opts.base_timeout_ms / 1000.0 * BLOCK_TIME_SHARE
        by_time = int(budget_s / self._per_tx_s) if self._per_tx_s > 0 else opts.block_max_txs
        return max(MIN_BLOCK_TXS, min(opts.block_max_txs, by_time))

    def _observe_execution(self, seconds: float, txs: int) -> None:
        self.service.metrics.block_execution.observe(seconds)
        if txs >= MIN_SAMPLE_TXS:
            sample = seconds / txs
            self._per_tx_s = sample if self._per_tx_s <= 0 else (1 - EWMA) * self._per_tx_s + EWMA * sample

    def cancel_timers(self) -> None:
        """Cancel every armed timer (on stop)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._propose = None

    # ---- blocks ----------------------------------------------------------------------------------

    def _remember(self, execution: "chain.BlockExecution") -> None:
        self._executions[execution.block.hash] = execution
        while len(self._executions) > MAX_EXEC_CACHE:
            self._executions.popitem(last=False)

    def process_request_block(self, action: RequestBlock) -> BlockProposalReady | None:
        """Build a block for (height, round) from the mempool on top of the head; None if not at that height."""
        svc = self.service
        parent = svc.head_header()
        if parent.height + 1 != action.height:
            log.warning("asked to build height %d while the head is %d; skipped", action.height, parent.height)
            return None
        prebuilt, self._prebuilt = self._prebuilt, None
        if (action.round == 0 and prebuilt is not None and prebuilt[0] == action.height
                and prebuilt[1] == parent.hash()):
            _, _, execution, rejected = prebuilt
            if rejected:
                svc.evict_rejected(rejected)
            self._remember(execution)
            log.debug("proposing the pre-built block %d: %d txs", action.height, len(execution.block.txs))
            return BlockProposalReady(action.height, action.round, execution.block)
        t0 = time.perf_counter()
        target = self.get_block_target()
        if action.round > 0:  # a round timed out: its timer is longer, but a smaller block is likelier to fit
            target = max(MIN_BLOCK_TXS, target // 2)
        candidates = svc.mempool_select(target)
        timestamp = max(now_ms(), parent.timestamp_ms + 1)
        # The mempool verified every candidate's signatures at admission: not again here.
        execution, rejected = chain.build_block(
            svc.store, svc.store, parent, candidates, timestamp, svc.key.public_key,
            svc.genesis.validator_set_hash, chain_id=svc.chain_id, max_txs=target,
            signatures_checked=True)
        self._observe_execution(time.perf_counter() - t0, len(candidates))
        log.debug("built block %d round %d: %d txs in %.0f ms (target %d)", action.height, action.round,
                  len(execution.block.txs), (time.perf_counter() - t0) * 1000, target)
        if rejected:
            svc.evict_rejected(rejected)
        self._remember(execution)
        return BlockProposalReady(action.height, action.round, execution.block)

    def process_validate_block(self, action: ValidateBlock) -> BlockValidated:
        """Re-execute a proposed block against the head; answer whether it matches its header."""
        block = action.block
        if block.hash in self._executions:
            return BlockValidated(action.height, block.hash, True)
        svc = self.service
        parent = svc.head_header()
        if parent.height + 1 != block.height:
            return BlockValidated(action.height, block.hash, False,
                                  f"block height {block.height}; the next height here is {parent.height + 1}")
        t0 = time.perf_counter()
        try:
            execution = chain.validate_block(svc.store, svc.store, parent, block, now_ms(),
                                             svc.options.max_future_ms, svc.genesis.validator_set_hash,
                                             known_verified=svc.is_known_verified, decode=svc.decode_known)
        except LedgerError as exc:
            svc.metrics.remote_faults.labels("invalid_block").inc()
            log.warning("invalid block %s at height %d: %s", block.hash.hex()[:16], block.height, exc)
            return BlockValidated(action.height, block.hash, False, f"{exc.code}: {exc}")
        self._observe_execution(time.perf_counter() - t0, len(block.txs))
        log.debug("validated block %d: %d txs in %.0f ms", block.height, len(block.txs),
                  (time.perf_counter() - t0) * 1000)
        self._remember(execution)
        self._schedule_prebuild(execution)
        return BlockValidated(action.height, block.hash, True)

    # ---- pipelining: the next proposer builds while this height's votes are exchanged -------------

    def _schedule_prebuild(self, parent: "chain.BlockExecution") -> None:
        """When this node proposes the next height's round 0, start building that block on ``parent``'s state.

        The build runs on a worker thread (``_prebuild``) so this event loop keeps exchanging this height's
        votes meanwhile; at its PROPOSE timer the node then proposes the finished block (waiting for it if
        needed) instead of executing while every validator waits. If ``parent`` is not the block decided,
        the pre-built block is not used (``process_request_block`` checks the parent hash).
        """
        svc = self.service
        height = parent.header.height + 1
        if svc.replica.proposer(height, 0) != svc.key.public_key or len(svc.mempool) == 0:
            return
        if self._prebuild_task is not None and not self._prebuild_task.done():
            return
        self._prebuild_task = asyncio.ensure_future(self._prebuild(parent))
        self._prebuild_height = height

    async def _prebuild(self, parent: "chain.BlockExecution") -> None:
        """Build the next block on the pending ``parent`` (worker thread) and keep it for the PROPOSE timer."""
        svc = self.service
        head = svc.store.head()
        if head.height + 1 != parent.header.height or svc.replica.height != parent.header.height:
            return  # the parent committed already (or the node moved on): the normal path builds
        t0 = time.perf_counter()
        reader = PendingState(svc.store, parent.state_writes)
        nodes = OverlayNodes(svc.store, parent.smt_nodes)
        target = self.get_block_target()
        candidates = svc.mempool.select(target, svc.options.block_max_bytes,
                                        lambda sender: state.get_nonce(reader, sender))
        if not candidates:
            return
        timestamp = max(now_ms(), parent.header.timestamp_ms + 1)

        def build():
            return chain.build_block(reader, nodes, parent.header, candidates, timestamp, svc.key.public_key,
                                     svc.genesis.validator_set_hash, chain_id=svc.chain_id, max_txs=target,
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

    async def _await_prebuild(self, action: RequestBlock) -> None:
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

    async def process_decide(self, action: Decide) -> None:
        """Commit the decided block with its certificate, then let the mempool drop what it carried."""
        block: Block = action.block
        execution = self._executions.get(block.hash)
        svc = self.service
        if execution is None:
            # Decided without our own validation (possible when we joined late): execute it now. A block
            # with a quorum certificate that does not execute here is a local fault: we cannot follow.
            parent = svc.head_header()
            execution = chain.validate_block(svc.store, svc.store, parent, block, now_ms(), 10**12,
                                             svc.genesis.validator_set_hash, known_verified=svc.is_known_verified)
        svc.commit(block, action.seals, execution, source="consensus")
        self._executions.clear()
        self._recent, self._recent_height = [], block.height + 1

    def forget_height(self, height: int) -> None:
        """Drop cached executions and retransmit state below ``height`` (after a catch-up)."""
        self._executions.clear()
        self._prebuilt = None
        if self._recent_height < height:
            self._recent, self._recent_height = [], height

