"""The node service: one validator's store, chain head, replica, mempool and peer links, wired together.

Theory of operation. ``NodeService`` owns every resource of a running node. All consensus work happens on
**one** asyncio task (``_run_consensus``) that takes items from one queue: consensus events (peer messages,
timer expiries) and internal jobs (a batch of blocks fetched by catch-up). The replica is only ever called
from that task, and everything that changes the chain (``commit``) also runs there, so a block decided by
consensus and a block arriving through catch-up can never race. Follow-up events produced by the driver
(a built or validated block) are fed to the replica before the next queue item.

Restart: open the store; on an empty store commit the genesis block; build the replica at head + 1 and feed
it ``Restarted(record)`` with the WAL record when it is for that height. Peers: consensus messages arrive
on channel ``consensus`` and are queued; transactions arrive on channel ``tx`` (gossip) and go straight to
the mempool. Reads for the HTTP API (``get_*``) run on the same event loop thread, between consensus steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Sequence

from consensus.errors import ConsensusError, ConsensusSafetyError
from consensus.events import MessageReceived, Restarted, SyncedTo
from consensus.replica import Replica, ReplicaConfig
from consensus.wal import decode_record
from consensus.wire import decode_message
from ledger import chain, codec, reasons, state
from ledger.block import Block, Header
from ledger.errors import LedgerError, NotFound
from ledger.events import events_mention
from ledger.genesis import ROLES, Genesis, load_genesis
from ledger.keys import KeyPair, load_key
from ledger.storage import Store
from ledger.tx import SignedTx, decode_tx
from node.config import NodeConfig, PeerEntry
from node.driver import Driver, WalWriteFailed
from node.errors import NodeError
from node.queries import get_coin_view
from node.mempool import Mempool, MempoolLimits
from node.metrics import NodeMetrics
from node.sync import Syncer

log = logging.getLogger("carecoin.node")

CHANNEL_TX = "tx"
CHANNEL_TXS = "txs"  # a batch of gossiped txs: msgpack list of envelopes
CHANNEL_CONSENSUS = "consensus"
MAX_QUEUE = 10_000
MAX_SUBMIT_TIMES = 50_000
MAX_CACHED_BLOCK_HASHES = 256
MAX_CACHED_RESULTS = 64  # the report follower catches up every 0.25 s; this bounds memory at large blocks
ADMIT_CHUNK = 25  # txs admitted between two yields to the event loop
ADMISSION_MAX_DEFER_S = 0.5  # admission waits at most this long for queued consensus work, per chunk
MAX_GOSSIP_BACKLOG = 50_000  # gossiped txs waiting for admission; beyond, a batch is dropped (origin keeps it)
DEFAULT_EMPTY_BLOCK_INTERVAL_MS = 1000  # until node.toml's [consensus] carries empty_block_interval_ms
PROFILE_ENV = "CARECOIN_PROFILE"  # a directory: profile the event loop, write <node>.prof there on stop


class GenesisMismatch(NodeError):
    """The data dir holds a chain whose genesis block differs from the configured genesis file."""

    code = "genesis_mismatch"
    http_status = 500


class NodeStopped(NodeError):
    """The node hit a local fault (a safety violation) and stopped; it must not keep voting."""

    code = "node_stopped"
    http_status = 503


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """The knobs of a running node (node.toml's consensus, mempool and block sections, and a few internals)."""

    name: str = "node"
    base_timeout_ms: int = 1000
    max_timeout_ms: int = 30_000
    block_interval_ms: int = 200
    max_future_ms: int = 2000
    block_max_txs: int = 2000
    block_max_bytes: int = 4 * 1024 * 1024
    mempool_max_count: int = 20_000
    mempool_max_bytes: int = 32 * 1024 * 1024
    mempool_max_per_sender: int = 256
    max_frame_bytes: int = 8 * 1024 * 1024
    retransmit_ms: int = 1000  # re-send this height's votes while it does not move
    sync_poll_ms: int = 2000  # ask peers for their head when no block committed for this long
    empty_block_interval_ms: int = DEFAULT_EMPTY_BLOCK_INTERVAL_MS  # with an empty mempool, a new height waits this long after a commit

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> "ServiceOptions":
        """Map a validated node.toml onto the service options."""
        c = cfg.consensus
        return cls(name=cfg.name, base_timeout_ms=c.base_timeout_ms, max_timeout_ms=c.max_timeout_ms,
                   block_interval_ms=c.block_interval_ms, max_future_ms=c.max_future_ms,
                   block_max_txs=cfg.block.max_txs, block_max_bytes=cfg.block.max_bytes,
                   mempool_max_count=cfg.mempool.max_count, mempool_max_bytes=cfg.mempool.max_bytes,
                   mempool_max_per_sender=cfg.mempool.max_per_sender, max_frame_bytes=cfg.max_frame_bytes,
                   empty_block_interval_ms=getattr(c, "empty_block_interval_ms", DEFAULT_EMPTY_BLOCK_INTERVAL_MS))


def compute_http_url(peer_url: str) -> str:
    """The HTTP base URL of a peer's listener (``ws://h:p/peer`` -> ``http://h:p``): it serves block sync."""
    scheme, rest = peer_url.split("://", 1)
    hostport = rest.split("/", 1)[0]
    return f"{'https' if scheme == 'wss' else 'http'}://{hostport}"


class NodeService:
    """One validator node: see the module docstring."""

    def __init__(self, *, key: KeyPair, genesis: Genesis, store: Store, options: ServiceOptions | None = None,
                 peers: Sequence[PeerEntry] = ()) -> None:
        self.key = key
        self.genesis = genesis
        self.store = store
        self.options = options or ServiceOptions()
        self.chain_id = genesis.chain_id
        self.metrics = NodeMetrics()
        self.peer_entries = tuple(peers)
        if key.public_key not in genesis.validator_keys:
            log.warning("node key %s is not a genesis validator: this node will follow, not vote",
                        key.public_key.hex()[:16])
        self._ensure_genesis()
        opts = self.options
        self.mempool = Mempool(MempoolLimits(max_count=opts.mempool_max_count, max_bytes=opts.mempool_max_bytes,
                                             max_per_sender=opts.mempool_max_per_sender))
        self.driver = Driver(self)
        self.peers = None  # node.peers.PeerNetwork when this node has peers
        if self.peer_entries:
            # Imported lazily: a single-validator node needs no transport.
            from node.peers import DEFAULT_CHANNELS, PeerAddress, PeerNetwork
            names = {v.public_key: v.name for v in genesis.validators}
            addresses = [PeerAddress(p.name, p.public_key, p.url) for p in self.peer_entries]
            self.peers = PeerNetwork(self.chain_id, key, names, addresses, self._on_peer_frame,
                                     max_frame_bytes=opts.max_frame_bytes, on_link=self._on_link,
                                     channels=tuple(DEFAULT_CHANNELS) + (CHANNEL_TXS,))
        self.syncer = Syncer(self, [(p.public_key, compute_http_url(p.url)) for p in self.peer_entries])
        self.metrics.bind(lambda: len(self.mempool), lambda: len(self.get_connected_peers()))
        head = self.store.head()
        self.metrics.height.set(head.height)
        self.replica = Replica(self._replica_config(), key, head.height + 1, head.block_hash)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []
        self._submitted: OrderedDict[bytes, float] = OrderedDict()  # tx hash -> monotonic submit time
        self._block_hashes: OrderedDict[int, list[bytes]] = OrderedDict()  # height -> tx hashes (recent)
        self._recent_results: OrderedDict[int, list] = OrderedDict()  # height -> TxResults (recent), for followers
        self._gossip_queue: deque[list[bytes]] = deque()  # gossiped tx batches waiting for admission
        self._gossip_backlog = 0
        self._decoded: dict[bytes, SignedTx] = {}  # raw envelope -> decoded, for admitted txs not yet committed
        self._gossip_wake: asyncio.Event | None = None
        self._consensus_idle = asyncio.Event()  # set while the consensus queue is empty and no step runs
        self._consensus_idle.set()
        self._last_commit = time.monotonic()
        self._last_round = 0
        self._commit_waiters: list[asyncio.Future] = []
        self.fatal: BaseException | None = None
        self.started = False

    # ---- construction --------------------------------------------------------------------------------

    @classmethod
    def open(cls, cfg: NodeConfig) -> "NodeService":
        """Load key and genesis, open (and lock) the data dir, and build the service for ``cfg``."""
        key = load_key(cfg.key_file)
        genesis = load_genesis(cfg.genesis_file)
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open(str(cfg.data_dir))
        try:
            return cls(key=key, genesis=genesis, store=store, options=ServiceOptions.from_config(cfg),
                       peers=cfg.peers)
        except BaseException:
            store.close()
            raise

    def _replica_config(self) -> ReplicaConfig:
        o = self.options
        return ReplicaConfig(chain_id=self.chain_id, validators=self.genesis.validator_keys,
                             base_timeout_ms=o.base_timeout_ms, max_timeout_ms=o.max_timeout_ms,
                             block_interval_ms=o.block_interval_ms)

    def _ensure_genesis(self) -> None:
        block, execution = chain.genesis_block(self.genesis)
        if self.store.head() is None:
            self.store.commit_block(block, (), execution.results, execution.state_writes, execution.smt_nodes)
            log.info("committed the genesis block %s", block.hash.hex()[:16])
            return
        stored = self.store.get_block(0).hash
        if stored != block.hash:
            raise GenesisMismatch(f"the data dir's genesis block is {stored.hex()[:16]}…; the genesis file gives "
                                  f"{block.hash.hex()[:16]}… (wrong data dir or genesis file?)")

    # ---- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Replay the WAL into the replica, start the consensus task, the peer links and catch-up."""
        if self.started:
            return
        self.started = True
        self.loop = asyncio.get_running_loop()
        self._profile_start()
        self._queue = asyncio.Queue(maxsize=MAX_QUEUE)
        head = self.store.head()
        record = None
        raw = self.store.get_wal()
        if raw:
            try:
                record = decode_record(raw)
            except ConsensusError as exc:
                raise NodeError(f"the consensus WAL in the data dir does not decode: {exc}") from None
            if record.height != head.height + 1:
                record = None  # a record for a height already committed (or synced past) is moot
        self._tasks.append(asyncio.create_task(self._run_consensus(), name="consensus"))
        await self._step(Restarted(record))
        if self.peers is not None:
            await self.peers.start()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        self._gossip_wake = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._admit_gossip(), name="gossip-admission"))
        if self.syncer.sources:
            self.syncer.request(head.height + 1)

    async def stop(self) -> None:
        """Stop timers, tasks and peer links (the store stays open: ``close`` closes it)."""
        if not self.started:
            return
        self.started = False
        self.driver.cancel_timers()
        self.driver.close()
        await self.syncer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.peers is not None:
            await self.peers.stop()
        for fut in self._commit_waiters:
            if not fut.done():
                fut.cancel()
        self._profile_stop()

    def _profile_start(self) -> None:
        """With ``CARECOIN_PROFILE=DIR`` set, profile the event-loop thread (written on stop)."""
        self._profiler = None
        if os.environ.get(PROFILE_ENV):
            import cProfile
            self._profiler = cProfile.Profile()
            self._profiler.enable()

    def _profile_stop(self) -> None:
        profiler, self._profiler = getattr(self, "_profiler", None), None
        if profiler is not None:
            profiler.disable()
            out = Path(os.environ[PROFILE_ENV]) / f"{self.options.name}.prof"
            out.parent.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(str(out))
            log.warning("profile written to %s", out)

    def close(self) -> None:
        """Close the store (releases the LevelDB lock)."""
        self.store.close()

    # ---- the consensus task --------------------------------------------------------------------------

    def post(self, event: Any) -> None:
        """Queue a consensus event or an internal job (callable returning an awaitable) for the consensus task."""
        if self._queue is None:
            return
        try:
            self._queue.put_nowait(event)
            self._consensus_idle.clear()
        except asyncio.QueueFull:
            self.metrics.remote_faults.labels("queue_full").inc()

    async def _run_consensus(self) -> None:
        while True:
            if self._queue.empty():
                self._consensus_idle.set()
            item = await self._queue.get()
            self._consensus_idle.clear()
            try:
                if callable(item):
                    await item()
                else:
                    await self._step(item)
            except (ConsensusSafetyError, WalWriteFailed) as exc:
                self._consensus_idle.set()
                await self._fail(exc)
                return
            except Exception:  # a bug: keep the node alive, say so loudly
                log.exception("consensus step failed on %s", type(item).__name__)

    async def _yield_to_consensus(self) -> None:
        """Let queued consensus work run first (bounded wait): tx admission is the lower priority."""
        if self._consensus_idle.is_set():
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(self._consensus_idle.wait(), ADMISSION_MAX_DEFER_S)
        except asyncio.TimeoutError:
            pass

    async def _step(self, event: Any) -> None:
        """Feed ``event`` and its follow-ups to the replica, carrying out every action in order."""
        pending = deque([event])
        while pending:
            actions = self.replica.handle(pending.popleft())
            pending.extend(await self.driver.execute(actions))
        if self.replica.round > self._last_round:
            self.metrics.round_changes.inc(self.replica.round - self._last_round)
            log.info("height %d: round %d -> %d (mempool %d)", self.replica.height, self._last_round,
                     self.replica.round, len(self.mempool))
        self._last_round = self.replica.round
        self.metrics.round.set(self.replica.round)

    async def _fail(self, exc: BaseException) -> None:
        log.critical("LOCAL SAFETY FAULT, consensus stopped: %s", exc)
        self.fatal = exc
        self.driver.cancel_timers()

    async def _housekeeping(self) -> None:
        """Retransmit this height's votes while stuck, and ask peers for their head when no block came."""
        period = max(self.options.retransmit_ms, 50) / 1000.0
        while True:
            await asyncio.sleep(period)
            if self.fatal is not None:
                return
            height = self.replica.height
            idle = time.monotonic() - self._last_commit
            if idle >= period:
                self.post(lambda h=height: self.driver.retransmit(h))
            if idle * 1000 >= self.options.sync_poll_ms and self.syncer.sources:
                self.syncer.request(height)

    # ---- chain ---------------------------------------------------------------------------------------

    def head_header(self) -> Header:
        """The header of the last committed block."""
        return self.store.get_header(self.store.head().height)

    def commit(self, block: Block, seals, execution: "chain.BlockExecution", *, source: str) -> None:
        """Commit ``block`` (one synced batch), then update the mempool, metrics and waiters."""
        self.store.commit_block(block, tuple(seals), execution.results, execution.state_writes,
                                execution.smt_nodes)
        self._after_commit(block, execution, source)

    def _after_commit(self, block: Block, execution: "chain.BlockExecution", source: str) -> None:
        self._last_commit = time.monotonic()
        hashes = [r.tx_hash for r in execution.results]
        # Re-check only the block's senders: nobody else's nonce moved. The mempool knows the senders of the
        # txs it holds; the others come from this node's decoded envelopes, and only unknown ones are decoded.
        decoded = self._decoded
        senders = set()
        for raw, h in zip(block.txs, hashes):
            tx = decoded.pop(raw, None)
            if h not in self.mempool:
                senders.add((tx if tx is not None else decode_tx(raw)).body.sender)
        self._block_hashes[block.height] = hashes
        self._recent_results[block.height] = execution.results
        while len(self._block_hashes) > MAX_CACHED_BLOCK_HASHES:
            self._block_hashes.popitem(last=False)
        while len(self._recent_results) > MAX_CACHED_RESULTS:
            self._recent_results.popitem(last=False)
        self.mempool.on_block_committed(hashes, self._get_nonce, senders)
        m = self.metrics
        m.height.set(block.height)
        m.committed_blocks.inc()
        m.committed_txs.inc(len(hashes))
        if source == "sync":
            m.synced_blocks.inc()
        now = time.monotonic()
        for h in hashes:
            t0 = self._submitted.pop(h, None)
            if t0 is not None:
                m.commit_latency.observe(now - t0)
        waiters, self._commit_waiters = self._commit_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(block.height)
        log.info("committed block %d %s with %d txs (%s)", block.height, block.hash.hex()[:16], len(hashes),
                 source)

    async def apply_synced(self, blocks: Sequence[tuple[Block, tuple]]) -> int:
        """Commit already certificate-checked blocks after re-executing them; tell the replica. Returns head."""
        last = None
        for block, seals in blocks:
            head = self.store.head()
            if block.height <= head.height:
                continue
            if block.height != head.height + 1:
                break
            parent = self.store.get_header(head.height)
            execution = chain.validate_block(self.store, self.store, parent, block, int(time.time() * 1000),
                                             self.options.max_future_ms, self.genesis.validator_set_hash)
            self.commit(block, seals, execution, source="sync")
            last = block
        head = self.store.head()
        if last is not None:
            self.driver.forget_height(head.height + 1)
            await self._step(SyncedTo(head.height, head.block_hash))
        return head.height

    def request_sync(self, height: int) -> None:
        """Peers are at ``height`` or above: let the catch-up task fetch what is missing."""
        self.syncer.request(height)

    async def wait_for_commit(self, timeout_s: float) -> int | None:
        """Wait until the next block commits (bounded); return its height or None on timeout."""
        fut = self.loop.create_future()
        self._commit_waiters.append(fut)
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except asyncio.TimeoutError:
            return None

    # ---- mempool -------------------------------------------------------------------------------------

    def _get_nonce(self, sender: bytes) -> int:
        return state.get_nonce(self.store, sender)

    def _check(self, tx: SignedTx) -> None:
        chain.check_admissible(self.store, tx, self.chain_id)

    def decode_known(self, raw: bytes) -> SignedTx:
        """``decode_tx(raw)``, answered from the envelopes this node admitted when it has seen these bytes."""
        tx = self._decoded.get(raw)
        return tx if tx is not None else decode_tx(raw)

    def is_known_verified(self, tx: SignedTx) -> bool:
        """True when this exact envelope (same raw bytes) sits in the mempool: its signatures were checked."""
        pending = self.mempool.get(tx.tx_hash)
        return pending is not None and pending.raw == tx.raw

    def mempool_select(self, max_txs: int | None = None) -> list[SignedTx]:
        """The proposer's candidates: per-sender nonce order, bounded by the block limits (and ``max_txs``)."""
        count = self.options.block_max_txs if max_txs is None else min(max_txs, self.options.block_max_txs)
        return self.mempool.select(count, self.options.block_max_bytes, self._get_nonce)

    def get_last_commit_time(self) -> float:
        """Monotonic time of the last commit (or of the node's start)."""
        return self._last_commit

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

    def submit_tx(self, raw: bytes, *, gossip: bool = True) -> SignedTx:
        """Admit a raw envelope to the mempool (raises LedgerError / NodeError) and gossip it to peers."""
        if self.fatal is not None:
            raise NodeStopped(f"the node stopped after a local fault: {self.fatal}")
        tx = decode_tx(raw)
        self.mempool.add(tx, self._check)
        self._decoded[tx.raw] = tx
        self.driver.on_txs_admitted()
        self.metrics.submitted_txs.inc()
        self._submitted[tx.tx_hash] = time.monotonic()
        while len(self._submitted) > MAX_SUBMIT_TIMES:
            self._submitted.popitem(last=False)
        if gossip and self.peers is not None:
            self._spawn(self.peers.broadcast(CHANNEL_TX, tx.raw))
        return tx

    def submit_txs(self, raws: Sequence[bytes], *, gossip: bool = True) -> list[SignedTx | Exception]:
        """Admit a batch of raw envelopes; one outcome per tx (the admitted ``SignedTx`` or the typed error).

        The admitted txs are gossiped to every peer in one ``txs`` frame (a msgpack list of envelopes).
        """
        if self.fatal is not None:
            raise NodeStopped(f"the node stopped after a local fault: {self.fatal}")
        out: list[SignedTx | Exception] = []
        admitted: list[bytes] = []
        now = time.monotonic()
        for raw in raws:
            try:
                tx = decode_tx(raw)
                self.mempool.add(tx, self._check)
            except (LedgerError, NodeError) as exc:
                out.append(exc)
                continue
            out.append(tx)
            admitted.append(tx.raw)
            self._decoded[tx.raw] = tx
            self._submitted[tx.tx_hash] = now
        if admitted:
            if len(self._decoded) > 2 * self.options.mempool_max_count:
                self._decoded = {t.raw: t for t in (self.mempool.get(h) for h in self.mempool.get_hashes()) if t}
            self.driver.on_txs_admitted()
            self.metrics.submitted_txs.inc(len(admitted))
            while len(self._submitted) > MAX_SUBMIT_TIMES:
                self._submitted.popitem(last=False)
            if gossip and self.peers is not None:
                self._spawn(self.peers.broadcast(CHANNEL_TXS, codec.encode(admitted)))
        return out

    async def submit_txs_chunked(self, raws: Sequence[bytes], *, gossip: bool = True) -> list[SignedTx | Exception]:
        """``submit_txs`` in chunks of ``ADMIT_CHUNK``, yielding to the event loop (consensus) between them."""
        out: list[SignedTx | Exception] = []
        for start in range(0, len(raws), ADMIT_CHUNK):
            await self._yield_to_consensus()
            out.extend(self.submit_txs(raws[start:start + ADMIT_CHUNK], gossip=gossip))
        return out

    async def _admit_gossip(self) -> None:
        """Admit gossiped tx batches, a chunk at a time (duplicates are normal: every node gossips to all)."""
        while True:
            if not self._gossip_queue:
                self._gossip_wake.clear()
                await self._gossip_wake.wait()
                continue
            raws = self._gossip_queue.popleft()
            self._gossip_backlog -= len(raws)
            for start in range(0, len(raws), ADMIT_CHUNK):
                await self._yield_to_consensus()
                if self.fatal is not None:
                    break
                for outcome in self.submit_txs(raws[start:start + ADMIT_CHUNK], gossip=False):
                    code = getattr(outcome, "code", None) if isinstance(outcome, Exception) else None
                    if code is not None and code != "duplicate_tx":
                        self.metrics.rejected_txs.labels(code).inc()

    def _spawn(self, coro: Awaitable) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_log_task_error)

    # ---- peers ---------------------------------------------------------------------------------------

    async def _on_peer_frame(self, peer: bytes, channel: str, payload: bytes) -> None:
        if channel == CHANNEL_CONSENSUS:
            try:
                msg = decode_message(payload, max_bytes=self.options.max_frame_bytes)
            except ConsensusError as exc:
                self.metrics.remote_faults.labels("bad_message").inc()
                log.debug("dropped a bad consensus message from %s: %s", peer.hex()[:16], exc)
                return
            self.post(MessageReceived(msg))
        elif channel == CHANNEL_TXS:
            try:
                raws = codec.decode(payload)
            except LedgerError:
                raws = None
            if not isinstance(raws, list) or not all(isinstance(r, bytes) for r in raws):
                self.metrics.remote_faults.labels("bad_tx_batch").inc()
                return
            # Admission (a signature check per tx) runs on its own task in small chunks, so this link's read
            # loop is free for consensus frames at once and the consensus task gets the loop between chunks.
            if self._gossip_backlog + len(raws) > MAX_GOSSIP_BACKLOG:
                self.metrics.remote_faults.labels("gossip_backlog_full").inc()
                return  # the origin node keeps these txs pending: they still commit
            self._gossip_backlog += len(raws)
            self._gossip_queue.append(raws)
            self._gossip_wake.set()
        elif channel == CHANNEL_TX:
            try:
                self.submit_tx(payload, gossip=False)
            except (LedgerError, NodeError) as exc:
                # Duplicates are normal (every node gossips to every node); anything else is counted.
                if getattr(exc, "code", "") != "duplicate_tx":
                    self.metrics.rejected_txs.labels(getattr(exc, "code", "error")).inc()

    async def _on_link(self, peer: bytes, up: bool) -> None:
        """A link came up: re-send this height's votes so a restarted peer hears them at once."""
        if up and self.started:
            self.post(lambda h=self.replica.height: self.driver.retransmit(h))

    async def broadcast(self, channel: str, payload: bytes) -> None:
        """Send to every connected peer (no-op for a single-validator node)."""
        if self.peers is not None:
            await self.peers.broadcast(channel, payload)

    async def send(self, peer: bytes, channel: str, payload: bytes) -> None:
        """Send to one peer (no-op when it is not connected)."""
        if self.peers is not None:
            await self.peers.send(peer, channel, payload)

    def get_connected_peers(self) -> list[bytes]:
        """Public keys of the authenticated peer links."""
        return list(self.peers.connected()) if self.peers is not None else []

    # ---- reads for the API ---------------------------------------------------------------------------

    def get_status(self) -> dict[str, Any]:
        """Chain id, node name, head, round, peers, mempool size and validator key."""
        head = self.store.head()
        names = {v.public_key: v.name for v in self.genesis.validators}
        return {
            "chain_id": self.chain_id, "node": self.options.name, "height": head.height,
            "last_block_hash": head.block_hash.hex(), "state_root": head.state_root.hex(),
            "round": self.replica.round, "consensus_height": self.replica.height,
            "peers": len(self.get_connected_peers()),
            "peer_names": sorted(names.get(k, k.hex()[:16]) for k in self.get_connected_peers()),
            "validators": len(self.genesis.validators), "mempool": len(self.mempool),
            "validator": self.key.public_key.hex(), "healthy": self.fatal is None,
        }

    def get_tx_status(self, tx_hash: bytes) -> dict[str, Any]:
        """pending / committed (applied or failed with a reason) / evicted / unknown, with height and index."""
        loc = self.store.get_tx_location(tx_hash)
        if loc is not None:
            height, index = loc
            result = self.store.get_result(height, index)
            return {"tx_hash": tx_hash.hex(), "status": "committed", "height": height, "index": index,
                    "outcome": "applied" if result.status == 0 else "failed",
                    "status_code": result.status, "reason": result.reason}
        st = self.mempool.status(tx_hash)
        doc: dict[str, Any] = {"tx_hash": tx_hash.hex(), "status": st.state, "height": None}
        if st.reason:
            doc["reason"] = st.reason
        if st.detail:
            doc["detail"] = st.detail
        return doc

    def get_block_tx_hashes(self, height: int) -> list[bytes]:
        """The tx hashes of the committed block at ``height`` (recent blocks from memory, else from its results)."""
        hashes = self._block_hashes.get(height)
        if hashes is None:
            hashes = [r.tx_hash for r in self.store.get_results(height)]
        return hashes

    def get_recent_results(self, height: int) -> list | None:
        """The results of a recently committed block from memory (None when not cached: read the store)."""
        return self._recent_results.get(height)

    def get_receipt(self, tx_hash: bytes) -> dict[str, Any]:
        """The receipt of a committed tx (``NotFound`` when it is not on chain)."""
        loc = self.store.get_tx_location(tx_hash)
        if loc is None:
            raise NotFound(f"tx {tx_hash.hex()} is not committed here; no receipt")
        from ledger.receipt import build_receipt
        from ledger.validator_sets import get_validator_set_changes
        height, index = loc
        return build_receipt(self.store.get_block(height), self.store.get_results(height), index,
                             self.store.get_certificate(height), get_validator_set_changes(self.store, height))

    def get_account(self, account: bytes) -> dict[str, Any]:
        """An account at the head block's time: spendable balance (expired lots never shown), nonce, next
        nonce (counting pending txs), lots expiring within 30 days, tier, privileges, freeze, KYC and roles."""
        view = get_coin_view(self.store, account)
        view["next_nonce"] = self.get_next_nonce(account, view["nonce"])
        return view

    def get_next_nonce(self, account: bytes, state_nonce: int) -> int:
        """The nonce a new tx of ``account`` should use: after the run of its pending nonces."""
        nxt = state_nonce + 1
        for n in self.mempool.get_pending_nonces(account):
            if n == nxt:
                nxt += 1
            elif n > nxt:
                break
        return nxt

    def get_history(self, account: bytes, limit: int, before: int | None, scan: int) -> dict[str, Any]:
        """Txs sent by or touching ``account``, newest first, scanning at most ``scan`` blocks below ``before``.

        Pages end at block boundaries; ``next_before`` is the height to pass as ``before`` for the next page.
        """
        head = self.store.head().height
        top = head if before is None else min(before - 1, head)
        items: list[dict[str, Any]] = []
        h = top
        while h >= 1 and h > top - scan and len(items) < limit:
            # Most blocks of an idle chain are empty: the header says so without reading the block.
            if self.store.get_header(h).tx_count == 0:
                h -= 1
                continue
            block = self.store.get_block(h)
            if block.txs:
                results = self.store.get_results(h)
                for index in range(len(block.txs) - 1, -1, -1):
                    tx = decode_tx(block.txs[index])
                    res = results[index]
                    if tx.body.sender == account or _events_mention(res.events, account):
                        items.append({"height": h, "index": index, "tx_hash": tx.tx_hash.hex(),
                                      "kind": tx.body.kind, "sender": tx.body.sender.hex(),
                                      "nonce": tx.body.nonce,
                                      "result": "applied" if res.status == 0 else "failed",
                                      "status_code": res.status, "reason": res.reason,
                                      "events": [_jsonable(e) for e in res.events],
                                      "timestamp_ms": block.header.timestamp_ms})
                # A page ends at a block boundary (it may exceed ``limit`` by the rest of that block), so
                # paging with ``before=next_before`` never skips a tx.
            h -= 1
        return {"account": account.hex(), "items": items, "scanned_to": max(h + 1, 1),
                "next_before": h + 1 if h >= 1 else None}


def _events_mention(events, account: bytes) -> bool:
    return events_mention(events, account)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _log_task_error(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background send failed: %s", task.exception())

