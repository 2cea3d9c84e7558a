"""Catch-up (node.sync + BlockPipeline.commit_synced): what a certificate lets a node skip, and what it never does.

A block whose quorum certificate verified re-executes without checking its txs' signatures again; its state
root, parent and height are still checked. Without a certificate check every signature is. The syncer pulls
batch after batch (the next one fetched while one is applied) and keeps what it committed before a bad block.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import ledger.tx
from ledger import chain, codec
from ledger.block import Block, make_seal
from ledger.errors import InvalidBlock
from ledger.keys import KeyPair
from ledger.storage import Store
from ledger.tx import decode_tx, make_tx
from node.service import NodeService
from node.sync import SyncFault
from tests.node.test_service import CHAIN, FAST, make_genesis, serve_blocks, wait_height


@pytest.fixture
def net(tmp_path):
    """A single-validator chain's leader (not started: blocks are built and sealed by hand) and a follower."""
    node, issuer = KeyPair.generate(), KeyPair.generate()
    genesis = make_genesis(node, issuer)
    leader = NodeService(key=node, genesis=genesis, store=Store.open(tmp_path / "a"), options=FAST)
    follower = NodeService(key=KeyPair.generate(), genesis=genesis, store=Store.open(tmp_path / "b"), options=FAST)
    yield leader, follower, node, issuer
    follower.close()
    leader.close()


def extend(svc: NodeService, proposer: KeyPair, txs, sealers) -> chain.BlockExecution:
    """Build the next block on ``svc`` from ``txs`` (signatures NOT checked), seal it, commit it."""
    parent = svc.pipeline.head_header()
    execution, rejected = chain.build_block(svc.store, svc.store, parent, txs, parent.timestamp_ms + 1,
                                            proposer.public_key, signatures_checked=True)
    assert not rejected
    seals = tuple(make_seal(k, CHAIN, execution.block.height, execution.block.hash) for k in sealers)
    svc.committer.commit(execution.block, seals, execution, source="test")
    return execution


def forge_signature(tx) -> object:
    """The same body with the sender's signature replaced by 64 zero bytes (decodes; never verifies)."""
    envelope = codec.decode(tx.raw)
    envelope[1][0][1] = bytes(64)
    return decode_tx(codec.encode(envelope))


def mints(issuer: KeyPair, first_nonce: int, count: int):
    return [make_tx(CHAIN, "mint", issuer, n, [KeyPair.generate().public_key, 5])
            for n in range(first_nonce, first_nonce + count)]


def count_signature_checks(monkeypatch) -> list[int]:
    calls = [0]
    real = ledger.tx.verify

    def counting(*args):
        calls[0] += 1
        return real(*args)
    monkeypatch.setattr(ledger.tx, "verify", counting)
    return calls


def test_a_certified_block_re_executes_without_checking_its_signatures_again(net, monkeypatch):
    leader, follower, node, issuer = net
    ex = extend(leader, node, mints(issuer, 1, 5), [node])
    calls = count_signature_checks(monkeypatch)
    follower.pipeline.commit_synced([(ex.block, leader.store.get_certificate(1))], follower.syncer.verify)
    assert follower.store.head() == leader.store.head()
    assert calls[0] == 0


def test_without_a_certificate_check_every_signature_is_checked_and_a_forged_one_refuses_the_block(net, monkeypatch):
    leader, follower, node, issuer = net
    good = mints(issuer, 1, 3)
    ex = extend(leader, node, good[:2] + [forge_signature(good[2])], [node])
    calls = count_signature_checks(monkeypatch)
    with pytest.raises(InvalidBlock, match="tx 2 cannot enter a block: .*does not verify") as info:
        follower.pipeline.commit_synced([(ex.block, leader.store.get_certificate(1))])
    assert info.value.check == "tx_admission"
    assert calls[0] == 3
    assert follower.store.head().height == 0


def test_a_block_without_a_quorum_certificate_is_refused_before_it_runs_and_the_head_stays(net):
    leader, follower, node, issuer = net
    ex = extend(leader, node, mints(issuer, 1, 2), [node])
    stranger = KeyPair.generate()
    for seals in ((), (make_seal(stranger, CHAIN, 1, ex.block.hash),), (make_seal(node, CHAIN, 2, ex.block.hash),),
                  (make_seal(node, "other-chain", 1, ex.block.hash),)):
        with pytest.raises(SyncFault, match="certificate refused"):
            follower.pipeline.commit_synced([(ex.block, seals)], follower.syncer.verify)
        assert follower.store.head().height == 0


def test_a_certified_block_whose_state_root_does_not_re_execute_is_refused_and_the_head_stays(net):
    leader, follower, node, issuer = net
    ex = extend(leader, node, mints(issuer, 1, 2), [node])
    header = dataclasses.replace(ex.block.header, state_root=bytes(32))
    lying = Block(header, ex.block.txs)
    seals = (make_seal(node, CHAIN, 1, lying.hash),)  # the validator really sealed the lying header
    with pytest.raises(InvalidBlock) as info:
        follower.pipeline.commit_synced([(lying, seals)], follower.syncer.verify)
    assert info.value.check == "state_root"
    assert follower.store.head().height == 0


def test_a_certified_block_on_another_parent_is_refused(net):
    leader, follower, node, issuer = net
    extend(follower, node, mints(issuer, 1, 1), [node])  # the follower has its own block 1
    extend(leader, node, mints(issuer, 1, 1), [node])
    ex2 = extend(leader, node, mints(issuer, 2, 1), [node])
    with pytest.raises(InvalidBlock) as info:
        follower.pipeline.commit_synced([(ex2.block, leader.store.get_certificate(2))], follower.syncer.verify)
    assert info.value.check == "prev_hash"
    assert follower.store.head().height == 1


@pytest.mark.asyncio
async def test_a_follower_pulls_batch_after_batch_to_the_peers_head(net, aiohttp_server):
    leader, follower, node, issuer = net
    for i in range(7):
        extend(leader, node, mints(issuer, 1 + 3 * i, 3), [node])
    follower.syncer.batch = 2  # 4 batches: each next one is fetched while the one before is applied
    follower.syncer.sources = [(node.public_key, await serve_blocks(aiohttp_server, leader))]
    try:
        await follower.start()
        await wait_height(follower, 7)
        assert follower.store.head() == leader.store.head()
        assert follower.metrics.synced_blocks._value.get() == 7
        assert follower.syncer.faults == 0
    finally:
        await follower.stop()


@pytest.mark.asyncio
async def test_a_peer_serving_a_badly_sealed_block_mid_way_keeps_the_blocks_before_it(net, aiohttp_server):
    leader, follower, node, issuer = net
    impostor = KeyPair.generate()
    for i in range(5):
        extend(leader, node, mints(issuer, 1 + 2 * i, 2), [impostor] if i == 3 else [node])
    follower.syncer.batch = 2
    follower.syncer.sources = [(node.public_key, await serve_blocks(aiohttp_server, leader))]
    try:
        await follower.start()
        for _ in range(250):
            if follower.syncer.faults:
                break
            await asyncio.sleep(0.02)
        assert follower.syncer.faults >= 1
        assert follower.store.head().height == 3
        assert follower.store.head().block_hash == leader.store.get_block(3).hash
    finally:
        await follower.stop()
