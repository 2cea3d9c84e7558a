"""The vault's text routes over a four-branch chain: alice is a customer of branch-1, bob of branch-1 and erased
on chain, carol exists nowhere; STAFF_1 is staff of branch-1, STAFF_2 of branch-2 (which sold alice order O2),
AUDIT holds the compliance role. Every refusal is a 4xx with its code; nothing is ever a 5xx."""

from __future__ import annotations

import json
import secrets
import time

import pytest
import pytest_asyncio

from ledger.commitments import MAX_TEXT_BYTES, TAG_TEXT
from ledger.hashing import H
from ledger.keys import KeyPair
from ledger.storage import Store
from node.app import create_node_app
from node.app_keys import STAFF_GUARD_KEY, VAULT_KEY
from node.service import NodeService
from node.vault import compute_request_headers
from tests.ledger.governance_world import ADMINS, STAFF_1, STAFF_2
from tests.node.test_reads import GovChain
from tests.node.test_service import FAST
from tests.strategies import ALICE, BOB, CAROL, CHAIN_ID, VALIDATORS

AUDIT = KeyPair.from_seed(b"\x61" * 32)
WORDS = "parcel arrived damaged"


@pytest_asyncio.fixture
async def client(aiohttp_client, tmp_path):
    g = GovChain(tmp_path / "db", {"proposal_lifetime_ms": 60_000})
    ok = [r.status for r in g.block((STAFF_1, "register-customer", [ALICE.public_key, 1, b"\x07" * 32]),
                                     (STAFF_1, "register-customer", [BOB.public_key, 1, b"\x08" * 32]),
                                     (STAFF_2, "create-order", ["O2", ALICE.public_key, 1000, "EUR", bytes(32)]),
                                     (ADMINS[0], "propose-grant-role", ["audit", AUDIT.public_key, "compliance", ""]))]
    ok += [r.status for r in g.block((STAFF_1, "erase-customer-data", [BOB.public_key]),
                                     (ADMINS[1], "approve-proposal", ["audit"]),
                                     (ADMINS[2], "approve-proposal", ["audit"]))]
    assert ok == [0] * 7
    g.store.close()
    svc = NodeService(key=VALIDATORS[0], genesis=g.genesis, store=Store.open(tmp_path / "db"), options=FAST)
    c = await aiohttp_client(create_node_app(svc))
    yield c
    await c.close()
    svc.close()


async def signed(client, key, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = compute_request_headers(key, CHAIN_ID, method, path, raw, int(time.time() * 1000))
    resp = await client.request(method, path, data=raw or None, headers=headers)
    return resp.status, await resp.json()


def text_body(customer: KeyPair, text: str = WORDS, kind: str = "ticket_message", **about) -> dict:
    salt = secrets.token_bytes(32)
    commitment = H(TAG_TEXT, salt + text.encode("utf-8", "surrogatepass"))  # also for texts the node refuses
    return {"customer": customer.public_key.hex(), "commitment": commitment.hex(),
            "salt": salt.hex(), "text": text, "kind": kind, **about}


async def store(client, signer: KeyPair, body: dict) -> tuple[int, dict]:
    return await signed(client, signer, "POST", "/v1/vault/texts", body)


async def read(client, signer: KeyPair, body: dict) -> tuple[int, dict]:
    return await signed(client, signer, "GET", f"/v1/vault/texts/{body['commitment']}")


@pytest.mark.asyncio
async def test_a_customers_text_is_read_back_by_them_their_branchs_staff_and_compliance_only(client):
    body = text_body(ALICE)
    assert (await store(client, ALICE, body))[0] == 201
    for reader in (ALICE, STAFF_1, AUDIT):
        status, doc = await read(client, reader, body)
        assert status == 200, doc
        assert (doc["text"], doc["kind"], doc["salt"], doc["customer"]) == (
            WORDS, "ticket_message", body["salt"], ALICE.public_key.hex())
    status, doc = await read(client, STAFF_2, body)
    assert status == 403 and doc["error"]["code"] == "wrong_branch" and WORDS not in json.dumps(doc)
    status, doc = await read(client, CAROL, body)
    assert status == 403 and "does not exist on chain" in doc["error"]["message"]
    status, doc = await read(client, BOB, body)  # bob exists (a customer): signs, but not for alice's texts
    assert status == 403 and doc["error"]["code"] == "vault_unauthorized"
    assert "neither customer" in doc["error"]["message"]


@pytest.mark.asyncio
async def test_staff_write_for_their_branchs_customer_and_another_branch_is_refused(client):
    assert (await store(client, STAFF_1, text_body(ALICE, "we are sorry", "ticket_response")))[0] == 201
    status, doc = await store(client, STAFF_2, text_body(ALICE, "we are sorry", "ticket_response"))
    assert status == 403 and doc["error"]["code"] == "wrong_branch"
    assert "belongs to branch 'branch-1'; staff of branch 'branch-2' may write" in doc["error"]["message"]


@pytest.mark.asyncio
async def test_staff_of_the_branch_that_sold_the_order_read_and_write_texts_about_it(client):
    body = text_body(ALICE, "the lid is cracked", "refund_reason", order="O2")
    assert (await store(client, ALICE, body))[0] == 201
    assert (await read(client, STAFF_2, body))[0] == 200
    assert (await store(client, STAFF_2, text_body(ALICE, "refund sent", "resolution", order="O2")))[0] == 201
    # naming an order that is not alice's grants nothing
    status, doc = await store(client, STAFF_2, text_body(BOB, "x", "resolution", order="O2"))
    assert status in (403, 410) and doc["error"]["code"] in ("wrong_branch", "customer_erased")


@pytest.mark.asyncio
async def test_a_stranger_key_stores_nothing_for_anyone_nor_for_itself_and_fills_no_replay_guard(client):
    for owner in (ALICE, CAROL):
        status, doc = await store(client, CAROL, text_body(owner))
        assert status == 403 and "does not exist on chain" in doc["error"]["message"]
    assert len(client.server.app[STAFF_GUARD_KEY].replay) == 0
    status, doc = await store(client, BOB, text_body(ALICE))  # a customer writes only their own texts
    assert status == 403 and doc["error"]["code"] == "vault_unauthorized"


@pytest.mark.asyncio
async def test_salt_and_text_that_do_not_open_the_commitment_are_refused_and_nothing_is_stored(client):
    body = {**text_body(ALICE), "text": "parcel arrived fine"}
    status, doc = await store(client, ALICE, body)
    assert status == 409 and doc["error"]["code"] == "commitment_mismatch"
    assert (await read(client, STAFF_1, body))[1]["error"]["code"] == "vault_not_found"  # staff may learn it


@pytest.mark.asyncio
async def test_an_erased_customer_gets_410_and_a_customer_erased_later_loses_every_text(client, ):
    status, doc = await store(client, BOB, text_body(BOB))
    assert status == 410 and doc["error"]["code"] == "customer_erased"
    body = text_body(ALICE)
    assert (await store(client, ALICE, body))[0] == 201
    assert client.server.app[VAULT_KEY].erase(ALICE.public_key)  # what the erasure follower does on the event
    for reader in (ALICE, STAFF_1, AUDIT):
        status, doc = await read(client, reader, body)
        assert status == 410 and doc["error"]["code"] == "customer_erased"
    assert (await store(client, ALICE, text_body(ALICE, "again")))[0] == 410


@pytest.mark.asyncio
async def test_a_text_over_the_size_bound_is_413(client):
    status, doc = await store(client, ALICE, text_body(ALICE, "é" * (MAX_TEXT_BYTES // 2 + 1)))
    assert status == 413 and doc["error"]["code"] == "text_too_large"


@pytest.mark.asyncio
async def test_a_retry_is_harmless_and_another_customer_cannot_take_the_commitment(client):
    body = text_body(ALICE)
    assert (await store(client, ALICE, body))[0] == 201
    status, doc = await store(client, ALICE, body)
    assert status == 200 and doc["stored"] is False
    status, doc = await store(client, STAFF_1, {**body, "customer": BOB.public_key.hex()})
    assert status in (409, 410) and doc["error"]["code"] in ("text_exists", "customer_erased")


@pytest.mark.asyncio
async def test_a_replayed_signed_request_is_refused(client):
    body = text_body(ALICE)
    raw = json.dumps(body).encode()
    headers = compute_request_headers(ALICE, CHAIN_ID, "POST", "/v1/vault/texts", raw, int(time.time() * 1000))
    first = await client.post("/v1/vault/texts", data=raw, headers=headers)
    again = await client.post("/v1/vault/texts", data=raw, headers=headers)
    assert first.status == 201 and again.status == 401
    assert "already used" in (await again.json())["error"]["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize("change, needle", [
    ({"text": ""}, "text is empty"),
    ({"text": "\ud800"}, "lone UTF-16 surrogate"),
    ({"kind": "Ticket Message"}, "text kind"),
    ({"salt": "00"}, "salt"),
    ({"commitment": "zz" * 32}, "not hex"),
    ({"ticket": "T1", "order": "O2"}, "one ticket or one order"),
    ({"ticket": " T1"}, "expected an id"),
    ({"text": 5}, "'text' is a JSON number"),
])
async def test_malformed_text_requests_are_400_never_5xx(client, change, needle):
    status, doc = await store(client, ALICE, {**text_body(ALICE), **change})
    assert status == 400 and needle in doc["error"]["message"], doc


@pytest.mark.asyncio
async def test_unsigned_text_requests_are_401(client):
    resp = await client.get(f"/v1/vault/texts/{'ab' * 32}")
    assert resp.status == 401 and "signed by an account's key" in (await resp.json())["error"]["message"]


MALLORY = KeyPair.from_seed(b"\x6d" * 32)


@pytest_asyncio.fixture
async def mallory_client(aiohttp_client, tmp_path):
    """As ``client``, plus mallory: no customer, no role, no coin; one tx of hers failed on chain, so her
    account has a nonce (anyone can get one: a failed tx is committed)."""
    g = GovChain(tmp_path / "db", {"proposal_lifetime_ms": 60_000})
    results = g.block((STAFF_1, "register-customer", [ALICE.public_key, 1, b"\x07" * 32]),
                      (MALLORY, "open-ticket", ["M1", "inquiry", 1, "", bytes(32)]))
    assert results[0].status == 0 and results[1].status != 0  # mallory's tx failed (not a customer)...
    from ledger.state import get_balance_nonce
    assert get_balance_nonce(g.store, MALLORY.public_key) == (0, 1)  # ...yet her nonce moved
    g.store.close()
    svc = NodeService(key=VALIDATORS[0], genesis=g.genesis, store=Store.open(tmp_path / "db"), options=FAST)
    c = await aiohttp_client(create_node_app(svc))
    yield c
    await c.close()
    svc.close()


@pytest.mark.asyncio
async def test_outsider_with_only_a_failed_tx_stores_no_texts_replicated_to_every_branch(mallory_client):
    """An outsider makes one failing tx (free) and her key 'exists on chain': she must still not store texts
    for herself, or a few thousand fresh keys × 10 000 texts × 4 KB fill every branch's disk."""
    body = text_body(MALLORY, "x" * 4000, "memo")
    status, doc = await store(mallory_client, MALLORY, body)
    assert status == 403 and doc["error"]["code"] == "vault_unauthorized", doc
    assert not mallory_client.server.app[VAULT_KEY].root.joinpath("texts", body["commitment"]).exists()
    assert (await store(mallory_client, ALICE, text_body(ALICE)))[0] == 201  # a customer still stores hers


@pytest.mark.asyncio
async def test_customer_bob_cannot_tell_whether_a_commitment_holds_a_text_nor_whose_it_is(client):
    body = text_body(ALICE)
    assert (await store(client, ALICE, body))[0] == 201
    alices = await read(client, BOB, body)
    nobodys = await read(client, BOB, text_body(ALICE))  # a commitment no text was stored for
    assert alices[0] == nobodys[0] == 403, (alices, nobodys)
    assert alices[1]["error"]["code"] == nobodys[1]["error"]["code"]
    assert ALICE.public_key.hex()[:16] not in json.dumps(alices[1])  # nor who owns it
