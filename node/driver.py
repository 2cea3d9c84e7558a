"""Carries out the replica's actions: the only place consensus decisions touch disk, network and clock.

Theory of operation. ``Replica.handle(event)`` returns a list of actions that must be carried out **in
order**. ``Driver.execute(actions)`` walks that list on the node's single consensus task:

- ``Persist``   -> ``wal.put_wal`` *before* the next action runs, so a vote never leaves the node ahead of
  its write-ahead record (QBFT.md "What is persisted"). The node's port (``node.wal_file.ConsensusWal``)
  writes the record to ``<data_dir>/consensus.wal`` (temp file, fsync, rename, fsync the dir) and to
  LevelDB (a synced write), so a torn LevelDB log cannot take it back. Both run on the consensus task, in
  order: three fsyncs per record (file, directory, LevelDB), a few milliseconds on a loaded disk.
- ``Broadcast`` / ``SendTo`` -> the peer network, channel ``consensus`` (wire-encoded, signed messages).
  Broadcast messages of the current height are also kept (bounded) and re-sent every ``retransmit_ms``
  while the height does not move, so a peer that reconnects, or one that restarted, still hears the
  round-changes it missed (the replica treats duplicates as no-ops).
- ``StartTimer`` -> ``loop.call_later``; the expiry is posted back to the consensus queue. The replica
  drops stale expiries itself; the driver only cancels a superseded timer of the same kind to keep the
  loop's timer heap small.
- ``RequestBlock`` / ``ValidateBlock`` / ``Decide`` -> the block pipeline (``node.pipeline``), which answers
  ``BlockProposalReady`` / ``BlockValidated`` and commits decided blocks; a committed block H that decided a
  validator-set change answers ``ValidatorSetScheduled(H + 2, V(H + 2))``, which the loop feeds first.
- ``RequestSync`` -> hand the target height to the catch-up task (``node.sync``).

The driver takes small ports, never the node: ``wal`` (``put_wal``), ``net`` (``broadcast``/``send``),
``post`` (queue an event for the consensus task), ``blocks`` (the pipeline, see ``BlockPort``) and
``request_sync``. Follow-up events (``BlockProposalReady``, ``BlockValidated``) are returned to the caller,
which feeds them to the replica before it takes the next event from the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Protocol

from consensus.events import (
    TIMER_PROPOSE, BlockProposalReady, BlockValidated, Broadcast, Decide, Persist, ReportEvidence, RequestBlock,
    RequestSync, SendTo, StartTimer, TimerExpired, ValidateBlock, ValidatorSetScheduled,
)
from consensus.messages import RoundChange
from consensus.wal import encode_record
from consensus.wire import encode_message
from ledger.errors import LedgerError
from node.errors import WalWriteFailed

log = logging.getLogger("carecoin.driver")

CHANNEL_CONSENSUS = "consensus"
MAX_RETRANSMIT = 16
DEFAULT_EMPTY_BLOCK_INTERVAL_MS = 1000

__all__ = ["Driver", "WalWriteFailed", "CHANNEL_CONSENSUS"]


class WalPort(Protocol):
    def put_wal(self, raw: bytes) -> None: ...


class NetPort(Protocol):
    async def broadcast(self, channel: str, payload: bytes) -> Any: ...

    async def send(self, peer: bytes, channel: str, payload: bytes) -> Any: ...


class BlockPort(Protocol):
    """What the driver needs of the block pipeline (``node.pipeline.BlockPipeline``)."""

    def process_request_block(self, action: RequestBlock) -> BlockProposalReady | None: ...

    def process_validate_block(self, action: ValidateBlock) -> BlockValidated: ...

    def process_decide(self, action: Decide) -> ValidatorSetScheduled | None: ...

    async def await_prebuild(self, action: RequestBlock) -> None: ...

    def pending_count(self) -> int: ...  # runnable txs waiting in the mempool

    def get_sweep_due_in_ms(self) -> float | None: ...  # until the earliest due entry (None: nothing queued)

    def get_block_target(self) -> int: ...

    def get_last_commit_time(self) -> float: ...

    def get_parent_age_ms(self) -> float: ...  # our wall clock minus the head block's timestamp


class Driver:
    """Executes a replica's action lists through small ports (called only from the consensus task)."""

    def __init__(self, *, wal: WalPort, net: NetPort, post: Callable[[Any], None],
                 blocks: BlockPort | None = None, request_sync: Callable[[int], None] = lambda height: None,
                 metrics=None, empty_block_interval_ms: int = DEFAULT_EMPTY_BLOCK_INTERVAL_MS) -> None:
        self.wal, self.net, self.post, self.blocks = wal, net, post, blocks
        self.request_sync, self.metrics = request_sync, metrics
        self.empty_block_interval_ms = empty_block_interval_ms
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: dict[str, object] = {}
        self._recent: list[tuple[bool, bytes]] = []  # (is round-change, encoded) broadcast at this height
        self._recent_height = -1
        self._propose: tuple[TimerExpired, float, int] | None = None  # the armed PROPOSE timer's event

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
                await self.blocks.await_prebuild(action)
                event = self.blocks.process_request_block(action)
                if event is not None:
                    follow.append(event)
            elif isinstance(action, ValidateBlock):
                follow.append(self.blocks.process_validate_block(action))
            elif isinstance(action, Decide):
                change = self.process_decide(action)
                if change is not None:
                    follow.insert(0, change)  # before any other event (the replica's contract)
            elif isinstance(action, RequestSync):
                self.request_sync(action.height)
            elif isinstance(action, ReportEvidence):
                log.warning("equivocation by %s at height %d round %d", action.first.signer.hex()[:16],
                            action.first.height, action.first.round)
                if self.metrics is not None:
                    self.metrics.remote_faults.labels("equivocation").inc()
            else:  # a new action type the driver does not know: a bug, say so loudly
                log.error("unknown consensus action %r dropped", type(action).__name__)
        return follow

    def process_persist(self, action: Persist) -> None:
        """Write the WAL record durably (a synced write); a failure stops the node before any vote leaves."""
        try:
            self.wal.put_wal(encode_record(action.record))
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
        await self.net.broadcast(CHANNEL_CONSENSUS, raw)

    async def process_send(self, action: SendTo) -> None:
        """Send a signed message to one validator."""
        await self.net.send(action.validator, CHANNEL_CONSENSUS, encode_message(action.message))

    def process_decide(self, action: Decide) -> ValidatorSetScheduled | None:
        """Commit the decided block (the pipeline), then start the next height's retransmit set; return the
        validator-set change the block scheduled, if any."""
        change = self.blocks.process_decide(action)
        self._recent, self._recent_height = [], action.block.height + 1
        return change

    async def retransmit(self, height: int) -> int:
        """Re-send this height's broadcast messages (no-op after the height moved); return how many."""
        if self._recent_height != height:
            return 0
        for _, raw in list(self._recent):
            await self.net.broadcast(CHANNEL_CONSENSUS, raw)
        return len(self._recent)

    def forget_height(self, height: int) -> None:
        """Drop retransmit state below ``height`` (after a catch-up)."""
        if self._recent_height < height:
            self._recent, self._recent_height = [], height

    # ---- timers ----------------------------------------------------------------------------------

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
        self._loop = loop = asyncio.get_running_loop()
        self._timers[action.kind] = loop.call_later(delay_ms / 1000.0, self._fire, action.kind, event)

    def _fire(self, kind: str, event: TimerExpired) -> None:
        log.debug("timer %s fired for height %d round %d", kind, event.height, event.round)
        if kind == TIMER_PROPOSE:
            self._propose = None
        self._timers.pop(kind, None)
        self.post(event)

    def compute_propose_delay(self, interval_ms: int) -> float:
        """How long the PROPOSE timer of a new height waits (every node, so round timers stay in step).

        Only *runnable* txs count (``BlockPort.pending_count``): txs waiting on a nonce gap cannot go into a
        block, so a flood of them never makes the network race through empty blocks.

        - A full block's worth of runnable txs waits in the mempool: fire now (no block interval).
        - Some runnable txs wait: what is left of the block interval *since the parent block* (QBFT R0: the
          interval counts from the parent's timestamp, not from its commit). A parent whose consensus took
          longer than the interval is followed at once: under load the next block is cut as soon as its
          parent is committed instead of idling one more interval (in a 500 tx/s run that idle interval was
          50 ms of a ~110 ms block cycle).
        - None: hold until a tx arrives (``on_txs_admitted``) or ``empty_block_interval_ms`` has passed since
          the last commit, so an idle network makes one empty block per that interval, not one per interval —
          unless a due entry (expiry, SLA) comes due sooner: then fire when it is due (at least the block
          interval), so its block-sweep runs on time with nobody transacting. Nothing due: nothing changes.
        """
        blocks = self.blocks
        pending = blocks.pending_count()
        if pending >= blocks.get_block_target():
            return 0.0
        if pending:
            return self._get_interval_left_ms(interval_ms, 0.0)
        idle_ms = (time.monotonic() - blocks.get_last_commit_time()) * 1000.0
        hold_ms = max(float(interval_ms), self.empty_block_interval_ms - idle_ms)
        due_in_ms = blocks.get_sweep_due_in_ms()
        if due_in_ms is None:
            return hold_ms
        # +1 ms: the block's timestamp (our wall clock when it is built) must reach the entry's due time
        return min(hold_ms, max(float(interval_ms), due_in_ms + 1.0))

    def _get_interval_left_ms(self, interval_ms: float, elapsed_ms: float) -> float:
        """What is left of the block interval: it counts from the parent block's timestamp (or from when the
        timer was armed, ``elapsed_ms`` ago, if that is longer), never more than the interval itself.

        A parent timestamp ahead of our clock (a proposer's clock runs fast, within ``max_future_ms``) gives a
        negative age: the whole interval is waited, as before.
        """
        age_ms = max(self.blocks.get_parent_age_ms(), elapsed_ms)
        return min(float(interval_ms), max(0.0, interval_ms - age_ms))

    def on_txs_admitted(self) -> None:
        """New txs entered the mempool: a PROPOSE timer held for lack of txs is re-armed at the block interval.

        Nothing changes while no admitted tx can run (all of them wait on a nonce gap).
        """
        if self._propose is None or self._loop is None:
            return
        blocks = self.blocks
        pending = blocks.pending_count()
        if pending == 0:
            return
        event, armed_at, interval_ms = self._propose
        handle = self._timers.get(TIMER_PROPOSE)
        if handle is None:
            return
        elapsed_ms = (time.monotonic() - armed_at) * 1000.0
        due_ms = 0.0 if pending >= blocks.get_block_target() else self._get_interval_left_ms(interval_ms,
                                                                                              elapsed_ms)
        remaining_ms = (handle.when() - self._loop.time()) * 1000.0
        if due_ms + 1.0 < remaining_ms:
            handle.cancel()
            self._timers[TIMER_PROPOSE] = self._loop.call_later(due_ms / 1000.0, self._fire, TIMER_PROPOSE, event)

    def cancel_timers(self) -> None:
        """Cancel every armed timer (on stop)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._propose = None
