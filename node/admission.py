"""Tx admission: client submissions (one tx or a batch) and gossiped txs from peers, into the mempool.

Theory of operation. ``submit_tx``/``submit_txs`` decode each envelope, run the ledger's admission check
(signatures, chain id; ``ledger.chain.check_admissible``) once through ``Mempool.add``, keep the decoded
envelope and the submit time for the commit path (``Committer.decoded``/``submitted``), wake a PROPOSE timer
held for lack of txs (``on_admitted``) and gossip what was admitted (``tx`` frame for one, ``txs`` frame —
a msgpack list of envelopes — for a batch). Large batches are admitted in chunks of ``ADMIT_CHUNK`` with a
yield to the consensus loop between chunks (``yield_to_consensus``): consensus goes first.

Gossiped batches are queued (bounded by ``MAX_GOSSIP_BACKLOG``: beyond it a batch is dropped; its origin
node keeps the txs pending, so they still commit) and admitted by one background task, so a link's read
loop is free for consensus frames at once. After a local fault (``stopped()`` is not None) every submission
is refused with ``NodeStopped``. A system transaction (``block-sweep``: a block's proposer makes it) is refused
from clients and peers alike, with the admission code ``system_tx``.

With a signature-check pool (``node.verify_pool``, ``[node] verify_workers`` > 0) a client batch, or the
gossiped batches waiting together (up to ``GOSSIP_TAKE`` txs), is first handed to the pool as a whole; the
chunks are then admitted in order exactly as without it, each tx taking its worker's signature verdict in
place of the in-loop check (``_check_verified``). A batch the pool cannot check is verified in the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Awaitable, Callable, Sequence

from ledger import chain, codec, reasons, state
from ledger.errors import LedgerError
from ledger.tx import SignedTx, decode_tx
from node.committer import Committer
from node.errors import NodeError, NodeStopped
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node.verify_pool import Verdict, VerifyPool

log = logging.getLogger("carecoin.node")

CHANNEL_TX = "tx"
CHANNEL_TXS = "txs"  # a batch of gossiped txs: msgpack list of envelopes
ADMIT_CHUNK = 25  # txs admitted between two yields to the event loop
MAX_GOSSIP_BACKLOG = 50_000  # gossiped txs waiting for admission; beyond, a batch is dropped (origin keeps it)
GOSSIP_TAKE = 200  # with a verify pool: gossiped txs taken together, so each pool call carries ~100 signatures

Broadcast = Callable[[str, bytes], Awaitable]


class Admission:
    """Admits txs into the mempool and gossips them (see the module docstring)."""

    def __init__(self, *, store, chain_id: str, mempool: Mempool, committer: Committer, metrics: NodeMetrics,
                 mempool_max_count: int, on_admitted: Callable[[], None],
                 stopped: Callable[[], BaseException | None],
                 yield_to_consensus: Callable[[], Awaitable[None]], broadcast: Broadcast | None = None,
                 verify_pool: VerifyPool | None = None) -> None:
        self.store, self.chain_id, self.mempool, self.committer = store, chain_id, mempool, committer
        self.metrics, self.mempool_max_count = metrics, mempool_max_count
        self.on_admitted, self.stopped, self.yield_to_consensus = on_admitted, stopped, yield_to_consensus
        self.broadcast = broadcast
        self._gossip_queue: deque[list[bytes]] = deque()  # gossiped tx batches waiting for admission
        self._gossip_backlog = 0
        self._gossip_wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.verify_pool = verify_pool
        self._pool_start: asyncio.Task | None = None

    def _check(self, tx: SignedTx) -> None:
        chain.check_admissible(self.store, tx, self.chain_id)

    def _check_verified(self, verdict: Verdict) -> Callable[[SignedTx], None]:
        """The admission check of one tx whose signatures a pool worker checked (``verdict``): the same rules
        in the same order, the worker's verdict as the last step; a verdict for another tx, or none, is
        replaced by the in-loop check."""
        def check(tx: SignedTx) -> None:
            if verdict is None or verdict[0] != tx.tx_hash:
                chain.check_admissible(self.store, tx, self.chain_id)
                return
            chain.check_admission(self.store, tx, self.chain_id, exact_nonce=False, verify_signatures=False)
            if verdict[1] is not None:
                raise reasons.invalid_tx(reasons.BAD_SIGNATURE, verdict[1])
        return check

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the gossip admission task, and the signature-check pool's workers in the background (until
        they answer, signatures are checked in the loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._admit_gossip(), name="gossip-admission")
        if self.verify_pool is not None and self._pool_start is None:
            self._pool_start = asyncio.create_task(self.verify_pool.start(), name="verify-pool-start")

    async def stop(self) -> None:
        """Cancel the gossip admission task; stop the signature-check pool (bounded: no worker outlives it)."""
        for task in (self._task, self._pool_start):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping: nothing to report
                    pass
        self._task = self._pool_start = None
        if self.verify_pool is not None:
            await self.verify_pool.stop()

    # ---- client submissions ----------------------------------------------------------------------

    def submit_tx(self, raw: bytes, *, gossip: bool = True) -> SignedTx:
        """Admit a raw envelope to the mempool (raises LedgerError / NodeError) and gossip it to peers."""
        fatal = self.stopped()
        if fatal is not None:
            raise NodeStopped(f"the node stopped after a local fault: {fatal}")
        tx = decode_tx(raw)
        chain.check_not_system(tx)  # before the mempool's nonce rules: name the real problem
        self.mempool.add(tx, self._check)
        self.committer.decoded[tx.raw] = tx
        self.on_admitted()
        self.metrics.submitted_txs.inc()
        self.committer.submitted[tx.tx_hash] = time.monotonic()
        self.committer.trim_submitted()
        if gossip and self.broadcast is not None:
            _spawn(self.broadcast(CHANNEL_TX, tx.raw))
        return tx

    def submit_txs(self, raws: Sequence[bytes], *, gossip: bool = True,
                   verdicts: Sequence[Verdict] | None = None) -> list[SignedTx | Exception]:
        """Admit a batch of raw envelopes; one outcome per tx (the admitted ``SignedTx`` or the typed error).

        The admitted txs are gossiped to every peer in one ``txs`` frame (a msgpack list of envelopes).
        ``verdicts`` (one per envelope, from ``node.verify_pool``) stand in for the in-loop signature check.
        """
        fatal = self.stopped()
        if fatal is not None:
            raise NodeStopped(f"the node stopped after a local fault: {fatal}")
        out: list[SignedTx | Exception] = []
        admitted: list[bytes] = []
        now = time.monotonic()
        committer = self.committer
        decoded, submitted = committer.decoded, committer.submitted
        for i, raw in enumerate(raws):
            try:
                tx = decode_tx(raw)
                chain.check_not_system(tx)
                self.mempool.add(tx, self._check if verdicts is None else self._check_verified(verdicts[i]))
            except (LedgerError, NodeError) as exc:
                out.append(exc)
                continue
            out.append(tx)
            admitted.append(tx.raw)
            decoded[tx.raw] = tx
            submitted[tx.tx_hash] = now
        if admitted:
            if len(decoded) > 2 * self.mempool_max_count:
                committer.decoded = {t.raw: t for t in (self.mempool.get(h) for h in self.mempool.get_hashes())
                                     if t}
            self.on_admitted()
            self.metrics.submitted_txs.inc(len(admitted))
            committer.trim_submitted()
            if gossip and self.broadcast is not None:
                _spawn(self.broadcast(CHANNEL_TXS, codec.encode(admitted)))
        return out

    async def submit_txs_chunked(self, raws: Sequence[bytes], *, gossip: bool = True) -> list[SignedTx | Exception]:
        """``submit_txs`` in chunks of ``ADMIT_CHUNK``, yielding to the event loop (consensus) between them;
        with a signature-check pool, the whole batch's signatures are checked there first (a piece at a time)."""
        out: list[SignedTx | Exception] = []
        async for start, verdicts in self._verify_pieces(raws):
            await self.yield_to_consensus()
            out.extend(self.submit_txs(raws[start:start + ADMIT_CHUNK], gossip=gossip, verdicts=verdicts))
        return out

    async def _verify_pieces(self, raws: Sequence[bytes]):
        """``(start, verdicts or None)`` for each ``ADMIT_CHUNK`` of ``raws``, in order; the verdicts come from
        the signature-check pool (None without one, or when it failed: the chunk is verified in the loop)."""
        pool = self.verify_pool
        futures = pool.check(raws) if pool is not None else None
        if futures is None:
            for start in range(0, len(raws), ADMIT_CHUNK):
                yield start, None
            return
        piece = pool.piece
        for index, future in enumerate(futures):
            base = index * piece
            count = min(piece, len(raws) - base)
            verdicts = await pool.get(future, count)
            for start in range(base, base + count, ADMIT_CHUNK):
                yield start, (verdicts[start - base:start - base + ADMIT_CHUNK] if verdicts is not None else None)

    # ---- gossip ----------------------------------------------------------------------------------

    def on_gossip_tx(self, payload: bytes) -> None:
        """A ``tx`` frame from a peer: admit it now (no re-gossip)."""
        try:
            self.submit_tx(payload, gossip=False)
        except (LedgerError, NodeError) as exc:
            # Duplicates are normal (every node gossips to every node); anything else is counted.
            if getattr(exc, "code", "") != "duplicate_tx":
                self.metrics.rejected_txs.labels(getattr(exc, "code", "error")).inc()

    def on_gossip_batch(self, payload: bytes) -> None:
        """A ``txs`` frame from a peer: queue it for the admission task (bounded)."""
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

    async def _admit_gossip(self) -> None:
        """Admit gossiped tx batches, a chunk at a time (duplicates are normal: every node gossips to all)."""
        while True:
            if not self._gossip_queue:
                self._gossip_wake.clear()
                await self._gossip_wake.wait()
                continue
            raws = self._gossip_queue.popleft()
            if self.verify_pool is not None and self.verify_pool.active:
                # Take the waiting batches together: one pool call per ~100 signatures, not per small frame.
                while self._gossip_queue and len(raws) + len(self._gossip_queue[0]) <= GOSSIP_TAKE:
                    raws = raws + self._gossip_queue.popleft()
            self._gossip_backlog -= len(raws)
            async for start, verdicts in self._verify_pieces(raws):
                await self.yield_to_consensus()
                if self.stopped() is not None:
                    break
                for outcome in self.submit_txs(raws[start:start + ADMIT_CHUNK], gossip=False, verdicts=verdicts):
                    code = getattr(outcome, "code", None) if isinstance(outcome, Exception) else None
                    if code is not None and code != "duplicate_tx":
                        self.metrics.rejected_txs.labels(code).inc()


def is_privileged(store, sender: bytes) -> bool:
    """True when ``sender`` holds any role or is a registered customer in the committed state.

    The mempool's reserve (``node.mempool_policy``) is kept for these senders: fresh keys cost nothing, a
    role or a registration costs an on-chain act by staff.
    """
    return (any(state.has_role(store, role, sender) for role in state.ROLE_CODES)
            or store.get_state(state.account_record_key(state.PREFIX_CUSTOMER, sender)) is not None)


def _spawn(coro: Awaitable) -> None:
    task = asyncio.ensure_future(coro)
    task.add_done_callback(_log_task_error)


def _log_task_error(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background send failed: %s", task.exception())
