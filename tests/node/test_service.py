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
from node.service import GenesisMismatch, NodeService, ServiceOptions

CHAIN = "carecoin-test"


def make_genesis(node: KeyPair, issuer: KeyPair, chain_id: str = CHAIN) -> Genesis:
    return Genesis(chain_id, 1_700_000_000_000, (Validator("branch-1", node.public_key),),
                   roles={"issuer": (issuer.public_key,)}, policy={})


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
        doc = svc.get_tx_status(tx_hash)
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
            svc.submit_tx(tx.raw)
            assert svc.get_tx_status(tx.tx_hash)["status"] in ("pending", "committed")
        for tx in txs:
            doc = await wait_committed(svc, tx.tx_hash)
            assert doc["outcome"] == "applied", doc
        assert svc.get_account(alice.public_key)["balance"] == 600
        assert svc.get_account(issuer.public_key)["nonce"] == 3
        assert svc.get_account(issuer.public_key)["roles"] == ["issuer"]
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
        svc.submit_tx(tx.raw)
        doc = await wait_committed(svc, tx.tx_hash)
        assert doc["outcome"] == "failed" and doc["status_code"] != 0 and doc["reason"]
        assert svc.get_account(nobody.public_key)["balance"] == 0
        assert svc.get_account(nobody.public_key)["nonce"] == 1
    finally:
        await svc.stop()
        svc.close()


@pytest.mark.asyncio
async def test_restart_continues_the_chain_from_the_stored_head(tmp_path, keys):
    node, issuer = keys
    svc = open_service(tmp_path / "db", node, issuer)
    await svc.start()
    tx = make_tx(CHAIN, "mint", issuer, 1, [issuer.public_key, 7])
    svc.submit_tx(tx.raw)
    await wait_committed(svc, tx.tx_hash)
    await svc.stop()
    before = svc.store.head()
    hashes = [svc.store.get_block(h).hash for h in range(before.height + 1)]
    svc.close()

    svc = open_service(tmp_path / "db", node, issuer)
    assert svc.replica.height == before.height + 1
    await svc.start()
    try:
        tx2 = make_tx(CHAIN, "mint", issuer, 2, [issuer.public_key, 8])
        svc.submit_tx(tx2.raw)
        doc = await wait_committed(svc, tx2.tx_hash)
        assert doc["height"] > before.height
        assert [svc.store.get_block(h).hash for h in range(before.height + 1)] == hashes
        assert svc.get_account(issuer.public_key)["balance"] == 15
        assert svc.get_tx_status(tx.tx_hash)["height"] <= before.height
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
