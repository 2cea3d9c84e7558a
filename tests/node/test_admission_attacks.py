"""Attacks on tx admission through the real door: the HTTP API of an in-process single-validator node.

The attacker holds no role and no registration; fresh keys cost it nothing. The promises: it cannot fill
the mempool so that an issuer is shut out, txs that cannot run (waiting on a nonce gap) do not make
the chain race through empty blocks, and whoever sees a pending tx first cannot change the bytes that commit.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import pytest_asyncio

from ledger.keys import KeyPair
from ledger.receipt import verify
from ledger.tx import make_tx, sign_tx
from node.app import create_node_app
from tests.node.test_api import client, post_tx, wait_status  # noqa: F401
from tests.node.signing import signed_get
from tests.node.test_service import CHAIN, FAST, keys, open_service, wait_height  # noqa: F401

pytestmark = [pytest.mark.timeout(60)]

MAX_FLOOD_KEYS = 1_000  # bound on the attacker's loop (the pool of 200 is full long before)


@pytest_asyncio.fixture
async def small_pool(aiohttp_client, tmp_path, keys):  # noqa: F811
    """A node whose mempool holds 200 txs: 160 for anyone, 40 kept for role holders and customers."""
    svc = open_service(tmp_path / "db", *keys, dataclasses.replace(FAST, mempool_max_count=200))
    c = await aiohttp_client(create_node_app(svc))
    c.svc = svc
    yield c
    await c.close()
    svc.close()


def transfer(key: KeyPair, nonce: int, to: bytes):
    return make_tx(CHAIN, "transfer", key, nonce, [to, 1, bytes(32)])


@pytest.mark.asyncio
async def test_fresh_key_flood_cannot_shut_out_an_issuer(small_pool, keys):  # noqa: F811
    client, (_, issuer) = small_pool, keys
    await wait_height(client.svc, 1)
    # The flood lands while the node is busy with a block (the consensus task is held), so nothing drains.
    gate = asyncio.Event()
    client.svc.consensus.post(gate.wait)
    try:
        statuses: list[tuple[str, int]] = []
        for _ in range(MAX_FLOOD_KEYS):
            fresh = KeyPair.generate()
            gapped_status, gapped_doc = await post_tx(client, transfer(fresh, 3, issuer.public_key))
            statuses.append(("gapped", gapped_status))
            status, doc = await post_tx(client, transfer(fresh, 1, issuer.public_key))
            statuses.append(("runnable", status))
            if status == 503:
                assert doc["error"]["code"] == "mempool_full" and "reserved" in doc["error"]["message"]
                break
        else:
            raise AssertionError(f"{MAX_FLOOD_KEYS} fresh keys never filled the pool")
        assert ("gapped", 202) in statuses and ("runnable", 202) in statuses
        assert ("gapped", 503) in statuses  # gapped txs were capped at their share before the pool filled
        assert client.svc.mempool.stats()["gapped"] <= 50
        # The pool refuses every fresh key now, with a Retry-After...
        resp = await client.post("/v1/tx", json={"tx": transfer(KeyPair.generate(), 1, issuer.public_key)
                                                 .raw.hex()})
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        # ...while the issuer's mint still gets in.
        alice = KeyPair.generate()
        mint = make_tx(CHAIN, "mint", issuer, 1, [alice.public_key, 500])
        status, doc = await post_tx(client, mint)
        assert status == 202 and doc["status"] == "pending", doc
    finally:
        gate.set()
    done = await wait_status(client, mint.tx_hash.hex())
    assert done["outcome"] == "applied"
    resp = await signed_get(client, f"/v1/accounts/{alice.public_key.hex()}", alice, CHAIN)
    assert (await resp.json())["balance"] == 500


@pytest.mark.asyncio
async def test_gapped_flood_does_not_drive_empty_blocks(small_pool, keys):  # noqa: F811
    client, (_, issuer) = small_pool, keys
    svc = client.svc
    await wait_height(svc, 1)
    # An idle node makes one empty block per empty_block_interval_ms (1 s); a tx that can run makes the next
    # block come at block_interval_ms (20 ms). Txs waiting on a nonce gap can go in no block: they must not
    # count as "txs waiting", or a flood of them makes the chain race through empty blocks.
    assert svc.options.empty_block_interval_ms >= 50 * svc.options.block_interval_ms
    loop = asyncio.get_running_loop()
    start_height, t0, admitted = svc.store.head().height, loop.time(), 0
    keys_sent = 0
    while loop.time() - t0 < 1.5 and keys_sent < MAX_FLOOD_KEYS:
        fresh = KeyPair.generate()
        keys_sent += 1
        for nonce in (2, 3):
            status, _ = await post_tx(client, transfer(fresh, nonce, issuer.public_key))
            admitted += status == 202
        await asyncio.sleep(0.01)
    elapsed = loop.time() - t0
    made = svc.store.head().height - start_height
    assert admitted >= 20 and svc.mempool.runnable_count() == 0 and len(svc.mempool) >= 20
    assert made <= elapsed * 1000 / svc.options.empty_block_interval_ms + 2, \
        f"{made} blocks in {elapsed:.1f} s while only gapped txs waited"
    # The chain is not stuck either: a tx that can run is committed at once.
    mint = make_tx(CHAIN, "mint", issuer, 1, [issuer.public_key, 1])
    status, _ = await post_tx(client, mint)
    assert status == 202
    t1 = loop.time()
    await wait_status(client, mint.tx_hash.hex())
    assert loop.time() - t1 < svc.options.empty_block_interval_ms / 1000


@pytest.mark.asyncio
async def test_front_runner_cannot_append_a_signature_to_a_pending_tx(client, keys):  # noqa: F811
    _, issuer = keys
    await wait_height(client.svc, 1)
    alice, front_runner = KeyPair.generate(), KeyPair.generate()
    tx = make_tx(CHAIN, "mint", issuer, 1, [alice.public_key, 40])
    # The front runner saw the tx (gossip, a shared relay) and signs its hash with a key of its own: every
    # signature in its copy is valid, and it reaches the node first.
    padded = sign_tx(tx.body, issuer, front_runner)
    assert padded.tx_hash == tx.tx_hash and padded.raw != tx.raw
    status, doc = await post_tx(client, padded)
    assert status == 400 and doc["error"]["code"] == "tx_rejected", doc
    assert "unexpected_signer" in doc["error"]["message"]
    assert front_runner.public_key.hex()[:16] in doc["error"]["message"]
    # The sender's own copy is admitted and it is the sender's bytes that commit.
    status, doc = await post_tx(client, tx)
    assert status == 202 and doc["status"] == "pending", doc
    done = await wait_status(client, tx.tx_hash.hex())
    assert done["outcome"] == "applied"
    resp = await signed_get(client, f"/v1/tx/{tx.tx_hash.hex()}/receipt", alice, CHAIN)  # the mint names her
    receipt = await resp.json()
    assert bytes.fromhex(receipt["tx"]) == tx.raw
    assert verify(receipt, client.svc.genesis).tx_hash == tx.tx_hash


def test_the_reserve_is_for_role_holders_and_registered_customers_only(story):
    from node.admission import is_privileged
    chain, s = story
    assert is_privileged(chain.store, s["clerk"].public_key)  # granted a staff role
    assert is_privileged(chain.store, s["alice"].public_key)  # a registered customer
    assert not is_privileged(chain.store, KeyPair.generate().public_key)  # a fresh key
