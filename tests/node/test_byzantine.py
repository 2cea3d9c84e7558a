"""The test-only byzantine validator (``node.byzantine``): refused outside test mode; when on, it really
equivocates, sends corrupt bodies, replays and floods — and an honest replica keeps its promises against it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from consensus.events import MessageReceived, ReportEvidence, Restarted
from consensus.messages import Commit, Prepare, Proposal, RoundChange, sign_prepare, sign_proposal, verify_message
from consensus.replica import Replica, ReplicaConfig
from consensus.wire import decode_message, encode_message
from cli.network import init_network
from cli.ports import free_port_base
from ledger import chain
from ledger.errors import LedgerError
from ledger.genesis import Genesis, Validator
from ledger.keys import KeyPair
from ledger.storage import Store
from ledger.tx import decode_tx, make_tx
from node.byzantine import (
    BYZANTINE_ENV, FLOOD_HEIGHTS, TEST_MODE_ENV, ByzantineNet, ByzantineRefused, build_twin_block, read_mode,
)
from node.service import ensure_genesis

ROOT = Path(__file__).resolve().parents[2]
CHAIN = "carecoin-byzantine"
ALL = frozenset({"equivocate", "corrupt_body", "replay", "flood_future"})


class Wire:
    """Stands in for the peer network: records what each peer received."""

    def __init__(self, peers) -> None:
        self.peers = list(peers)
        self.got: dict[bytes, list] = {p: [] for p in self.peers}

    async def broadcast(self, channel: str, payload: bytes) -> None:
        for p in self.peers:
            self.got[p].append(decode_message(payload))

    async def send(self, peer: bytes, channel: str, payload: bytes) -> None:
        self.got[peer].append(decode_message(payload))

    def clear(self) -> None:
        for v in self.got.values():
            v.clear()


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def net4(tmp_path):
    """A 4-validator genesis in a store; validator 0 is the attacker (proposer of height 1... round 3)."""
    keys = [KeyPair.generate() for _ in range(4)]
    issuer = KeyPair.generate()
    genesis = Genesis(CHAIN, 1_700_000_000_000, tuple(Validator(f"b{i}", k.public_key) for i, k in enumerate(keys)),
                      roles={"issuer": (issuer.public_key,)}, policy={})
    store = Store.open(str(tmp_path / "db"))
    ensure_genesis(store, genesis)
    yield keys, issuer, genesis, store
    store.close()


def attacker(net4, behaviours=ALL, position=(1, 0)):
    keys, _, genesis, store = net4
    me = keys[1]  # proposer(h, r) = validators[(h + r) % n]: keys[1] proposes (1, 0)
    wire = Wire([k.public_key for k in keys if k is not me])
    clock = Clock()
    byz = ByzantineNet(wire, key=me, chain_id=CHAIN, validators=genesis.validator_keys, behaviours=behaviours,
                       build_twin=lambda b: build_twin_block(store, genesis.validator_set_hash, me, CHAIN, b),
                       position=lambda: position, clock=clock, seed=1)
    return byz, wire, clock, me


def build(net4, proposer: KeyPair, txs=()):
    _, _, genesis, store = net4
    execution, _ = chain.build_block(store, store, store.get_header(0), list(txs), 1_700_000_001_000,
                                     proposer.public_key, genesis.validator_set_hash, chain_id=CHAIN)
    return execution.block


def test_byzantine_mode_is_refused_without_test_mode_and_for_unknown_behaviours():
    assert read_mode({}) == frozenset()
    with pytest.raises(ByzantineRefused, match="outside test mode"):
        read_mode({BYZANTINE_ENV: "equivocate"})
    with pytest.raises(ByzantineRefused, match="outside test mode"):
        read_mode({BYZANTINE_ENV: "equivocate", TEST_MODE_ENV: "yes"})
    with pytest.raises(ByzantineRefused, match="unknown behaviour.*steal"):
        read_mode({BYZANTINE_ENV: "equivocate,steal", TEST_MODE_ENV: "1"})
    assert read_mode({BYZANTINE_ENV: "replay, flood_future", TEST_MODE_ENV: "1"}) == {"replay", "flood_future"}


def test_a_node_asked_to_be_byzantine_outside_test_mode_refuses_to_start(tmp_path):
    summary = init_network(tmp_path / "net", 1, base_port=free_port_base(2))
    config = summary.dir / summary.branches[0].name / "node.toml"
    env = {k: v for k, v in os.environ.items() if k != TEST_MODE_ENV}
    proc = subprocess.run([sys.executable, "-m", "cli.node", "start", "--config", str(config)], cwd=str(ROOT),
                          env={**env, BYZANTINE_ENV: "equivocate"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "refusing to run a byzantine validator outside test mode" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.asyncio
async def test_an_equivocating_proposer_sends_two_valid_signed_blocks_for_one_slot_to_disjoint_peers(net4):
    keys, _, genesis, store = net4
    byz, wire, _, me = attacker(net4, frozenset({"equivocate"}))
    block = build(net4, me)
    await byz.broadcast("consensus", encode_message(sign_proposal(me, CHAIN, 1, 0, block)))
    proposals = {p: [m for m in got if isinstance(m, Proposal)] for p, got in wire.got.items()}
    assert all(len(v) == 1 for v in proposals.values())  # each peer sees one proposal for (1, 0)
    hashes = {v[0].block.hash for v in proposals.values()}
    assert len(hashes) == 2 and block.hash in hashes
    for v in proposals.values():
        prop = v[0]
        assert verify_message(CHAIN, prop) and (prop.height, prop.round) == (1, 0)
        chain.validate_block(store, store, store.get_header(0), prop.block, 1_700_000_002_000, 2_000,
                             genesis.validator_set_hash)  # both blocks are valid
    twin_group = [p for p, v in proposals.items() if v[0].block.hash != block.hash]
    for p in twin_group:  # the twin's group also got the attacker's PREPARE and COMMIT for the twin
        votes = [m for m in wire.got[p] if isinstance(m, (Prepare, Commit))]
        assert {type(m) for m in votes} == {Prepare, Commit} and all(m.block_hash != block.hash for m in votes)
    # its own honest PREPARE for the first block goes to the first group only
    wire.clear()
    await byz.broadcast("consensus", encode_message(sign_prepare(me, CHAIN, 1, 0, block.hash)))
    assert all(not wire.got[p] for p in twin_group) and sum(len(v) for v in wire.got.values()) >= 1


@pytest.mark.asyncio
async def test_an_honest_replica_that_sees_both_blocks_reports_the_attacker_as_equivocating(net4):
    keys, _, genesis, store = net4
    byz, wire, _, me = attacker(net4, frozenset({"equivocate"}))
    block = build(net4, me)
    await byz.broadcast("consensus", encode_message(sign_proposal(me, CHAIN, 1, 0, block)))
    both = {m.block.hash: m for got in wire.got.values() for m in got if isinstance(m, Proposal)}
    honest = keys[2]
    replica = Replica(ReplicaConfig(CHAIN, genesis.validator_keys), honest, 1, store.get_header(0).hash())
    replica.handle(Restarted(None))
    actions = []
    for prop in both.values():
        actions += replica.handle(MessageReceived(prop))
    assert any(isinstance(a, ReportEvidence) and a.first.signer == me.public_key for a in actions)
    assert replica.fault_counts["equivocation"] == 1


@pytest.mark.asyncio
async def test_a_corrupt_copy_keeps_the_header_and_signature_but_its_tx_signature_fails(net4):
    keys, issuer, _, _ = net4
    byz, wire, _, me = attacker(net4, frozenset({"corrupt_body"}))
    block = build(net4, me, [make_tx(CHAIN, "mint", issuer, 1, [issuer.public_key, 5])])
    assert block.txs
    raw = encode_message(sign_proposal(me, CHAIN, 1, 0, block))
    await byz.broadcast("consensus", raw)
    victims = [p for p, got in wire.got.items() if len(got) == 2]
    assert len(victims) == 1  # one peer gets the corrupt copy first, then the honest one
    bad, good = wire.got[victims[0]]
    assert bad.block.hash == good.block.hash == block.hash and verify_message(CHAIN, bad)
    assert bad.block.txs != good.block.txs
    with pytest.raises(LedgerError):
        for tx in bad.block.txs:
            decode_tx(tx).verify_signatures()
    wire.clear()
    await byz.broadcast("consensus", raw)  # a retransmission is the honest copy only
    assert all([m.block.txs for m in got] == [block.txs] for got in wire.got.values())


@pytest.mark.asyncio
async def test_replay_resends_only_earlier_messages_and_at_most_a_batch_per_period(net4):
    keys, _, _, _ = net4
    height = [1]
    byz, wire, clock, me = attacker(net4, frozenset({"replay"}))
    byz.position = lambda: (height[0], 0)
    for h in range(1, 6):
        height[0] = h
        await byz.broadcast("consensus", encode_message(sign_prepare(me, CHAIN, h, 0, bytes([h]) * 32)))
        clock.t += 1.0
    wire.clear()
    await byz.broadcast("consensus", encode_message(sign_prepare(me, CHAIN, 5, 0, b"\x05" * 32)))
    replayed = [m for m in next(iter(wire.got.values())) if m.height < 5]
    assert 1 <= len(replayed) <= 8
    wire.clear()
    await byz.broadcast("consensus", encode_message(sign_prepare(me, CHAIN, 5, 0, b"\x05" * 32)))
    assert all(m.height == 5 for m in next(iter(wire.got.values())))  # same period: nothing replayed


@pytest.mark.asyncio
async def test_the_flood_is_signed_future_traffic_bounded_per_period(net4):
    keys, _, _, _ = net4
    byz, wire, clock, me = attacker(net4, frozenset({"flood_future"}), position=(10, 2))
    raws = byz.make_flood(10, 2)
    msgs = [decode_message(r) for r in raws]
    assert all(verify_message(CHAIN, m) for m in msgs)
    assert all(m.height > 10 or (isinstance(m, RoundChange) and m.round > 2) for m in msgs)
    big = [m for m in msgs if isinstance(m, Proposal)]
    assert len(big) == 1 and 10 < big[0].height <= 10 + FLOOD_HEIGHTS and len(raws[-1]) > 200_000
    await byz.broadcast("consensus", encode_message(sign_prepare(me, CHAIN, 10, 2, b"\x01" * 32)))
    first = len(next(iter(wire.got.values())))
    for _ in range(5):  # many sends within one period flood once
        await byz.broadcast("consensus", encode_message(sign_prepare(me, CHAIN, 10, 2, b"\x01" * 32)))
    assert len(next(iter(wire.got.values()))) == first + 5
