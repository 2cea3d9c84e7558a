"""The client HTTP API over a single-validator service with a temp LevelDB (aiohttp_client)."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from ledger.keys import KeyPair
from ledger.receipt import KEYS, verify
from ledger.receipt_compact import decode_compact
from ledger.tx import make_tx
from node.app import create_node_app
from node.errors import MempoolFull
from node.routes import OPENAPI
from tests.node.signing import signed_get
from tests.node.test_service import AUDITOR, CHAIN, FAST, open_service


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


async def wait_status(client, tx_hash: str, want: str = "committed", timeout_s: float = 10.0,
                      key: KeyPair = AUDITOR) -> dict:
    for _ in range(int(timeout_s / 0.02)):
        resp = await signed_get(client, f"/v1/tx/{tx_hash}", key, CHAIN)
        doc = await resp.json()
        if doc.get("status") == want:
            return doc
        await asyncio.sleep(0.02)
    raise AssertionError(f"tx {tx_hash} still {doc} after {timeout_s} s")


async def post_tx(client, tx) -> tuple[int, dict]:
    resp = await client.post("/v1/tx", json={"tx": tx.raw.hex()})
    return resp.status, await resp.json()


def assert_error(doc: dict, code: str) -> None:
    assert set(doc["error"]) == {"code", "message"} and doc["error"]["code"] == code, doc
    assert doc["error"]["message"]


@pytest.mark.asyncio
async def test_submitted_tx_turns_committed_and_its_receipt_verifies_offline(client, keys):
    _, issuer = keys
    alice = KeyPair.generate()
    tx = make_tx(CHAIN, "mint", issuer, 1, [alice.public_key, 250])
    status, doc = await post_tx(client, tx)
    assert status == 202 and doc == {"tx_hash": tx.tx_hash.hex(), "status": "pending"}
    done = await wait_status(client, tx.tx_hash.hex())
    assert done["outcome"] == "applied" and done["height"] >= 1 and done["index"] == 0
    resp = await signed_get(client, f"/v1/tx/{tx.tx_hash.hex()}/receipt", alice, CHAIN)  # the mint names her
    receipt = await resp.json()
    checked = verify(receipt, client.svc.genesis)
    assert checked.tx_hash == tx.tx_hash and checked.height == done["height"]
    resp = await signed_get(client, f"/v1/tx/{tx.tx_hash.hex()}/receipt?format=msgpack", issuer, CHAIN)
    assert resp.status == 200 and resp.content_type == "application/msgpack"
    raw = await resp.read()
    assert raw[:2] == b"\x9a\x03"  # compact layout 3: a 10-field array led by 3
    assert decode_compact(raw) == {k: receipt[k] for k in KEYS}  # the same receipt as the JSON route's
    assert verify(decode_compact(raw), client.svc.genesis).tx_hash == tx.tx_hash
    resp = await signed_get(client, f"/v1/accounts/{alice.public_key.hex()}", alice, CHAIN)
    assert (await resp.json())["balance"] == 250
    resp = await signed_get(client, f"/v1/accounts/{alice.public_key.hex()}/history", alice, CHAIN)
    items = (await resp.json())["items"]
    assert [i["tx_hash"] for i in items] == [tx.tx_hash.hex()] and items[0]["kind"] == "mint"


@pytest.mark.asyncio
async def test_next_nonce_counts_pending_txs_of_the_sender(client, keys):
    _, issuer = keys
    client.svc.consensus.driver.cancel_timers()  # nothing commits while we look: pending stays pending
    await client.svc.stop()
    for n in (1, 2):
        client.svc.admission.submit_tx(make_tx(CHAIN, "mint", issuer, n, [issuer.public_key, 1]).raw, gossip=False)
    doc = await (await signed_get(client, f"/v1/accounts/{issuer.public_key.hex()}", issuer, CHAIN)).json()
    assert doc["nonce"] == 0 and doc["next_nonce"] == 3 and doc["roles"] == ["issuer"]


@pytest.mark.asyncio
async def test_blocks_latest_and_raw_format_agree(client, keys):
    await asyncio.sleep(0.2)
    validator = keys[0]  # whole blocks: validators, auditors, compliance
    latest = await (await signed_get(client, "/v1/blocks/latest", validator, CHAIN)).json()
    same = await (await signed_get(client, f"/v1/blocks/{latest['height']}", AUDITOR, CHAIN)).json()
    assert latest == same and len(same["certificate"]) == (1 if same["height"] else 0)
    raw = await (await signed_get(client, f"/v1/blocks/{latest['height']}?format=raw", validator, CHAIN)).json()
    from ledger.block import Block
    header = Block.decode(bytes.fromhex(raw["block"])).header
    assert header.hash().hex() == latest["block_hash"]
    assert latest["next_validator_set_hash"] == header.next_validator_set_hash.hex() == latest["validator_set_hash"]


@pytest.mark.asyncio
async def test_status_names_chain_node_height_and_validator(client, keys):
    doc = await (await client.get("/v1/status")).json()
    assert doc["chain_id"] == CHAIN and doc["node"] == "branch-1" and doc["validator"] == keys[0].public_key.hex()
    for key in ("height", "last_block_hash", "round", "peers", "mempool"):
        assert key in doc


@pytest.mark.asyncio
@pytest.mark.parametrize("path,status,code", [
    ("/v1/tx/zz", 400, "bad_request"),
    ("/v1/tx/" + "ab" * 31, 400, "bad_request"),
    ("/v1/tx/" + "ab" * 32, 404, "unknown_tx"),
    ("/v1/tx/" + "ab" * 32 + "/receipt", 404, "not_found"),
    ("/v1/accounts/xyz", 400, "bad_request"),
    ("/v1/accounts/" + "00" * 32 + "/history?limit=0", 400, "bad_request"),
    ("/v1/blocks/abc", 400, "bad_request"),
    ("/v1/blocks/999999", 404, "not_found"),
    ("/v1/blocks/0?format=xml", 400, "bad_request"),
    ("/v1/nothing", 404, "not_found"),
])
async def test_bad_reads_get_a_json_error_with_the_right_4xx(client, path, status, code):
    resp = await signed_get(client, path, AUDITOR, CHAIN)  # the auditor may read anything: what is left is the 4xx
    assert resp.status == status
    assert_error(await resp.json(), code)


@pytest.mark.asyncio
@pytest.mark.parametrize("body,code", [
    (b"not json", "bad_request"),
    (b'{"tx": 5}', "bad_request"),
    (b'{"tx": "zz"}', "bad_request"),
    (b'{"tx": "c0"}', "decode_error"),
    (b'{"tx": "9101"}', "schema_error"),
])
async def test_malformed_submissions_are_refused_with_400(client, body, code):
    resp = await client.post("/v1/tx", data=body)
    assert resp.status == 400
    assert_error(await resp.json(), code)


@pytest.mark.asyncio
async def test_bad_signature_other_chain_and_duplicate_are_refused(client, keys):
    _, issuer = keys
    other = make_tx("other-chain", "mint", issuer, 1, [issuer.public_key, 1])
    status, doc = await post_tx(client, other)
    assert status == 400 and doc["error"]["code"] == "tx_rejected"
    tx = make_tx(CHAIN, "mint", issuer, 5, [issuer.public_key, 1])  # gap: stays pending
    forged = bytearray(tx.raw)
    forged[-1] ^= 1
    resp = await client.post("/v1/tx", json={"tx": bytes(forged).hex()})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "tx_rejected"
    assert (await post_tx(client, tx))[0] == 202
    status, doc = await post_tx(client, tx)
    assert status == 409 and doc["error"]["code"] == "duplicate_tx"


@pytest.mark.asyncio
async def test_full_mempool_answers_503_with_retry_after(client, keys, monkeypatch):
    def full(tx, check):
        raise MempoolFull("mempool holds 20000 txs; the limit is 20000", retry_after=2)
    monkeypatch.setattr(client.svc.mempool, "add", full)
    resp = await client.post("/v1/tx", json={"tx": make_tx(CHAIN, "mint", keys[1], 1, [keys[1].public_key, 1]).raw.hex()})
    assert resp.status == 503 and resp.headers["Retry-After"] == "2"
    assert_error(await resp.json(), "mempool_full")


@pytest.mark.asyncio
async def test_wrong_method_is_a_json_405(client):
    resp = await client.delete("/v1/status")
    assert resp.status == 405
    assert_error(await resp.json(), "method_not_allowed")


@pytest.mark.asyncio
async def test_openapi_documents_every_route(client):
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    routes = {r.resource.canonical for r in client.server.app.router.routes()}
    assert routes <= set(doc["paths"]), routes - set(doc["paths"])
    assert doc == OPENAPI


@pytest.mark.asyncio
async def test_metrics_expose_height_txs_mempool_peers_and_latency(client, keys):
    tx = make_tx(CHAIN, "mint", keys[1], 1, [keys[1].public_key, 3])
    await post_tx(client, tx)
    await wait_status(client, tx.tx_hash.hex())
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/plain"
    for name in ("carecoin_height", "carecoin_round_changes_total", "carecoin_committed_txs_total",
                 "carecoin_mempool_size", "carecoin_peers_connected", "carecoin_commit_latency_seconds_bucket"):
        assert name in text, name
    assert "carecoin_committed_txs_total 1.0" in text
    assert "carecoin_commit_latency_seconds_count 1.0" in text


@pytest.mark.asyncio
async def test_history_lists_newest_first_and_pages_with_next_before(client, keys):
    _, issuer = keys
    alice = KeyPair.generate()
    txs = []
    for n in (1, 2):
        tx = make_tx(CHAIN, "mint", issuer, n, [alice.public_key, n])
        await post_tx(client, tx)
        await wait_status(client, tx.tx_hash.hex())
        txs.append(tx)
    page = await (await signed_get(client, f"/v1/accounts/{alice.public_key.hex()}/history?limit=1", alice,
                                   CHAIN)).json()
    assert [i["tx_hash"] for i in page["items"]] == [txs[1].tx_hash.hex()]
    older = await (await signed_get(
        client, f"/v1/accounts/{alice.public_key.hex()}/history?limit=5&before={page['next_before']}", alice,
        CHAIN)).json()
    assert [i["tx_hash"] for i in older["items"]] == [txs[0].tx_hash.hex()]
    assert older["items"][0]["events"] and older["items"][0]["result"] == "applied"
