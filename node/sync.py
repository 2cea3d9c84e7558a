"""Catch-up: fetch committed blocks with their commit certificates from peers and commit them (QBFT R3b).

Theory of operation. When the replica reports that peers are ahead (``RequestSync``), when the node
starts, or when no block committed for a while, ``Syncer.request(height)`` wakes one background task. The
task asks each peer's listener for its head (``GET /v1/blocks/latest``), then pulls the missing blocks from
the best one in batches (``GET /v1/blocks/{h}?format=raw``: the encoded block and certificate, hex in JSON;
up to ``FETCH_CONCURRENCY`` requests in flight), checking here that each decodes, is for this chain and
extends the one before. Each batch is handed to the consensus task as one job (``ConsensusLoop.apply_synced``)
while the next batch is fetched (pipelined: the job yields between blocks). The job, block by block, checks
the certificate right before the block runs — a quorum of distinct members of the set in force at **that**
height (``validators_at``, read from the state at its parent, so a node following from genesis walks every
validator-set change) sealed exactly that (chain id, height, block hash) — re-executes it on its parent with
``ledger.chain.validate_block`` (the state root must come out identical; the txs' signatures are not checked
again once the certificate verified: docs/architecture.md says why that is exactly as safe), commits it, and
finally feeds the replica the set changes of the batch and ``SyncedTo``. A peer that serves a bad block or
certificate is a remote fault: counted, logged, and the next peer is tried (blocks before the bad one stay
committed). Every wait is bounded; the task exits when nobody is ahead.

The syncer takes small ports, never the node: the store (head height), the chain id, ``validators_at``
(the set in force at a height <= head + 2), ``post`` (queue a job on the consensus task), ``apply_synced``
(the job's body) and ``on_fault``. ``sources`` may be replaced at any time (the node follows the set).
With ``ssl`` (a TLS network: ``node.tls.PeerTls.client``) every request goes over mutual TLS to ``https://``
(a source written ``http://`` is upgraded), presenting this node's peer certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
from typing import Any, Awaitable, Callable, Sequence

import aiohttp

from ledger.block import Block, decode_certificate, verify_certificate
from ledger.errors import LedgerError
from node.progress import CatchUpProgress

log = logging.getLogger("carecoin.sync")

BATCH = 32
FETCH_CONCURRENCY = 8  # block requests in flight to one peer
REQUEST_TIMEOUT_S = 5.0
MAX_ROUNDS = 10_000  # bound on fetch rounds per task run (each round commits >= 1 block or stops)


class SyncFault(Exception):
    """A peer served something that is not a certified block of this chain (a remote fault)."""


class _CertificateRefused(Exception):
    """Carries a refused certificate out of the consensus job (a remote fault, unlike a re-execution one)."""


def decode_raw_block(doc: Any, height: int) -> tuple[Block, tuple]:
    """Decode a ``?format=raw`` answer into (block, seals); raise SyncFault when it is malformed."""
    try:
        block = Block.decode(bytes.fromhex(doc["block"]))
        seals = decode_certificate(bytes.fromhex(doc["certificate"]))
    except (KeyError, TypeError, ValueError, LedgerError) as exc:
        raise SyncFault(f"block {height}: malformed raw block answer: {exc}") from None
    if block.height != height:
        raise SyncFault(f"asked for block {height}, got block {block.height}")
    return block, seals


def verify_synced_block(chain_id: str, validators: Sequence[bytes], block: Block, seals) -> None:
    """Raise SyncFault unless ``seals`` are a valid quorum certificate for ``block``."""
    if block.header.chain_id != chain_id:
        raise SyncFault(f"block {block.height} is for chain {block.header.chain_id!r}; expected {chain_id!r}")
    try:
        verify_certificate(chain_id, block.height, block.hash, seals, validators)
    except LedgerError as exc:
        raise SyncFault(f"block {block.height}: certificate refused: {exc}") from None


class Syncer:
    """One background catch-up task per node, woken by ``request``."""

    def __init__(self, sources: Sequence[tuple[bytes, str]], *, store, chain_id: str,
                 validators_at: Callable[[int], Sequence[bytes]], post: Callable[[Any], None],
                 apply_synced: Callable[..., Awaitable[int]],
                 on_fault: Callable[[], None] = lambda: None, batch: int = BATCH,
                 ssl: ssl_module.SSLContext | None = None, progress: CatchUpProgress | None = None) -> None:
        self.store, self.chain_id, self.validators_at = store, chain_id, validators_at
        self.post, self.apply_synced, self.on_fault = post, apply_synced, on_fault
        self.sources = list(sources)  # (peer key, http base URL)
        self.running = False
        self.batch = batch
        self._target = -1
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self.faults = 0
        self.ssl = ssl
        self.progress = progress if progress is not None else CatchUpProgress()  # a bar only at a terminal

    def request(self, height: int) -> None:
        """Make sure the node reaches at least ``height`` if some peer has it (starts the task if idle)."""
        self._target = max(self._target, height)
        if not self.sources or not self.running:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sync")

    def start(self) -> None:
        """Start answering ``request`` and catch up to whatever a peer has beyond the head."""
        self.running = True
        self.request(self.store.head().height + 1)

    async def stop(self) -> None:
        """Cancel the task and close the HTTP session."""
        self.running = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.ssl) if self.ssl is not None else None
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
                                                  connector=connector)
        return self._session

    async def _get_json(self, url: str) -> Any:
        if self.ssl is not None and url.startswith("http://"):
            url = "https://" + url[len("http://"):]
        async with self._get_session().get(url) as resp:
            if resp.status != 200:
                raise SyncFault(f"{url} answered {resp.status}")
            return await resp.json()

    async def _peer_height(self, base: str) -> int:
        try:
            doc = await self._get_json(f"{base}/v1/blocks/latest")
            return int(doc["height"])
        except (aiohttp.ClientError, asyncio.TimeoutError, SyncFault, KeyError, TypeError, ValueError):
            return -1

    async def _run(self) -> None:
        try:
            for _ in range(MAX_ROUNDS):
                if not await self._sync_round():
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not kill the node; the next request retries
            log.exception("catch-up failed")
        finally:
            self.progress.done()

    async def _sync_round(self) -> bool:
        """Pull from the best peer up to its head; return True when more may follow."""
        head = self.store.head().height
        heights = await asyncio.gather(*(self._peer_height(base) for _, base in self.sources))
        ranked = sorted(zip(heights, self.sources), key=lambda x: -x[0])
        for peer_height, (key, base) in ranked:
            if peer_height <= head:
                return False
            new_head = await self._pull(base, head, peer_height)
            if new_head > head:
                log.info("caught up to %d from %s (peer at %d)", new_head, base, peer_height)
                return True
        return False

    async def _pull(self, base: str, head: int, peer_height: int) -> int:
        """Fetch and commit batches from one peer up to ``peer_height``; return the new head height.

        Pipelined: while one batch is applied (on the consensus task, which yields between blocks), the next
        one is fetched. A fetch error or a refused certificate is that peer's fault (counted, logged); the
        blocks committed before stay, and the caller moves on (a later round may try another peer)."""
        applied = head
        fetch: asyncio.Task | None = asyncio.ensure_future(
            self._fetch(base, head + 1, min(peer_height, head + self.batch)))
        try:
            while fetch is not None:
                try:
                    blocks = await fetch
                except (aiohttp.ClientError, asyncio.TimeoutError, SyncFault) as exc:
                    self._fault(f"catch-up from {base} failed: {exc}")
                    return self.store.head().height
                last = blocks[-1][0].height
                fetch = None
                if last < peer_height:
                    fetch = asyncio.ensure_future(self._fetch(base, last + 1, min(peer_height, last + self.batch)))
                try:
                    applied = await self._apply(blocks)
                except SyncFault as exc:  # a certificate refused: that peer's fault (what came before stays)
                    self._fault(f"catch-up from {base} stopped: {exc}")
                    return self.store.head().height
                if applied < last:
                    return applied  # re-execution refused a certified block (logged by _apply)
                self.progress.update(applied, peer_height)
            return applied
        finally:
            if fetch is not None and not fetch.done():
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetch

    def _fault(self, message: str) -> None:
        self.faults += 1
        self.on_fault()
        log.warning("%s", message)

    async def _fetch(self, base: str, first: int, last: int) -> list[tuple[Block, tuple]]:
        """Blocks ``first..last`` from one peer, up to ``FETCH_CONCURRENCY`` requests in flight, checked to be of
        this chain and to extend one another."""
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(h: int) -> tuple[Block, tuple]:
            async with gate:
                doc = await self._get_json(f"{base}/v1/blocks/{h}?format=raw")
            return decode_raw_block(doc, h)

        tasks = [asyncio.ensure_future(one(h)) for h in range(first, last + 1)]
        try:
            out = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        for i, (block, _) in enumerate(out):
            h = first + i
            if block.header.chain_id != self.chain_id:
                raise SyncFault(f"block {h} is for chain {block.header.chain_id!r}; expected {self.chain_id!r}")
            if i and block.header.prev_hash != out[i - 1][0].hash:
                raise SyncFault(f"block {h} does not extend block {h - 1} served by the same peer")
        return list(out)

    def verify(self, block: Block, seals) -> None:
        """The certificate check of one block, run right before it executes (its parent is committed)."""
        verify_synced_block(self.chain_id, self.validators_at(block.height), block, seals)

    async def _apply(self, blocks: list[tuple[Block, tuple]]) -> int:
        """Run ``apply_synced`` on the consensus task and wait (bounded) for the new head height; raise
        ``SyncFault`` when a block's certificate is refused."""
        fut = asyncio.get_running_loop().create_future()

        async def job() -> None:
            try:
                fut.set_result(await self.apply_synced(blocks, self.verify))
            except SyncFault as exc:
                fut.set_exception(_CertificateRefused(str(exc)))
            except LedgerError as exc:
                fut.set_exception(SyncFault(f"re-execution refused a certified block: {exc}"))
            except BaseException as exc:
                if not fut.done():
                    fut.set_exception(exc)
                raise

        self.post(job)
        try:
            return await asyncio.wait_for(fut, timeout=60)
        except _CertificateRefused as exc:
            raise SyncFault(str(exc)) from None
        except SyncFault as exc:
            # A quorum-certified block that does not re-execute here means our state differs from the
            # network's: loud, but not a vote, so the node keeps serving reads.
            log.error("%s", exc)
            return self.store.head().height
