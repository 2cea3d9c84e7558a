"""The consensus loop: one asyncio task, one queue, the replica and its driver.

Theory of operation. **One** task (``_run``) takes items from one queue: consensus events (peer messages,
timer expiries) and internal jobs (callables returning an awaitable, e.g. a batch of blocks fetched by
catch-up). The replica is only ever called from that task, and everything that changes the chain (decide,
``apply_synced``) also runs there, so a block decided by consensus and a block arriving through catch-up
can never race. Follow-up events produced by the driver (a built or validated block) are fed to the replica
before the next queue item. A local safety fault (``ConsensusSafetyError``, a WAL write that failed) stops
the loop for good and sets ``fatal``: the node must not keep voting.

Restart: ``start`` builds the replica's ``Restarted(record)`` from the newer of the two WAL records (LevelDB's
and ``<data_dir>/consensus.wal``, ``node.wal_file``) when the record is for head + 1; a record below that is
moot. A record *above* head + 1 means LevelDB lost committed blocks (a torn log) while the file kept the
votes of a later height: the replica is then not started at all — it votes nothing, and peer messages are
dropped — until catch-up brings the store to the record's height - 1 (the record is then restored) or past
it (moot). So the node never signs a vote below a height it already voted at. ``housekeeping`` re-sends this height's votes while it does not move and asks peers for
their head when no block came for ``sync_poll_ms``. Tx admission yields to this loop
(``yield_to_consensus``): consensus work always goes first.

Validator sets (the replica's contract, docs/architecture.md): ``Restarted`` carries V(h) and V(h + 1) for
h = head + 1, read from the committed state; after a block H commits — decided here or caught up — the
``ValidatorSetScheduled(H + 2, ...)`` of a change it decided is fed before any other event (a follow-up of
the commit goes to the front of the pending follow-ups; catch-up feeds every change of the batch, in
order, before ``SyncedTo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Sequence

from consensus.errors import ConsensusSafetyError
from consensus.events import Restarted, SyncedTo, ValidatorSetScheduled, WalRecord
from consensus.replica import Replica, ReplicaConfig
from ledger.block import Block
from ledger.genesis import Genesis
from ledger.keys import KeyPair
from node.driver import Driver, NetPort
from node.errors import WalWriteFailed
from node.metrics import NodeMetrics
from node.options import ServiceOptions
from node.pipeline import BlockPipeline
from node.wal_file import ConsensusWal

log = logging.getLogger("carecoin.node")

MAX_QUEUE = 10_000
ADMISSION_MAX_DEFER_S = 0.5  # admission waits at most this long for queued consensus work, per chunk
PROFILE_ENV = "CARECOIN_PROFILE"  # a directory: profile the event loop, write <node>.prof there on stop


class ConsensusLoop:
    """The replica, its driver, the queue and the consensus task (see the module docstring)."""

    def __init__(self, *, store, genesis: Genesis, key: KeyPair, options: ServiceOptions, metrics: NodeMetrics,
                 pipeline: BlockPipeline, net: NetPort, request_sync: Callable[[int], None],
                 wal: ConsensusWal | None = None) -> None:
        self.store, self.options, self.metrics, self.pipeline = store, options, metrics, pipeline
        self.request_sync, self.key = request_sync, key
        self.wal = wal if wal is not None else ConsensusWal(store)
        head = store.head()
        self.config = config = ReplicaConfig(chain_id=genesis.chain_id, validators=genesis.validator_keys,
                               base_timeout_ms=options.base_timeout_ms, max_timeout_ms=options.max_timeout_ms,
                               block_interval_ms=options.block_interval_ms,
                               max_buffered_bytes_per_signer=2 * options.max_frame_bytes)
        self.replica = Replica(config, key, head.height + 1, head.block_hash)
        self.driver = Driver(wal=self.wal, net=net, post=self.post, blocks=pipeline, request_sync=request_sync,
                             metrics=metrics, empty_block_interval_ms=options.empty_block_interval_ms)
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []
        self._idle = asyncio.Event()  # set while the queue is empty and no step runs
        self._idle.set()
        self._last_round = 0
        self._profiler = None
        self.held: WalRecord | None = None  # a record above head + 1: vote nothing until the store reaches it
        self.fatal: BaseException | None = None
        self.started = False

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Replay the WAL into the replica and start the consensus and housekeeping tasks."""
        if self.started:
            return
        record = self.wal.load()  # the newer of LevelDB's record and the file's; raises when one is damaged
        self.started = True
        self._profile_start()
        self._queue = asyncio.Queue(maxsize=MAX_QUEUE)
        head = self.store.head()
        self._tasks.append(asyncio.create_task(self._run(), name="consensus"))
        if record is not None and record.height > head.height + 1:
            self.held = record
            log.warning("the consensus WAL holds votes at height %d round %d but the store's head is %d (a torn "
                        "LevelDB log?): voting nothing until catch-up reaches height %d", record.height,
                        record.round, head.height, record.height - 1)
            self.request_sync(record.height - 1)
        else:
            await self._restart(record)
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))

    async def _restart(self, record: WalRecord | None) -> None:
        """Start the replica from ``record`` (moot, and dropped, when it is for a height already committed)."""
        head = self.store.head()
        if record is not None and record.height != head.height + 1:
            record = None  # a record for a height already committed (or synced past) is moot
        h = head.height + 1
        sets = tuple(ValidatorSetScheduled(x, self.pipeline.get_validators_at(x)) for x in (h, h + 1))
        await self._step(Restarted(record, validator_sets=sets))

    async def _release_held(self) -> None:
        """The store caught up to (or past) the held record's height - 1: start the replica from it there."""
        record, head = self.held, self.store.head()
        if record is None or head.height + 1 < record.height:
            return
        self.held = None
        self.replica = Replica(self.config, self.key, head.height + 1, head.block_hash)
        log.info("the store reached height %d: consensus starts %s", head.height,
                 "from the held WAL record" if record.height == head.height + 1 else "afresh (the record is moot)")
        await self._restart(record)

    async def stop(self) -> None:
        """Cancel timers and tasks and stop the pre-build worker."""
        if not self.started:
            return
        self.started = False
        self.driver.cancel_timers()
        self.pipeline.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._profile_stop()

    def _profile_start(self) -> None:
        """With ``CARECOIN_PROFILE=DIR`` set, profile the event-loop thread (written on stop)."""
        self._profiler = None
        if os.environ.get(PROFILE_ENV):
            import cProfile
            self._profiler = cProfile.Profile()
            self._profiler.enable()

    def _profile_stop(self) -> None:
        profiler, self._profiler = self._profiler, None
        if profiler is not None:
            profiler.disable()
            out = Path(os.environ[PROFILE_ENV]) / f"{self.options.name}.prof"
            out.parent.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(str(out))
            log.warning("profile written to %s", out)

    # ---- the consensus task ----------------------------------------------------------------------

    def post(self, event: Any) -> None:
        """Queue a consensus event or an internal job (callable returning an awaitable) for the consensus task."""
        if self._queue is None:
            return
        try:
            self._queue.put_nowait(event)
            self._idle.clear()
        except asyncio.QueueFull:
            self.metrics.remote_faults.labels("queue_full").inc()

    async def _run(self) -> None:
        while True:
            if self._queue.empty():
                self._idle.set()
            item = await self._queue.get()
            self._idle.clear()
            try:
                if callable(item):
                    await item()
                elif self.held is None:
                    await self._step(item)
                # else: the replica waits for catch-up (``held``) and takes no event before it starts
            except (ConsensusSafetyError, WalWriteFailed) as exc:
                self._idle.set()
                await self._fail(exc)
                return
            except Exception:  # a bug: keep the node alive, say so loudly
                log.exception("consensus step failed on %s", type(item).__name__)

    async def yield_to_consensus(self) -> None:
        """Let queued consensus work run first (bounded wait): tx admission is the lower priority."""
        if self._idle.is_set():
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(self._idle.wait(), ADMISSION_MAX_DEFER_S)
        except asyncio.TimeoutError:
            pass

    async def _step(self, event: Any) -> None:
        """Feed ``event`` and its follow-ups to the replica, carrying out every action in order."""
        pending = deque([event])
        while pending:
            actions = self.replica.handle(pending.popleft())
            for follow in await self.driver.execute(actions):
                if isinstance(follow, ValidatorSetScheduled):
                    pending.appendleft(follow)  # a commit's set change goes before any other event
                else:
                    pending.append(follow)
        if self.replica.round > self._last_round:
            self.metrics.round_changes.inc(self.replica.round - self._last_round)
            log.info("height %d: round %d -> %d (mempool %d)", self.replica.height, self._last_round,
                     self.replica.round, self.pipeline.pending_count())
        self._last_round = self.replica.round
        self.metrics.round.set(self.replica.round)

    async def _fail(self, exc: BaseException) -> None:
        log.critical("LOCAL SAFETY FAULT, consensus stopped: %s", exc)
        self.fatal = exc
        self.driver.cancel_timers()

    async def _housekeeping(self) -> None:
        """Retransmit this height's votes while stuck, ask peers for their head when no block came, and evict
        mempool txs that waited on a nonce gap for too long."""
        period = max(self.options.retransmit_ms, 50) / 1000.0
        while True:
            await asyncio.sleep(period)
            if self.fatal is not None:
                return
            self.pipeline.expire_gapped()
            height = self.replica.height if self.held is None else self.held.height - 1
            idle = time.monotonic() - self.pipeline.get_last_commit_time()
            if idle >= period:
                self.post(lambda h=height: self.driver.retransmit(h))
            if idle * 1000 >= self.options.sync_poll_ms:
                self.request_sync(height)

    def on_link_up(self) -> None:
        """A peer link came up: re-send this height's votes so a restarted peer hears them at once."""
        if self.started:
            self.post(lambda h=self.replica.height: self.driver.retransmit(h))

    async def apply_synced(self, blocks: Sequence[tuple[Block, tuple]],
                           verify: Callable[[Block, tuple], None] | None = None) -> int:
        """Verify (``verify(block, seals)``, right before each block runs), re-execute and commit fetched
        blocks; feed the replica the validator-set changes they decided, then ``SyncedTo``. Returns head.

        Runs on the consensus task (catch-up posts it as a job; it yields to the event loop between blocks so
        the next batch is fetched meanwhile, and no other consensus event runs before it ends). When ``verify``
        or re-execution refuses a block, the blocks before it stay committed, the replica is told about them,
        and the error is raised.
        """
        scheduled: list[ValidatorSetScheduled] = []
        before = self.store.head().height
        try:
            for one in blocks:  # block by block, yielding between: the next batch's fetch runs meanwhile
                if self.pipeline.commit_synced([one], verify, scheduled) is None and one[0].height > \
                        self.store.head().height:
                    break  # not the next height: the rest cannot follow either
                await asyncio.sleep(0)
        finally:
            head = self.store.head()
            if head.height > before:
                await self._after_synced(head, scheduled)
        return head.height

    async def _after_synced(self, head, scheduled: list[ValidatorSetScheduled]) -> None:
        self.pipeline.forget()
        self.driver.forget_height(head.height + 1)
        if self.held is not None:
            await self._release_held()  # the replica is built afresh there, with V from the store
            return
        for change in scheduled:  # rule 2 of the contract, for every block of the batch, in order
            await self._step(change)
        await self._step(SyncedTo(head.height, head.block_hash))
