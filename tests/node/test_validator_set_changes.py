"""The node side of validator-set changes: restart, catch-up and live consensus across a governance change.

A one-branch genesis decides a governance proposal with its single admin, so one transaction adds a second
validator (decided in block H, in force from H + 2).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from aiohttp import web

from ledger import chain
from ledger.block import make_seal
from ledger.genesis import Genesis, Validator
from ledger.keys import KeyPair
from ledger.storage import Store
from ledger.tx import make_tx
from node.app import add_sync_routes
from node.config import PeerEntry
from node.options import ServiceOptions
from node.service import NodeService, compute_validator_peers

CHAIN = "carecoin-sets"
FAST = ServiceOptions(name="north", base_timeout_ms=300, max_timeout_ms=1200, block_interval_ms=20,
                      retransmit_ms=100, sync_poll_ms=300, empty_block_interval_ms=100)


class Keys:
    def __init__(self) -> None:
        self.a, self.b, self.c, self.admin = (KeyPair.generate() for _ in range(4))
        self.genesis = Genesis(CHAIN, int(time.time() * 1000) - 3_600_000, (Validator("north", self.a.public_key),),
                               roles={"branch-admin": (self.admin.public_key,)}, policy={})


@pytest.fixture
def keys() -> Keys:
    return Keys()


def add_b(k: Keys, address: str, nonce: int = 1):
    return make_tx(CHAIN, "propose-add-validator", k.admin, nonce, ["add-south", "south", k.b.public_key, address])


def extend(svc: NodeService, txs, signers) -> None:
    """Commit one block on ``svc``'s store by hand, sealed by ``signers``."""
    parent = svc.pipeline.head_header()
    ex = chain.execute_block(svc.store, svc.store, parent, list(txs), parent.timestamp_ms + 1000,
                             signers[0].public_key, CHAIN, b"")
    seals = tuple(make_seal(s, CHAIN, ex.header.height, ex.block.hash) for s in signers)
    svc.committer.commit(ex.block, seals, ex, source="test")


def build_chain(svc: NodeService, k: Keys, after_change) -> None:
    """Block 1 adds south (B); block 2 is the last the old set {A} seals; then blocks sealed by ``after_change``."""
    extend(svc, [add_b(k, "ws://127.0.0.1:1/peer")], [k.a])
    extend(svc, [], [k.a])
    for _ in range(3):
        extend(svc, [], after_change)


async def serve(aiohttp_server, svc: NodeService) -> str:
    """Serve ``svc``'s peer listener (peer websocket + block route); return its ws:// peer URL."""
    app = web.Application()
    svc.peers.add_routes(app)
    add_sync_routes(app, svc)
    server = await aiohttp_server(app)
    return f"ws://127.0.0.1:{server.port}/peer"


async def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached after {timeout_s} s")
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_a_restarted_node_hands_the_replica_the_sets_of_the_next_two_heights(tmp_path, keys):
    leader = NodeService(key=keys.a, genesis=keys.genesis, store=Store.open(tmp_path / "a"), options=FAST)
    extend(leader, [add_b(keys, "ws://127.0.0.1:1/peer")], [keys.a])  # decided in block 1: in force from 3
    leader.close()
    svc = NodeService(key=keys.c, genesis=keys.genesis, store=Store.open(tmp_path / "a"), options=FAST)
    try:
        await svc.consensus.start()
        replica = svc.consensus.replica
        assert replica.height == 2
        assert replica.validator_set(2).validators == (keys.a.public_key,)
        assert replica.validator_set(3).validators == (keys.a.public_key, keys.b.public_key)
    finally:
        await svc.consensus.stop()
        svc.close()


@pytest.mark.asyncio
async def test_a_follower_from_genesis_walks_the_change_checking_each_certificate_with_its_heights_set(
        tmp_path, keys, aiohttp_server):
    leader = NodeService(key=keys.a, genesis=keys.genesis, store=Store.open(tmp_path / "a"), options=FAST)
    build_chain(leader, keys, [keys.a, keys.b])
    url = await serve(aiohttp_server, leader)
    follower = NodeService(key=keys.c, genesis=keys.genesis, store=Store.open(tmp_path / "c"), options=FAST,
                           peers=[PeerEntry("north", keys.a.public_key, url)])
    try:
        await follower.start()
        top = leader.store.head()
        await wait_for(lambda: follower.store.head().height >= top.height, 10, "follower at the leader's head")
        assert follower.store.head() == top
        assert follower.syncer.faults == 0
        # the replica knows the new set for the next height (fed by catch-up, before SyncedTo)
        assert follower.consensus.replica.height == top.height + 1
        assert follower.consensus.replica.validator_set(top.height + 1).validators == (keys.a.public_key,
                                                                                       keys.b.public_key)
    finally:
        await follower.stop()
        follower.close()
        leader.close()


@pytest.mark.asyncio
async def test_catch_up_refuses_a_block_sealed_only_by_the_old_set_after_the_change(tmp_path, keys, aiohttp_server):
    leader = NodeService(key=keys.a, genesis=keys.genesis, store=Store.open(tmp_path / "a"), options=FAST)
    build_chain(leader, keys, [keys.a])  # A alone was a quorum of {A}; of {A, B} it is not
    url = await serve(aiohttp_server, leader)
    follower = NodeService(key=keys.c, genesis=keys.genesis, store=Store.open(tmp_path / "c"), options=FAST,
                           peers=[PeerEntry("north", keys.a.public_key, url)])
    try:
        await follower.start()
        await wait_for(lambda: follower.syncer.faults >= 1, 10, "a sync fault")
        assert follower.store.head().height == 2  # the blocks the old set may seal are kept
    finally:
        await follower.stop()
        follower.close()
        leader.close()


def test_links_follow_the_set_the_joiner_at_its_on_chain_address_and_only_members_dial(tmp_path, keys):
    svc = NodeService(key=keys.a, genesis=keys.genesis, store=Store.open(tmp_path / "a"), options=FAST)
    try:
        assert compute_validator_peers(svc.store, keys.a.public_key, ()) == ({keys.a.public_key: "north"}, ())
        extend(svc, [add_b(keys, "ws://127.0.0.1:4567/peer")], [keys.a])
        names, dial = compute_validator_peers(svc.store, keys.a.public_key, ())
        assert names == {keys.a.public_key: "north", keys.b.public_key: "south"}
        assert [(p.name, p.public_key, p.url) for p in dial] == [("south", keys.b.public_key,
                                                                   "ws://127.0.0.1:4567/peer")]
        assert svc.peers.validators == names  # the handshake now accepts the joiner
        # a node outside the set (not added, or removed) dials nobody: it follows over the block route
        assert compute_validator_peers(svc.store, keys.c.public_key, ())[1] == ()
    finally:
        svc.close()


@pytest.mark.asyncio
async def test_a_validator_added_by_governance_joins_from_its_own_node_and_seals_from_h_plus_2(
        tmp_path, keys, aiohttp_server):
    a = NodeService(key=keys.a, genesis=keys.genesis, store=Store.open(tmp_path / "a"), options=FAST)
    a_url = await serve(aiohttp_server, a)
    b = NodeService(key=keys.b, genesis=keys.genesis, store=Store.open(tmp_path / "b"),
                    options=dataclasses.replace(FAST, name="south"), peers=[PeerEntry("north", keys.a.public_key, a_url)])
    b_url = await serve(aiohttp_server, b)
    try:
        await a.start()
        tx = add_b(keys, b_url)
        a.admission.submit_tx(tx.raw)
        await wait_for(lambda: a.reads.get_tx_status(tx.tx_hash)["status"] == "committed", 10, "the add committed")
        decided = a.reads.get_tx_status(tx.tx_hash)["height"]
        await b.start()
        target = decided + 5
        await wait_for(lambda: min(a.store.head().height, b.store.head().height) >= target, 30,
                       f"both nodes at height {target}")
        assert keys.b.public_key in a.get_connected_peers()
        for h in range(1, target + 1):
            assert a.store.get_block(h).hash == b.store.get_block(h).hash
        signers = [{s.validator for s in a.store.get_certificate(h)} for h in range(1, target + 1)]
        assert all(keys.b.public_key not in s for s in signers[:decided + 1])  # not before H + 2
        assert all(s == {keys.a.public_key, keys.b.public_key} for s in signers[decided + 1:])  # Q(2) = 2
        status = a.reads.get_status()  # the status shows the set on chain, not genesis
        assert status["validators"] == 2 and status["peer_names"] == ["south"]
    finally:
        await b.stop()
        await a.stop()
        b.close()
        a.close()
