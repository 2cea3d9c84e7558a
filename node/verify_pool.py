"""Signature checks in worker processes, for a node with more cores than its event loop needs.

Theory of operation. ``node.toml`` ``[node] verify_workers = K`` (default 0: every Ed25519 check runs in the
event loop, as before). With K > 0 admission (``node.admission``) hands each batch of raw envelopes (a
``POST /v1/txs`` batch, or gossiped batches taken together) to ``VerifyPool.check``, which splits it into
pieces of ``PIECE_TXS`` envelopes (the per-call cost of a process pool is a few hundred µs: it must be spread
over ~100 signatures or it costs more than it saves) and runs ``verify_envelopes`` on them in K worker
processes while the loop keeps serving. A worker decodes each envelope and runs the very check admission
runs (``SignedTx.verify_signatures``) and returns, per envelope, ``(tx_hash, None)`` or ``(tx_hash, the
refusal message)``. Admission still runs every other rule in the loop, in the same order, and takes the
worker's verdict in place of the last step only when the verdict is for that very tx (same position, same
tx hash); anything else is verified in the loop. So the outcomes, messages and mempool order are those of
the in-loop path, and no tx enters the pool unverified.

Failures never stop the node: a pool that cannot start, or a worker that dies (``BrokenProcessPool``),
logs a warning, the pool is shut down, and every later check runs in the loop (``check`` returns None).
Workers are spawned (a fresh interpreter: no inherited sockets, store handles or threads), ignore SIGINT
(the node's shutdown stops them), and exit by themselves when the node process is gone (they poll their
parent). ``stop`` shuts the pool down and joins each worker for at most ``STOP_TIMEOUT_S``, then
terminates, then kills: no worker outlives ``node stop``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Sequence

from ledger.errors import SignatureError
from ledger.tx import decode_tx

log = logging.getLogger("carecoin.node")

PIECE_TXS = 100  # envelopes per worker call: amortises the pool's per-call cost (pickling, pipes, wake-ups)
START_TIMEOUT_S = 30.0  # a worker that cannot answer a ping in this long: the pool is not used
PIECE_TIMEOUT_S = 5.0  # a piece not answered in this long (a stopped or wedged worker): the pool is given up
STOP_TIMEOUT_S = 3.0  # bound on joining the workers at stop before terminate/kill
PARENT_POLL_S = 1.0  # how often a worker checks that the node process is still its parent

Verdict = tuple[bytes, "str | None"] | None  # (tx hash, None or the refusal message); None: not decodable


# ---- in the worker process ---------------------------------------------------------------------------

def verify_envelopes(raws: Sequence[bytes]) -> list[Verdict]:
    """Per envelope: ``(tx_hash, None)`` when its signatures verify, ``(tx_hash, message)`` when they do not
    (the ``SignatureError`` message admission would give), None when it does not decode."""
    out: list[Verdict] = []
    for raw in raws:
        try:
            tx = decode_tx(raw)
        except Exception:  # noqa: BLE001 - the loop decodes it again and refuses it with the real error
            out.append(None)
            continue
        try:
            tx.verify_signatures()
        except SignatureError as exc:
            out.append((tx.tx_hash, exc.message))
            continue
        out.append((tx.tx_hash, None))
    return out


def _ping() -> int:
    return os.getpid()


def _init_worker(parent_pid: int) -> None:
    """Ignore Ctrl-C (the node stops its workers) and exit when the node process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# ---- in the node -------------------------------------------------------------------------------------

class VerifyPool:
    """K worker processes checking signatures for admission (see the module docstring)."""

    def __init__(self, workers: int, *, piece: int = PIECE_TXS) -> None:
        if workers < 1:
            raise ValueError(f"verify_workers is {workers}; a pool needs at least 1")
        self.workers, self.piece = workers, piece
        self._executor: ProcessPoolExecutor | None = None
        self._ready = False  # every worker answered a ping: checks go to the pool
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self.fallbacks = 0  # checks that fell back to the loop because the pool broke

    @property
    def active(self) -> bool:
        return self._ready and self._executor is not None

    async def start(self) -> bool:
        """Start the workers and wait until each answers; False (and a warning) when the pool cannot start."""
        try:
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                                 initializer=_init_worker, initargs=(os.getpid(),))
            loop = asyncio.get_running_loop()
            pings = [loop.run_in_executor(self._executor, _ping) for _ in range(self.workers)]
            self._remember_processes()
            await asyncio.wait_for(asyncio.gather(*pings), START_TIMEOUT_S)
        except (OSError, RuntimeError, BrokenProcessPool, asyncio.TimeoutError) as exc:
            log.warning("signature-check pool of %d workers did not start (%s: %s): verifying in the event loop",
                        self.workers, type(exc).__name__, exc)
            await self.stop()
            return False
        self._remember_processes()
        self._ready = True
        log.info("signature checks run in %d worker processes", self.workers)
        return True

    def check(self, raws: Sequence[bytes]) -> list[asyncio.Future] | None:
        """Start checking ``raws``: one future per piece of ``piece`` envelopes (in order), or None when the
        pool is not running (the caller verifies in the loop). Await each with ``get``."""
        if not self.active or not raws:
            return None
        loop = asyncio.get_running_loop()
        try:
            futures = [loop.run_in_executor(self._executor, verify_envelopes, list(raws[i:i + self.piece]))
                       for i in range(0, len(raws), self.piece)]
        except (BrokenProcessPool, RuntimeError) as exc:
            self._broken(exc)
            return None
        self._remember_processes()
        return futures

    async def get(self, future: asyncio.Future, count: int) -> list[Verdict] | None:
        """A piece's verdicts (``count`` of them), or None when its worker failed (the caller verifies in the
        loop; the pool is shut down and every later check runs in the loop)."""
        # cancelling the caller cancels this wait, never the piece; a worker that stopped answering (SIGSTOP,
        # swapped out, wedged) must not hold admission: past the bound the loop verifies, as for a dead worker
        await asyncio.wait((future,), timeout=PIECE_TIMEOUT_S)
        if not future.done():
            self._broken(TimeoutError(f"a piece of {count} signatures was not answered in {PIECE_TIMEOUT_S:g} s"))
            return None
        if future.cancelled():  # the pool broke or stopped and dropped this piece
            self._broken(BrokenProcessPool("a piece was cancelled by the pool"))
            return None
        exc = future.exception()
        if exc is not None:  # BrokenProcessPool, a pickling error: never a node crash
            self._broken(exc)
            return None
        verdicts = future.result()
        if not isinstance(verdicts, list) or len(verdicts) != count:
            self._broken(ValueError(f"{len(verdicts) if isinstance(verdicts, list) else '?'} verdicts for "
                                    f"{count} envelopes"))
            return None
        return verdicts

    def _broken(self, exc: BaseException) -> None:
        self.fallbacks += 1
        if self._executor is None:
            return
        log.warning("signature-check pool failed (%s: %s): verifying in the event loop from now on",
                    type(exc).__name__, exc)
        executor, self._executor = self._executor, None
        executor.shutdown(wait=False, cancel_futures=True)  # a broken pool has ended its workers; stop joins

    def _remember_processes(self) -> None:
        executor = self._executor
        procs = getattr(executor, "_processes", None) if executor is not None else None
        for proc in (procs or {}).values():
            if proc not in self._processes:
                self._processes.append(proc)

    async def stop(self) -> None:
        """Shut the pool down; join each worker for at most ``STOP_TIMEOUT_S``, then terminate, then kill."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        procs, self._processes = self._processes, []
        if procs:
            await asyncio.to_thread(self._reap, procs, STOP_TIMEOUT_S)

    def get_pids(self) -> list[int]:
        """The worker processes' ids (tests)."""
        return [p.pid for p in self._processes if p.pid is not None]

    @staticmethod
    def _reap(procs: list, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
