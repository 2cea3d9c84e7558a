"""Signature checks in worker processes (``[node] verify_workers``): the same outcomes as in the loop, a dead
worker falls back to the loop, and no worker outlives the pool."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import pytest
import pytest_asyncio

from ledger import codec
from ledger.keys import KeyPair
from ledger.tx import SignedTx, make_tx
from node.admission import ADMIT_CHUNK
from node.verify_pool import VerifyPool, verify_envelopes
from tests.node.test_service import CHAIN, FAST, open_service

POOL_START_S = 60.0  # a spawned worker imports the ledger; the machine may be busy


def forged(tx: SignedTx) -> bytes:
    """The same body (same tx hash) with a signature that does not verify."""
    return codec.encode([tx.body.to_list(), [[tx.signatures[0][0], bytes(64)]]])


def mixed_batch(issuer: KeyPair, count: int = 130) -> list[bytes]:
    """Good mints, forged signatures, duplicates, a wrong chain, a stranger's mint, a bad signature on a wrong
    chain tx (the chain rule must win), the same body first forged then genuine, and bytes that do not decode."""
    raws: list[bytes] = []
    nonce = 0
    for i in range(count):
        nonce += 1
        tx = make_tx(CHAIN, "mint", issuer, nonce, [KeyPair.generate().public_key, i + 1])
        kind = i % 10
        if kind == 3:
            raws.append(forged(tx))  # refused; this nonce is still free for the genuine one after it
            raws.append(tx.raw)
        elif kind == 5:
            raws.append(tx.raw)
            raws.append(tx.raw)  # duplicate
        elif kind == 7:
            raws.append(forged(make_tx("other-chain", "mint", issuer, nonce, [issuer.public_key, 1])))
            raws.append(tx.raw)
        elif kind == 8:
            raws.append(forged(make_tx(CHAIN, "mint", KeyPair.generate(), 1, [issuer.public_key, 1])))
            raws.append(b"\x93not an envelope")
            raws.append(tx.raw)
        else:
            raws.append(tx.raw)
    return raws


def describe(outcomes) -> list[tuple]:
    return [(type(o).__name__, getattr(o, "code", None), getattr(o, "message", None)) if isinstance(o, Exception)
            else ("admitted", o.tx_hash) for o in outcomes]


async def wait_active(pool: VerifyPool) -> None:
    deadline = time.monotonic() + POOL_START_S
    while not pool.active:
        assert time.monotonic() < deadline, "the verify pool did not start"
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited: it is only waiting to be reaped
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def test_a_worker_gives_the_refusal_message_the_loop_gives():
    issuer = KeyPair.generate()
    good = make_tx(CHAIN, "mint", issuer, 1, [issuer.public_key, 1])
    bad = forged(good)
    verdicts = verify_envelopes([good.raw, bad, b"\x00"])
    assert verdicts[0] == (good.tx_hash, None)
    assert verdicts[1][0] == good.tx_hash and "does not verify" in verdicts[1][1]
    assert verdicts[2] is None


@dataclass
class Pair:
    """The same node twice: one checking signatures in the loop, one with a one-worker pool (not started)."""

    issuer: KeyPair
    loop_svc: Any
    pool_svc: Any

    @property
    def pool(self) -> VerifyPool:
        return self.pool_svc.admission.verify_pool

    async def admit_both(self, raws: list[bytes]) -> tuple[list, list]:
        """Admit ``raws`` on the pool's node, then on the loop's; the outcomes of each."""
        in_pool = await self.pool_svc.admission.submit_txs_chunked(raws, gossip=False)
        in_loop = await self.loop_svc.admission.submit_txs_chunked(raws, gossip=False)
        return in_pool, in_loop

    def assert_same_mempools(self) -> None:
        assert self.pool_svc.mempool.get_hashes() == self.loop_svc.mempool.get_hashes()


@pytest_asyncio.fixture
async def pair(tmp_path):
    node, issuer = KeyPair.generate(), KeyPair.generate()
    p = Pair(issuer, open_service(tmp_path / "a", node, issuer),
             open_service(tmp_path / "b", node, issuer, replace(FAST, verify_workers=1)))
    try:
        yield p
    finally:
        await p.pool_svc.admission.stop()  # stops the pool too (bounded)
        p.loop_svc.close()
        p.pool_svc.close()


def pool_metrics(svc) -> tuple[float, float]:
    """(workers in use, failures) as a scrape of the node's /metrics reads them."""
    text = svc.metrics.render().decode()
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("carecoin_verify_pool"))
    return float(values["carecoin_verify_pool_workers"]), float(values["carecoin_verify_pool_failures"])


@pytest.mark.asyncio
async def test_with_one_worker_a_batch_gets_the_same_admissions_refusals_and_order_as_in_the_loop(pair):
    raws = mixed_batch(pair.issuer)
    assert len(raws) > 2 * ADMIT_CHUNK
    assert pool_metrics(pair.pool_svc) == (0, 0)  # not started: every check in the loop
    await pair.pool.start()
    assert pair.pool.active and pool_metrics(pair.pool_svc) == (1, 0)
    in_pool, in_loop = await pair.admit_both(raws)
    assert describe(in_pool) == describe(in_loop)
    codes = Counter(getattr(o, "code", "admitted") for o in in_pool)
    assert codes == {"admitted": 130, "tx_rejected": 39, "duplicate_tx": 13, "decode_error": 13}
    messages = [o.message for o in in_pool if isinstance(o, Exception)]
    assert sum("bad_signature" in m for m in messages) == 26  # forged before a genuine one; a stranger's
    assert sum("wrong_chain" in m for m in messages) == 13  # forged too: the chain rule answers first
    pair.assert_same_mempools()
    assert pair.pool.fallbacks == 0


@pytest.mark.asyncio
async def test_gossiped_batches_taken_together_by_the_pool_end_in_the_same_mempool_order(tmp_path):
    node, issuer = KeyPair.generate(), KeyPair.generate()
    raws = mixed_batch(issuer, 60)
    frames = [codec.encode(raws[i:i + ADMIT_CHUNK]) for i in range(0, len(raws), ADMIT_CHUNK)]
    loop_svc = open_service(tmp_path / "a", node, issuer)
    pool_svc = open_service(tmp_path / "b", node, issuer, replace(FAST, verify_workers=1))
    expected = len([o for o in loop_svc.admission.submit_txs(raws, gossip=False) if not isinstance(o, Exception)])
    try:
        await pool_svc.admission.start()
        await wait_active(pool_svc.admission.verify_pool)
        for frame in frames:
            pool_svc.admission.on_gossip_batch(frame)
        deadline = time.monotonic() + 30
        while len(pool_svc.mempool) < expected:
            assert time.monotonic() < deadline, f"{len(pool_svc.mempool)} of {expected} gossiped txs admitted"
            await asyncio.sleep(0.02)
        assert pool_svc.mempool.get_hashes() == loop_svc.mempool.get_hashes()
    finally:
        await pool_svc.admission.stop()
        loop_svc.close()
        pool_svc.close()


@pytest.mark.asyncio
async def test_a_killed_worker_falls_back_to_the_loop_with_the_same_outcomes_and_no_unverified_tx(pair):
    raws = mixed_batch(pair.issuer, 40)
    assert await pair.pool.start()
    pids = pair.pool.get_pids()
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(pids[0]):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    in_pool, in_loop = await pair.admit_both(raws)
    assert describe(in_pool) == describe(in_loop)
    assert not pair.pool.active and pair.pool.fallbacks >= 1
    workers, failures = pool_metrics(pair.pool_svc)
    assert workers == 0 and failures >= 1  # an operator sees the pool gone
    pair.assert_same_mempools()
    again = [make_tx(CHAIN, "mint", KeyPair.generate(), 1, [pair.issuer.public_key, 1])]
    refused = await pair.pool_svc.admission.submit_txs_chunked([forged(again[0])], gossip=False)
    assert "does not verify" in refused[0].message  # still verified, now in the loop


@pytest.mark.asyncio
async def test_stopping_the_pool_leaves_no_worker_process():
    pool = VerifyPool(2)
    try:
        assert await pool.start()
        pids = pool.get_pids()
        assert len(pids) >= 1 and all(alive(p) for p in pids)
        futures = pool.check([b"\x00"] * 250)
        assert futures is not None and len(futures) == 3
        assert await pool.get(futures[0], 100) == [None] * 100
    finally:
        started = time.monotonic()
        await pool.stop()
    assert time.monotonic() - started < 10
    assert not any(alive(p) for p in pids)
    assert pool.check([b"\x00"]) is None  # stopped: the caller verifies in the loop


@pytest.mark.asyncio
async def test_a_worker_killed_during_a_batch_leaves_the_same_outcomes_as_in_the_loop(pair):
    raws = mixed_batch(pair.issuer, 400)
    assert await pair.pool.start()
    pid = pair.pool.get_pids()[0]
    batch = asyncio.create_task(pair.pool_svc.admission.submit_txs_chunked(raws, gossip=False))
    await asyncio.sleep(0.01)  # some pieces done or under way: the rest must fall back, none be lost
    os.kill(pid, signal.SIGKILL)
    in_pool = await asyncio.wait_for(batch, 60)
    in_loop = await pair.loop_svc.admission.submit_txs_chunked(raws, gossip=False)
    assert describe(in_pool) == describe(in_loop)
    pair.assert_same_mempools()
    assert not pair.pool.active and pair.pool.fallbacks >= 1


@pytest.mark.asyncio
async def test_a_stopped_worker_does_not_hold_admission_past_the_bound(pair, monkeypatch):
    from node import verify_pool
    monkeypatch.setattr(verify_pool, "PIECE_TIMEOUT_S", 0.5)
    raws = mixed_batch(pair.issuer, 40)
    assert await pair.pool.start()
    pid = pair.pool.get_pids()[0]
    try:
        os.kill(pid, signal.SIGSTOP)  # alive, never answering
        started = time.monotonic()
        in_pool = await asyncio.wait_for(pair.pool_svc.admission.submit_txs_chunked(raws, gossip=False), 20)
        assert time.monotonic() - started < 10
        in_loop = await pair.loop_svc.admission.submit_txs_chunked(raws, gossip=False)
        assert describe(in_pool) == describe(in_loop)
        assert not pair.pool.active and pair.pool.fallbacks >= 1
        pair.assert_same_mempools()
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGCONT)
        await pair.pool.stop()
    assert not alive(pid)
