"""Block-time sweeps on a node: a single validator proposes a sweep block when coins come due with an empty
mempool (and stays idle otherwise), the expiry shows in the tx status, receipt, history and report; a block
whose proposer omitted a due sweep is refused by validation and by catch-up; clients and peers cannot submit a
block-sweep."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from consensus.events import RequestBlock, ValidateBlock
from ledger import chain, sweeps
from ledger.errors import InvalidBlock
from ledger.genesis import Genesis, Validator
from ledger.keys import KeyPair
from ledger.receipt import verify as verify_receipt
from ledger.storage import Store
from ledger.tx import SWEEP_KIND, make_tx
from node.app import create_node_app
from node.driver import Driver
from node.service import NodeService
from tests.ledger.test_sweeps import HiddenDue
from tests.node.signing import signed_get
from tests.node.test_propose_pacing import Blocks
from tests.node.test_service import CHAIN, FAST, wait_committed

LIFETIME_MS = 1_500
IDLE = dataclasses.replace(FAST, empty_block_interval_ms=600_000)  # no empty blocks: only txs or a due sweep


def open_node(path, node: KeyPair, issuer: KeyPair, genesis_time_ms: int | None = None,
              options=IDLE) -> NodeService:
    genesis = Genesis(CHAIN, genesis_time_ms or int(time.time() * 1000) - 60_000,
                      (Validator("branch-1", node.public_key),), roles={"issuer": (issuer.public_key,)},
                      policy={"coin_lifetime_ms": LIFETIME_MS})
    return NodeService(key=node, genesis=genesis, store=Store.open(path), options=options)


async def wait_for(what: str, predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout_s} s")
        await asyncio.sleep(0.02)


@pytest.fixture
def keys():
    return KeyPair.generate(), KeyPair.generate()


# --- the proposer sweeps on time with an empty mempool, and only then -------------------------------------------


@pytest.mark.asyncio
async def test_coins_expire_on_an_idle_node_with_nobody_transacting_and_the_node_then_stays_idle(
        tmp_path, keys, aiohttp_client):
    node, issuer = keys
    svc = open_node(tmp_path / "db", node, issuer)
    client = await aiohttp_client(create_node_app(svc))  # starts the service and its report index
    try:
        alice = KeyPair.generate()
        tx = make_tx(CHAIN, "mint", issuer, 1, [alice.public_key, 250])
        svc.admission.submit_tx(tx.raw)
        minted = await wait_committed(svc, tx.tx_hash)
        # Nobody transacts; the idle pace alone would make the next block in 600 s
        await wait_for("alice's coins expired", lambda: svc.reads.get_account(alice.public_key)["stored_balance"] == 0,
                       LIFETIME_MS / 1000 + 3)
        height = svc.store.head().height
        assert height == minted["height"] + 1
        block = svc.store.get_block(height)
        assert block.header.timestamp_ms >= svc.store.get_header(minted["height"]).timestamp_ms + LIFETIME_MS
        sweep = sweeps.make_sweep_tx(CHAIN, height)
        assert block.txs == (sweep.raw,)
        # Its status, receipt, the customer's history and the report all show the expiry
        # Alice is named by the sweep's event: she reads it; the issuer, a role holder, reads the report
        status = await (await signed_get(client, f"/v1/tx/{sweep.tx_hash.hex()}", alice, CHAIN)).json()
        assert (status["status"], status["outcome"], status["height"], status["index"]) == ("committed", "applied",
                                                                                          height, 0)
        receipt = await (await signed_get(client, f"/v1/tx/{sweep.tx_hash.hex()}/receipt", alice, CHAIN)).json()
        proven = verify_receipt(receipt, svc.genesis)
        assert [list(e) for e in proven.events] == [["expired", alice.public_key, 250]]
        history = await (await signed_get(client, f"/v1/accounts/{alice.public_key.hex()}/history", alice,
                                          CHAIN)).json()
        assert [(i["kind"], i["events"][0][0]) for i in history["items"]][0] == (SWEEP_KIND, "expired")
        account = await (await signed_get(client, f"/v1/accounts/{alice.public_key.hex()}", alice, CHAIN)).json()
        assert account["balance"] == 0 and account["stored_balance"] == 0

        async def report_expired() -> int:
            return (await (await signed_get(client, "/v1/report", issuer, CHAIN)).json())["coins"]["expired"]
        for _ in range(100):
            if await report_expired() == 250:
                break
            await asyncio.sleep(0.05)
        assert await report_expired() == 250
        # Nothing is due any more: the node does not spin
        assert sweeps.get_next_due(svc.store) is None
        await asyncio.sleep(1.0)
        assert svc.store.head().height == height
    finally:
        await client.close()
        svc.close()


@pytest.mark.parametrize("pending, due_in_ms, expected", [
    (0, None, 10_000),      # idle, nothing queued: the empty-block interval
    (0, 5_000.0, 5_001),    # an entry comes due in 5 s: propose then, not at the idle pace
    (0, -30.0, 50),         # due already: the block interval, like a runnable tx
    (0, 60_000.0, 10_000),  # due after the idle pace: nothing changes
    (3, 5_000.0, 50),       # runnable txs: as before
])
def test_the_propose_timer_waits_for_the_next_due_entry_only_when_it_comes_before_the_idle_pace(
        pending, due_in_ms, expected):
    driver = Driver(wal=None, net=None, post=lambda e: None, blocks=Blocks(pending, due_in_ms=due_in_ms),
                    empty_block_interval_ms=10_000)
    assert driver.compute_propose_delay(50) == pytest.approx(expected, abs=20)


# --- a byzantine proposer that omits a due sweep ------------------------------------------------------------------


@pytest.fixture
def due_node(tmp_path, keys):
    """A node (not started) whose block 1 minted coins that are dead by now: block 2 must sweep them."""
    node, issuer = keys
    svc = open_node(tmp_path / "db", node, issuer, genesis_time_ms=int(time.time() * 1000) - 60_000)
    tx = make_tx(CHAIN, "mint", issuer, 1, [KeyPair.generate().public_key, 40])
    parent = svc.pipeline.head_header()
    first, _ = chain.build_block(svc.store, svc.store, parent, [tx], parent.timestamp_ms + 1, node.public_key)
    svc.committer.commit(first.block, (), first, source="test")
    yield svc
    svc.close()


@pytest.mark.asyncio
async def test_a_block_whose_proposer_omitted_the_due_sweep_is_refused_by_validation_and_by_catch_up(due_node):
    svc = due_node
    parent = svc.pipeline.head_header()
    omitted, _ = chain.build_block(HiddenDue(svc.store), svc.store, parent, [], parent.timestamp_ms + LIFETIME_MS,
                                   svc.key.public_key)
    assert omitted.block.txs == ()
    verdict = svc.pipeline.process_validate_block(ValidateBlock(2, omitted.block))
    assert not verdict.valid and "sweep" in verdict.reason
    with pytest.raises(InvalidBlock) as info:
        svc.pipeline.commit_synced([(omitted.block, ())])
    assert info.value.check == "sweep" and svc.store.head().height == 1
    # The honest proposal of the same node sweeps, validates and catches up
    honest = svc.pipeline.process_request_block(RequestBlock(2, 0)).block
    assert [t for t in honest.txs] == [sweeps.make_sweep_tx(CHAIN, 2).raw]
    svc.pipeline.forget()
    assert svc.pipeline.process_validate_block(ValidateBlock(2, honest)).valid
    svc.pipeline.commit_synced([(honest, ())])
    assert svc.store.head().height == 2 and sweeps.get_next_due(svc.store) is None


# --- nobody submits a block-sweep -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_client_or_peer_submitting_a_block_sweep_is_refused_with_system_tx(tmp_path, keys, aiohttp_client):
    node, issuer = keys
    svc = open_node(tmp_path / "db", node, issuer, options=FAST)
    client = await aiohttp_client(create_node_app(svc))
    try:
        forged = sweeps.make_sweep_tx(CHAIN, 1)
        signed = make_tx(CHAIN, SWEEP_KIND, KeyPair.generate(), 1, [])
        for tx in (forged, signed):
            resp = await client.post("/v1/tx", json={"tx": tx.raw.hex()})
            doc = await resp.json()
            assert resp.status == 400 and doc["error"]["code"] == "system_tx", doc
        resp = await client.post("/v1/txs", json={"txs": [forged.raw.hex()]})
        assert (await resp.json())["results"][0]["error"]["code"] == "system_tx"
        svc.admission.on_gossip_tx(forged.raw)  # a peer gossips one: dropped and counted
        assert forged.tx_hash not in svc.mempool and signed.tx_hash not in svc.mempool
        assert svc.metrics.rejected_txs.labels("system_tx")._value.get() >= 1
    finally:
        await client.close()
        svc.close()
