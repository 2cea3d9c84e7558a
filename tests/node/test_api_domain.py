"""The domain routes over a real single-validator service whose store already holds a customer story."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import pytest_asyncio

from ledger.keys import KeyPair
from ledger.state_proof import verify_state_proof
from ledger.storage import Store
from ledger.tx import make_tx
from node.app import create_node_app
from node.routes import OPENAPI
from node.service import NodeService
from node.vault import compute_request_headers
from tests.node.local_chain import CHAIN, LocalChain, play_story
from tests.node.signing import next_stamp_ms, signed_get
from tests.node.test_service import FAST

PERSON = {"name": "Zoé Durand", "email": "zoe@example.net", "phone": "+41 79 555 01 02"}


@pytest_asyncio.fixture
async def client(aiohttp_client, tmp_path):
    c = LocalChain(tmp_path / "db")
    story = play_story(c)
    c.store.close()
    svc = NodeService(key=c.node, genesis=c.genesis, store=Store.open(tmp_path / "db"), options=FAST)
    client = await aiohttp_client(create_node_app(svc))
    client.svc, client.chain, client.story = svc, c, story
    yield client
    await client.close()
    svc.close()


async def get(client, path: str, key: KeyPair | None = None) -> tuple[int, dict]:
    """GET ``path`` signed by ``key`` (default: the company auditor, who may read everything)."""
    resp = await signed_get(client, path, key or client.chain.auditor, CHAIN)
    return resp.status, await resp.json()


def assert_error(status: int, doc: dict, want_status: int, code: str | None = None) -> None:
    assert status == want_status, doc
    assert set(doc["error"]) == {"code", "message"} and doc["error"]["message"]
    if code:
        assert doc["error"]["code"] == code, doc


async def signed(client, key: KeyPair, method: str, path: str, body: dict | None = None, now_ms: int | None = None):
    raw = b"" if body is None else json.dumps(body).encode()
    headers = compute_request_headers(key, CHAIN, method, path, raw,
                                      next_stamp_ms() if now_ms is None else now_ms)
    resp = await client.request(method, path, data=raw or None, headers=headers)
    return resp.status, await resp.json()


async def commit(client, tx, timeout_s: float = 10.0) -> dict:
    resp = await client.post("/v1/tx", json={"tx": tx.raw.hex()})
    assert resp.status == 202, await resp.text()
    for _ in range(int(timeout_s / 0.02)):
        status, doc = await get(client, f"/v1/tx/{tx.tx_hash.hex()}")
        if doc.get("status") == "committed":
            return doc
        await asyncio.sleep(0.02)
    raise AssertionError(f"tx not committed: {doc}")


@pytest.mark.asyncio
async def test_coin_view_route_shows_spendable_balance_tier_and_next_nonce(client):
    alice = client.story["alice"].public_key.hex()
    status, doc = await get(client, f"/v1/accounts/{alice}/coin", client.story["alice"])
    assert status == 200 and doc["balance"] == 845 and doc["tier"] == "base" and doc["kyc_level"] == 1
    assert doc["next_nonce"] == doc["nonce"] + 1 == 4
    assert_error(*await get(client, "/v1/accounts/xyz/coin"), 400, "bad_request")


@pytest.mark.asyncio
async def test_proof_route_answers_a_document_that_verifies_offline(client):
    alice = client.story["alice"].public_key.hex()
    status, doc = await get(client, f"/v1/accounts/{alice}/proof", client.story["alice"])
    assert status == 200
    assert verify_state_proof(doc, client.chain.genesis).balance == 845
    assert_error(*await get(client, "/v1/accounts/00/proof"), 400)


@pytest.mark.asyncio
async def test_ticket_and_order_routes_and_their_refusals(client):
    status, doc = await get(client, "/v1/tickets/T1", client.story["alice"])  # her own ticket
    assert status == 200 and doc["state"] == "resolved" and doc["first_response_ms"] == 60_000
    status, doc = await get(client, "/v1/orders/O1", client.story["clerk"])  # staff of the order's branch
    assert status == 200 and doc["status"] == "confirmed" and doc["earned"] == 95
    assert_error(*await get(client, "/v1/tickets/T9"), 404, "not_found")
    assert_error(*await get(client, "/v1/orders/O9"), 404, "not_found")
    assert_error(*await get(client, "/v1/tickets/" + "x" * 65), 400, "bad_request")
    assert_error(*await get(client, "/v1/orders/%20O1"), 400, "bad_request")


@pytest.mark.asyncio
async def test_policy_route_shows_current_and_past_versions(client):
    c = client.chain
    await commit(client, make_tx(CHAIN, "propose-set-policy", c.admin, c.nonces[c.admin.public_key] + 1,
                                 ["window", "refund_window_ms", 1234]))
    status, now = await get(client, "/v1/policy")
    assert status == 200 and now["policy"]["refund_window_ms"] == 1234 and now["version"] == 1
    status, old = await get(client, "/v1/policy?version=0")
    assert status == 200 and old["policy"]["refund_window_ms"] == 30 * 86_400_000
    assert_error(*await get(client, "/v1/policy?version=abc"), 400, "bad_request")
    assert_error(*await get(client, "/v1/policy?version=-1"), 400, "bad_request")
    assert_error(*await get(client, "/v1/policy?version=9"), 404, "not_found")


@pytest.mark.asyncio
async def test_customer_route_returns_the_on_chain_record_only(client):
    status, doc = await get(client, f"/v1/customers/{client.story['alice'].public_key.hex()}", client.story["alice"])
    assert status == 200 and doc["kyc_level"] == 1 and "commitment" in doc and "name" not in doc
    assert_error(*await get(client, f"/v1/customers/{client.story['clerk'].public_key.hex()}"), 404)
    assert_error(*await get(client, "/v1/customers/nothex"), 400)


@pytest.mark.asyncio
async def test_report_route_per_branch_and_period_and_its_refusals(client):
    status, doc = await get(client, "/v1/report?branch=north", client.story["clerk"])  # a role holder
    assert status == 200 and doc["coins"]["compensated"] == 200 and doc["ratings"]["average"] == 4
    assert doc["indexed_height"] >= 10
    status, doc = await get(client, f"/v1/report?branch=north&since={client.story['opened'] + 1}")
    assert status == 200 and doc["coins"]["earned"] == 0
    assert_error(*await get(client, "/v1/report?since=yesterday"), 400, "bad_request")
    assert_error(*await get(client, "/v1/report?since=10&until=5"), 400, "bad_request")
    assert_error(*await get(client, "/v1/report?branch=" + "b" * 65), 400, "bad_request")


@pytest.mark.asyncio
async def test_staff_signed_vault_store_returns_a_commitment_and_reads_back(client):
    staff, dana = client.chain.staff, KeyPair.generate()
    status, doc = await signed(client, staff, "POST", "/v1/vault/customers",
                               {"customer": dana.public_key.hex(), "data": PERSON})
    assert status == 201 and len(bytes.fromhex(doc["commitment"])) == 32
    status, back = await signed(client, staff, "GET", f"/v1/vault/customers/{dana.public_key.hex()}")
    assert status == 200 and back["data"] == PERSON and back["salt"] == doc["salt"]


@pytest.mark.asyncio
async def test_vault_refuses_unsigned_non_staff_stale_and_replayed_requests(client):
    body = {"customer": KeyPair.generate().public_key.hex(), "data": PERSON}
    resp = await client.post("/v1/vault/customers", json=body)
    assert_error(resp.status, await resp.json(), 401, "unsigned_request")
    assert_error(*await signed(client, KeyPair.generate(), "POST", "/v1/vault/customers", body), 403,
                 "vault_unauthorized")
    stale = int(time.time() * 1000) - 10 * 60 * 1000
    assert_error(*await signed(client, client.chain.staff, "POST", "/v1/vault/customers", body, now_ms=stale), 401,
                 "stale_request")
    raw = json.dumps(body).encode()
    headers = compute_request_headers(client.chain.staff, CHAIN, "POST", "/v1/vault/customers", raw,
                                      int(time.time() * 1000))
    first = await client.post("/v1/vault/customers", data=raw, headers=headers)
    again = await client.post("/v1/vault/customers", data=raw, headers=headers)
    assert first.status == 201
    assert_error(again.status, await again.json(), 401, "replayed_request")
    assert_error(*await signed(client, client.chain.staff, "POST", "/v1/vault/customers",
                               {"customer": "abc", "data": PERSON}), 400)
    assert_error(*await signed(client, client.chain.staff, "POST", "/v1/vault/customers",
                               {"customer": body["customer"], "data": {"Bad Field": "x"}}), 400, "vault_error")
    assert_error(*await signed(client, client.chain.staff, "GET",
                               f"/v1/vault/customers/{KeyPair.generate().public_key.hex()}"), 404, "vault_not_found")


@pytest.mark.asyncio
async def test_committed_erasure_shreds_the_vault_key_and_the_record_stays_on_chain(client):
    c, erin = client.chain, KeyPair.generate()
    status, doc = await signed(client, c.staff, "POST", "/v1/vault/customers",
                               {"customer": erin.public_key.hex(), "data": PERSON})
    commitment = bytes.fromhex(doc["commitment"])
    staff_nonce = c.nonces.get(c.staff.public_key, 0)
    await commit(client, make_tx(CHAIN, "register-customer", c.staff, staff_nonce + 1,
                                 [erin.public_key, 0, commitment]))
    done = await commit(client, make_tx(CHAIN, "erase-customer-data", erin, 1, [erin.public_key]))
    assert done["outcome"] == "applied"
    assert_error(*await signed(client, c.staff, "GET", f"/v1/vault/customers/{erin.public_key.hex()}"),
                 410, "customer_erased")
    status, record = await get(client, f"/v1/customers/{erin.public_key.hex()}")
    assert status == 200 and record["erased"] and record["commitment"] == commitment.hex()


@pytest.mark.asyncio
async def test_openapi_documents_every_domain_route(client):
    status, doc = await get(client, "/openapi.json")
    for path in ("/v1/accounts/{id}/coin", "/v1/accounts/{id}/proof", "/v1/tickets/{id}", "/v1/orders/{id}",
                 "/v1/policy", "/v1/customers/{id}", "/v1/report", "/v1/vault/customers",
                 "/v1/vault/customers/{id}"):
        assert path in doc["paths"], path
    assert doc["paths"] == OPENAPI["paths"]


@pytest.mark.asyncio
async def test_the_follower_shreds_the_key_after_commit_without_any_request(client):
    from node.app_keys import VAULT_KEY
    c, fay = client.chain, KeyPair.generate()
    status, doc = await signed(client, c.staff, "POST", "/v1/vault/customers",
                               {"customer": fay.public_key.hex(), "data": PERSON})
    await commit(client, make_tx(CHAIN, "register-customer", c.staff, c.nonces.get(c.staff.public_key, 0) + 1,
                                 [fay.public_key, 0, bytes.fromhex(doc["commitment"])]))
    await commit(client, make_tx(CHAIN, "erase-customer-data", fay, 1, [fay.public_key]))
    vault = client.server.app[VAULT_KEY]
    for _ in range(100):
        if vault.is_erased(fay.public_key):
            break
        await asyncio.sleep(0.02)
    assert vault.is_erased(fay.public_key)


@pytest.mark.asyncio
async def test_erasure_shreds_the_vault_key_with_the_analytics_follower_absent(aiohttp_client, tmp_path):
    from node.app_keys import REPORT_KEY, VAULT_KEY
    c = LocalChain(tmp_path / "db")
    play_story(c)
    c.store.close()
    svc = NodeService(key=c.node, genesis=c.genesis, store=Store.open(tmp_path / "db"), options=FAST)
    client = await aiohttp_client(create_node_app(svc, analytics=False))
    client.chain = c  # its auditor reads the tx status
    try:
        assert REPORT_KEY not in client.server.app
        assert_error(*await get(client, "/v1/report"), 503, "analytics_off")
        fay = KeyPair.generate()
        status, doc = await signed(client, c.staff, "POST", "/v1/vault/customers",
                                   {"customer": fay.public_key.hex(), "data": PERSON})
        await commit(client, make_tx(CHAIN, "register-customer", c.staff, c.nonces.get(c.staff.public_key, 0) + 1,
                                     [fay.public_key, 0, bytes.fromhex(doc["commitment"])]))
        await commit(client, make_tx(CHAIN, "erase-customer-data", fay, 1, [fay.public_key]))
        vault = client.server.app[VAULT_KEY]
        for _ in range(100):
            if vault.is_erased(fay.public_key):
                break
            await asyncio.sleep(0.02)
        assert vault.is_erased(fay.public_key)
    finally:
        await client.close()
        svc.close()
