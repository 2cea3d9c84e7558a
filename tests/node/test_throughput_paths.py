"""The fast paths of issue 5: batch submit, trusted-signature validation, cached block tx hashes."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from ledger import chain, sweeps
from ledger.errors import InvalidBlock
from ledger.keys import KeyPair
from ledger.tx import SignedTx, make_tx
from node.app import create_node_app
from node.routes import MAX_BATCH_TXS, OPENAPI
from tests.node.signing import signed_get
from tests.node.test_service import AUDITOR, CHAIN, FAST, open_service, wait_committed, wait_height


@pytest.fixture
def keys():
    return KeyPair.generate(), KeyPair.generate()


@pytest_asyncio.fixture
async def client(aiohttp_client, tmp_path, keys):
    svc = open_service(tmp_path / "db", *keys, FAST)
    c = await aiohttp_client(create_node_app(svc))
    c.svc = svc
    yield c
    await c.close()
    svc.close()


def forge_signature(tx: SignedTx) -> SignedTx:
    """Same body (so the same tx hash), a signature that does not verify."""
    from ledger import codec
    bad = [[tx.signatures[0][0], bytes(64)]]
    raw = codec.encode([tx.body.to_list(), bad])
    return SignedTx(tx.body, ((tx.signatures[0][0], bytes(64)),), raw, tx.tx_hash)


@pytest.mark.asyncio
async def test_batch_submit_answers_each_tx_in_order_and_admitted_ones_commit(client, keys):
    _, issuer = keys
    alice, bob = KeyPair.generate(), KeyPair.generate()
    t1 = make_tx(CHAIN, "mint", issuer, 1, [alice.public_key, 10])
    t2 = make_tx(CHAIN, "mint", issuer, 2, [bob.public_key, 20])
    stranger = make_tx(CHAIN, "mint", KeyPair.generate(), 1, [bob.public_key, 5])
    forged = forge_signature(make_tx(CHAIN, "mint", issuer, 3, [bob.public_key, 1]))
    resp = await client.post("/v1/txs", json={"txs": [t1.raw.hex(), t2.raw.hex(), t1.raw.hex(),
                                                     forged.raw.hex(), stranger.raw.hex()]})
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert results[0] == {"tx_hash": t1.tx_hash.hex(), "status": "pending"}
    assert results[1] == {"tx_hash": t2.tx_hash.hex(), "status": "pending"}
    assert results[2]["error"]["code"] == "duplicate_tx"
    assert results[3]["error"]["code"] == "tx_rejected" and "verify" in results[3]["error"]["message"]
    assert len(results) == 5 and "tx_hash" in results[4]  # admissible; the mint rule fails it on chain
    await wait_committed(client.svc, t2.tx_hash)
    resp = await signed_get(client, f"/v1/accounts/{bob.public_key.hex()}", bob, CHAIN)
    assert (await resp.json())["balance"] == 20


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [
    {"txs": []}, {"txs": "00"}, {"txs": [1]}, {"tx": "00"}, {"txs": ["zz"]},
    {"txs": ["00"] * (MAX_BATCH_TXS + 1)},
])
async def test_a_malformed_batch_is_refused_whole_with_400(client, body):
    resp = await client.post("/v1/txs", json=body)
    doc = await resp.json()
    assert resp.status == 400 and doc["error"]["code"] == "bad_request", doc
    assert len(client.svc.mempool) == 0


def test_openapi_describes_the_batch_route():
    op = OPENAPI["paths"]["/v1/txs"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["required"] == ["txs"]


@pytest.mark.asyncio
async def test_block_json_lists_the_same_tx_hashes_from_memory_and_from_disk(client, keys):
    _, issuer = keys
    txs = [make_tx(CHAIN, "mint", issuer, n, [KeyPair.generate().public_key, n]) for n in (1, 2, 3)]
    client.svc.admission.submit_txs([t.raw for t in txs])
    done = await wait_committed(client.svc, txs[-1].tx_hash)
    height = done["height"]
    from_memory = client.svc.reads.get_block_tx_hashes(height)
    client.svc.committer._block_hashes.clear()
    resp = await signed_get(client, f"/v1/blocks/{height}", AUDITOR, CHAIN)
    listed = (await resp.json())["txs"]
    assert listed == [h.hex() for h in from_memory] and txs[-1].tx_hash.hex() in listed


def _block_with(store, parent, txs, proposer):
    execution, rejected = chain.build_block(store, store, parent, txs, parent.timestamp_ms + 1, proposer,
                                            signatures_checked=True)
    assert rejected == []
    return execution.block


@pytest.mark.asyncio
async def test_a_validator_trusts_only_the_exact_envelope_its_mempool_verified(tmp_path, keys):
    node, issuer = keys
    svc = open_service(tmp_path / "db", node, issuer, FAST)
    try:
        good = make_tx(CHAIN, "mint", issuer, 1, [KeyPair.generate().public_key, 5])
        forged = forge_signature(good)
        svc.admission.submit_txs([good.raw], gossip=False)
        assert svc.pipeline.is_known_verified(good) and not svc.pipeline.is_known_verified(forged)
        parent = svc.pipeline.head_header()
        vs = svc.genesis.validator_set_hash
        block = _block_with(svc.store, parent, [forged], node.public_key)
        with pytest.raises(InvalidBlock, match="does not verify"):
            chain.validate_block(svc.store, svc.store, parent, block, block.header.timestamp_ms, 1000, vs,
                                 known_verified=svc.pipeline.is_known_verified)
        trusted = _block_with(svc.store, parent, [good], node.public_key)
        calls = []

        def spy(tx):
            calls.append(tx.tx_hash)
            return svc.pipeline.is_known_verified(tx)
        execution = chain.validate_block(svc.store, svc.store, parent, trusted, trusted.header.timestamp_ms, 1000,
                                         vs, known_verified=spy)
        assert execution.header == trusted.header and calls == [good.tx_hash]
    finally:
        svc.close()


@pytest.mark.asyncio
async def test_an_idle_single_node_still_commits_blocks(tmp_path, keys):
    svc = open_service(tmp_path / "db", *keys, FAST)
    await svc.start()
    try:
        await wait_height(svc, 2, timeout_s=5)
    finally:
        await svc.stop()
        svc.close()


def test_the_builder_keeps_nonce_gap_txs_pending_and_evicts_the_rest_with_a_reason(tmp_path, keys):
    from ledger import reasons
    from ledger.reasons import invalid_tx
    node, issuer = keys
    svc = open_service(tmp_path / "db", node, issuer, FAST)
    try:
        gap = make_tx(CHAIN, "mint", issuer, 3, [KeyPair.generate().public_key, 1])
        low = make_tx(CHAIN, "mint", issuer, 1, [KeyPair.generate().public_key, 1])
        svc.admission.submit_txs([gap.raw, low.raw], gossip=False)
        evicted = svc.pipeline.evict_rejected([(gap, invalid_tx(reasons.NONCE_GAP, "gap")),
                                      (low, invalid_tx(reasons.NONCE_TOO_LOW, "used"))])
        assert evicted == [low.tx_hash]
        assert svc.reads.get_tx_status(gap.tx_hash)["status"] == "pending"
        doc = svc.reads.get_tx_status(low.tx_hash)
        assert doc["status"] == "evicted" and doc["reason"] == reasons.NONCE_TOO_LOW
    finally:
        svc.close()


@pytest.mark.asyncio
async def test_an_idle_network_waits_the_empty_block_interval_and_a_tx_wakes_it(tmp_path, keys):
    import dataclasses
    import time
    node, issuer = keys
    opts = dataclasses.replace(FAST, empty_block_interval_ms=600)
    svc = open_service(tmp_path / "db", node, issuer, opts)
    await svc.start()
    try:
        await wait_height(svc, 2, timeout_s=5)
        t0 = time.monotonic()
        await wait_height(svc, 4, timeout_s=5)
        assert time.monotonic() - t0 >= 0.9  # two empty blocks at >= 0.6 s apart, not 20 ms
        await asyncio.sleep(0.05)
        t1 = time.monotonic()
        tx = make_tx(CHAIN, "mint", issuer, 1, [KeyPair.generate().public_key, 1])
        svc.admission.submit_txs([tx.raw])
        await wait_committed(svc, tx.tx_hash, timeout_s=5)
        assert time.monotonic() - t1 < 0.4  # the tx did not wait for the empty-block interval
    finally:
        await svc.stop()
        svc.close()


def test_the_block_target_shrinks_when_blocks_execute_slowly(tmp_path, keys):
    import dataclasses
    svc = open_service(tmp_path / "db", *keys, dataclasses.replace(FAST, base_timeout_ms=1000, block_max_txs=2000))
    try:
        assert svc.pipeline.get_block_target() == 2000
        for _ in range(10):
            svc.pipeline._observe_execution(0.5, 1000)  # 0.5 ms per tx -> 300 ms budget holds 600
        assert svc.pipeline.get_block_target() == 600
        for _ in range(30):
            svc.pipeline._observe_execution(0.01, 1000)
        assert svc.pipeline.get_block_target() == 2000
    finally:
        svc.close()


@pytest.mark.asyncio
async def test_a_block_prebuilt_on_a_pending_parent_is_proposed_and_validates_on_the_committed_state(tmp_path,
                                                                                                     keys):
    from consensus.events import RequestBlock
    node, issuer = keys
    svc = open_service(tmp_path / "db", node, issuer, FAST)
    try:
        alice = KeyPair.generate()
        first = [make_tx(CHAIN, "mint", issuer, 1, [alice.public_key, 50])]
        svc.admission.submit_txs([t.raw for t in first], gossip=False)
        parent = svc.pipeline.head_header()
        pending, _ = chain.build_block(svc.store, svc.store, parent, first, parent.timestamp_ms + 1,
                                       node.public_key, signatures_checked=True)
        # While block 1 is being voted on, more txs arrive (the sender's next nonces and a transfer).
        later = [make_tx(CHAIN, "mint", issuer, 2, [alice.public_key, 5]),
                 make_tx(CHAIN, "transfer", alice, 1, [issuer.public_key, 20, bytes(32)])]
        svc.admission.submit_txs([t.raw for t in later], gossip=False)
        await svc.pipeline._prebuild(pending)
        assert svc.pipeline._prebuilt is not None
        svc.committer.commit(pending.block, (), pending, source="test")  # block 1 decided as pre-supposed
        ready = svc.pipeline.process_request_block(RequestBlock(2, 0))
        # block 1 is timestamped just after the (old) genesis time: its lot is a year past by block 2's clock time,
        # so the pre-built block starts with the block-sweep that expires it
        assert list(ready.block.txs) == [sweeps.make_sweep_tx(CHAIN, 2).raw] + [t.raw for t in later]
        head = svc.pipeline.head_header()
        execution = chain.validate_block(svc.store, svc.store, head, ready.block, ready.block.header.timestamp_ms,
                                         1000, svc.genesis.validator_set_hash)
        assert execution.header == ready.block.header
    finally:
        svc.close()


@pytest.mark.asyncio
async def test_a_prebuilt_block_on_a_parent_that_was_not_decided_is_not_proposed(tmp_path, keys):
    from consensus.events import RequestBlock
    node, issuer = keys
    svc = open_service(tmp_path / "db", node, issuer, FAST)
    try:
        alice = KeyPair.generate()
        txs = [make_tx(CHAIN, "mint", issuer, n, [alice.public_key, n]) for n in (1, 2)]
        svc.admission.submit_txs([t.raw for t in txs], gossip=False)
        parent = svc.pipeline.head_header()
        guessed, _ = chain.build_block(svc.store, svc.store, parent, txs[:1], parent.timestamp_ms + 1,
                                       node.public_key, signatures_checked=True)
        await svc.pipeline._prebuild(guessed)
        decided, _ = chain.build_block(svc.store, svc.store, parent, txs[:1], parent.timestamp_ms + 2,
                                       node.public_key, signatures_checked=True)
        svc.committer.commit(decided.block, (), decided, source="test")  # another block 1 won (other timestamp)
        ready = svc.pipeline.process_request_block(RequestBlock(2, 0))
        assert ready.block.header.prev_hash == decided.block.hash
        # (block 1's lot, timestamped at the old genesis time, is dead by block 2's clock time: swept first)
        assert list(ready.block.txs) == [sweeps.make_sweep_tx(CHAIN, 2).raw, txs[1].raw]
    finally:
        svc.close()


def test_validation_decodes_from_admitted_envelopes_and_forgets_them_at_commit(tmp_path, keys):
    from ledger.tx import decode_tx
    node, issuer = keys
    svc = open_service(tmp_path / "db", node, issuer, FAST)
    try:
        tx = make_tx(CHAIN, "mint", issuer, 1, [KeyPair.generate().public_key, 5])
        other = make_tx(CHAIN, "mint", issuer, 2, [KeyPair.generate().public_key, 5])
        [admitted] = svc.admission.submit_txs([tx.raw], gossip=False)
        assert svc.pipeline.decode_known(tx.raw) is admitted
        assert svc.pipeline.decode_known(other.raw) == decode_tx(other.raw)  # never admitted: decoded afresh
        parent = svc.pipeline.head_header()
        execution, _ = chain.build_block(svc.store, svc.store, parent, [admitted], parent.timestamp_ms + 1,
                                         node.public_key, signatures_checked=True)
        checked = chain.validate_block(svc.store, svc.store, parent, execution.block,
                                       execution.header.timestamp_ms, 1000, svc.genesis.validator_set_hash,
                                       decode=svc.pipeline.decode_known)
        assert checked.header == execution.header
        svc.committer.commit(execution.block, (), execution, source="test")
        assert tx.raw not in svc.committer.decoded
    finally:
        svc.close()
