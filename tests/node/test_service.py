"""NodeService on a single validator with a temp LevelDB: genesis, blocks, restart, WAL, data-dir lock."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from ledger.genesis import Genesis, Validator
from ledger.keys import KeyPair
from ledger.storage import Store
from ledger.tx import make_tx
from node.errors import GenesisMismatch
from node.options import ServiceOptions
from node.service import NodeService

CHAIN = "carecoin-test"
AUDITOR = KeyPair.generate()  # the company auditor: reads every account, tx and block (signed reads)


def make_genesis(node: KeyPair, issuer: KeyPair, chain_id: str = CHAIN) -> Genesis:
    return Genesis(chain_id, 1_700_000_000_000, (Validator("branch-1", node.public_key),),
                   roles={"issuer": (issuer.public_key,), "auditor": (AUDITOR.public_key,)}, policy={})


FAST = ServiceOptions(name="branch-1", base_timeout_ms=300, max_timeout_ms=1200, block_interval_ms=20,
                      retransmit_ms=200)


@pytest.fixture
def keys():
    return KeyPair.generate(), KeyPair.generate()


def open_service(path, node, issuer, options=FAST) -> NodeService:
    return NodeService(key=node, genesis=make_genesis(node, issuer), store=Store.open(path), options=options)


async def wait_height(svc: NodeService, height: int, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while svc.store.head().height < height:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"height {svc.store.head().height} after {timeout_s} s; expected {height}")
        await asyncio.sleep(0.02)


async def wait_committed(svc: NodeService, tx_hash: bytes, timeout_s: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        doc = svc.reads.get_tx_status(tx_hash)
        if doc["status"] == "committed":
            return doc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"tx still {doc} after {timeout_s} s")
        await asyncio.sleep(0.02)


def test_empty_store_gets_the_genesis_block(tmp_path, keys):
    svc = open_service(tmp_path / "db", *keys)
    try:
        head = svc.store.head()
        assert head.height == 0
        assert svc.store.get_block(0).header.validator_set_hash == svc.genesis.validator_set_hash
    finally:
        svc.close()


def test_a_data_dir_of_another_genesis_is_refused(tmp_path, keys):
    open_service(tmp_path / "db", *keys).close()
    other = KeyPair.generate()
    store = Store.open(tmp_path / "db")
    with pytest.raises(GenesisMismatch, match="genesis"):
        NodeService(key=keys[0], genesis=make_genesis(keys[0], other, chain_id="other-chain"), store=store)
    store.close()


@pytest.mark.asyncio
async def test_single_validator_commits_submitted_txs_in_nonce_order(tmp_path, keys):
    node, issuer = keys
    svc = open_service(tmp_path / "db", node, issuer)
    await svc.start()
    try:
        alice = KeyPair.generate()
        txs = [make_tx(CHAIN, "mint", issuer, n, [alice.public_key, 100 * n]) for n in (1, 2, 3)]
        for tx in txs:
            svc.admission.submit_tx(tx.raw)
            assert svc.reads.get_tx_status(tx.tx_hash)["status"] in ("pending", "committed")
        for tx in txs:
            doc = await wait_committed(svc, tx.tx_hash)
            assert doc["outcome"] == "applied", doc
        assert svc.reads.get_account(alice.public_key)["balance"] == 600
        assert svc.reads.get_account(issuer.public_key)["nonce"] == 3
        assert svc.reads.get_account(issuer.public_key)["roles"] == ["issuer"]
    finally:
        await svc.stop()
        svc.close()


@pytest.mark.asyncio
async def test_a_rule_breaking_tx_is_committed_as_failed_with_its_reason(tmp_path, keys):
    node, issuer = keys
    svc = open_service(tmp_path / "db", node, issuer)
    await svc.start()
    try:
        nobody = KeyPair.generate()
        tx = make_tx(CHAIN, "mint", nobody, 1, [nobody.public_key, 5])  # not an issuer
        svc.admission.submit_tx(tx.raw)
        doc = await wait_committed(svc, tx.tx_hash)
        assert doc["outcome"] == "failed" and doc["status_code"] != 0 and doc["reason"]
        assert svc.reads.get_account(nobody.public_key)["balance"] == 0
        assert svc.reads.get_account(nobody.public_key)["nonce"] == 1
    finally:
        await svc.stop()
        svc.close()


@pytest.mark.asyncio
async def test_restart_continues_the_chain_from_the_stored_head(tmp_path, keys):
    node, issuer = keys
    holder = KeyPair.generate()  # (an issuer never mints to itself)
    svc = open_service(tmp_path / "db", node, issuer)
    await svc.start()
    tx = make_tx(CHAIN, "mint", issuer, 1, [holder.public_key, 7])
    svc.admission.submit_tx(tx.raw)
    await wait_committed(svc, tx.tx_hash)
    await svc.stop()
    before = svc.store.head()
    hashes = [svc.store.get_block(h).hash for h in range(before.height + 1)]
    svc.close()

    svc = open_service(tmp_path / "db", node, issuer)
    assert svc.consensus.replica.height == before.height + 1
    await svc.start()
    try:
        tx2 = make_tx(CHAIN, "mint", issuer, 2, [holder.public_key, 8])
        svc.admission.submit_tx(tx2.raw)
        doc = await wait_committed(svc, tx2.tx_hash)
        assert doc["height"] > before.height
        assert [svc.store.get_block(h).hash for h in range(before.height + 1)] == hashes
        assert svc.reads.get_account(holder.public_key)["balance"] == 15
        assert svc.reads.get_tx_status(tx.tx_hash)["height"] <= before.height
    finally:
        await svc.stop()
        svc.close()


@pytest.mark.asyncio
async def test_empty_blocks_keep_coming_at_the_block_interval(tmp_path, keys):
    svc = open_service(tmp_path / "db", *keys)
    await svc.start()
    try:
        await wait_height(svc, 3, timeout_s=5)
        assert svc.metrics.committed_blocks._value.get() >= 3
    finally:
        await svc.stop()
        svc.close()


def test_a_second_process_on_the_same_data_dir_is_refused(tmp_path, keys):
    svc = open_service(tmp_path / "db", *keys)
    try:
        code = ("import sys\nfrom ledger.storage import Store\nfrom ledger.errors import StorageError\n"
                "try:\n    Store.open(sys.argv[1])\nexcept StorageError as e:\n    print(e); sys.exit(3)\n")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "db")], capture_output=True, text=True,
                             timeout=30, cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
        assert out.returncode == 3, out.stderr
        assert "in use by another node" in out.stdout
    finally:
        svc.close()


# ---- catch-up -------------------------------------------------------------------------------------------

async def serve_blocks(aiohttp_server, svc: NodeService) -> str:
    from aiohttp import web

    from node.app import add_sync_routes
    app = web.Application()
    add_sync_routes(app, svc)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


@pytest.mark.asyncio
async def test_a_follower_catches_up_by_reexecuting_certified_blocks(tmp_path, keys, aiohttp_server):
    node, issuer = keys
    leader = open_service(tmp_path / "a", node, issuer)
    await leader.start()
    follower = NodeService(key=KeyPair.generate(), genesis=leader.genesis, store=Store.open(tmp_path / "b"),
                           options=FAST)
    holder = KeyPair.generate()  # (an issuer never mints to itself)
    try:
        for n in (1, 2, 3):
            tx = make_tx(CHAIN, "mint", issuer, n, [holder.public_key, n])
            leader.admission.submit_tx(tx.raw)
            await wait_committed(leader, tx.tx_hash)
        await leader.stop()  # freeze the leader's chain so both heads can be compared exactly
        top = leader.store.head()
        follower.syncer.sources = [(node.public_key, await serve_blocks(aiohttp_server, leader))]
        await follower.start()
        await wait_height(follower, top.height)
        assert follower.store.head() == top  # same hash and the same re-executed state root
        assert follower.consensus.replica.height == top.height + 1
        assert follower.reads.get_account(holder.public_key)["balance"] == 6
        assert follower.metrics.synced_blocks._value.get() == top.height
        assert follower.reads.get_tx_status(tx.tx_hash)["status"] == "committed"
    finally:
        await follower.stop()
        follower.close()
        leader.close()


@pytest.mark.asyncio
async def test_catch_up_refuses_a_block_sealed_by_a_non_validator(tmp_path, keys, aiohttp_server):
    from ledger.block import make_seal

    node, issuer = keys
    impostor = KeyPair.generate()
    # The impostor runs a chain of the same genesis, but it is not in the validator set.
    genesis = make_genesis(node, issuer)
    fake = NodeService(key=impostor, genesis=genesis, store=Store.open(tmp_path / "fake"), options=FAST)
    from ledger import chain
    parent = fake.pipeline.head_header()
    execution, _ = chain.build_block(fake.store, fake.store, parent, [], parent.timestamp_ms + 1,
                                     impostor.public_key, genesis.validator_set_hash)
    seal = make_seal(impostor, CHAIN, 1, execution.block.hash)
    fake.committer.commit(execution.block, (seal,), execution, source="test")
    follower = NodeService(key=KeyPair.generate(), genesis=genesis, store=Store.open(tmp_path / "b"), options=FAST)
    try:
        follower.syncer.sources = [(impostor.public_key, await serve_blocks(aiohttp_server, fake))]
        await follower.start()
        for _ in range(100):
            if follower.syncer.faults:
                break
            await asyncio.sleep(0.02)
        assert follower.syncer.faults >= 1
        assert follower.store.head().height == 0
    finally:
        await follower.stop()
        follower.close()
        fake.close()


def test_a_decoded_raw_block_must_be_the_height_asked_for(tmp_path, keys):
    from node.sync import SyncFault, decode_raw_block
    svc = open_service(tmp_path / "db", *keys)
    try:
        from node.reads import get_raw_block
        doc = get_raw_block(svc.store, 0)
        block, seals = decode_raw_block(doc, 0)
        assert block.hash == svc.store.get_block(0).hash and seals == ()
        with pytest.raises(SyncFault, match="asked for block 1, got block 0"):
            decode_raw_block(doc, 1)
        with pytest.raises(SyncFault, match="malformed"):
            decode_raw_block({"block": "zz", "certificate": ""}, 0)
    finally:
        svc.close()


# ---- the driver -----------------------------------------------------------------------------------------

class _Recorder:
    """Stands in for the service: records the order of durable writes and sends."""

    def __init__(self, fail_wal: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_wal = fail_wal
        self.store = self
        self.metrics = None

    def put_wal(self, raw: bytes) -> None:
        if self.fail_wal:
            raise OSError("disk full")
        self.calls.append("wal")

    async def broadcast(self, channel: str, payload: bytes) -> None:
        self.calls.append(f"send:{channel}")


def recording_driver(rec: _Recorder):
    from node.driver import Driver
    return Driver(wal=rec.store, net=rec, post=lambda event: None, metrics=rec.metrics)


def _vote_actions(key: KeyPair):
    from consensus.events import Broadcast, Persist, WalRecord
    from consensus.messages import NO_ROUND, sign_prepare
    prepare = sign_prepare(key, CHAIN, 1, 0, b"\x11" * 32)
    record = WalRecord(1, 0, NO_ROUND, None, (), ((0, b"\x11" * 32),), ())
    return [Persist(record), Broadcast(prepare)]


@pytest.mark.asyncio
async def test_driver_makes_the_wal_durable_before_the_vote_leaves():
    rec = _Recorder()
    await recording_driver(rec).execute(_vote_actions(KeyPair.generate()))
    assert rec.calls == ["wal", "send:consensus"]


@pytest.mark.asyncio
async def test_driver_sends_no_vote_when_the_wal_write_fails():
    from node.driver import WalWriteFailed
    rec = _Recorder(fail_wal=True)
    with pytest.raises(WalWriteFailed, match="disk full"):
        await recording_driver(rec).execute(_vote_actions(KeyPair.generate()))
    assert rec.calls == []


@pytest.mark.asyncio
async def test_driver_retransmits_only_the_current_heights_votes():
    rec = _Recorder()
    driver = recording_driver(rec)
    await driver.execute(_vote_actions(KeyPair.generate()))
    rec.calls.clear()
    assert await driver.retransmit(1) == 1 and rec.calls == ["send:consensus"]
    assert await driver.retransmit(2) == 0


@pytest.mark.asyncio
async def test_a_failed_wal_write_stops_the_node_and_refuses_new_txs(tmp_path, keys):
    from node.errors import NodeStopped
    node, issuer = keys
    svc = open_service(tmp_path / "db", node, issuer)

    def broken(raw: bytes, **_options) -> None:
        raise OSError("no space left on device")

    svc.store.put_wal = broken
    await svc.start()
    try:
        for _ in range(200):
            if svc.fatal is not None:
                break
            await asyncio.sleep(0.02)
        assert "WAL" in str(svc.fatal)
        height = svc.store.head().height
        with pytest.raises(NodeStopped):
            svc.admission.submit_tx(make_tx(CHAIN, "mint", issuer, 1, [issuer.public_key, 1]).raw)
        await asyncio.sleep(0.2)
        assert svc.store.head().height == height  # no block without a durable vote
    finally:
        await svc.stop()
        svc.close()
