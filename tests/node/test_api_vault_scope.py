"""The vault routes' branch scope over a node whose store holds four branches and a customer of branch-1:
staff of branch-2 get 403 wrong_branch for reads and writes; branch-1 staff pass the scope check."""

from __future__ import annotations

import json
import time

import pytest
import pytest_asyncio

from ledger.storage import Store
from node.app import create_node_app
from node.service import NodeService
from node.vault import compute_request_headers
from tests.ledger.governance_world import STAFF_1, STAFF_2
from tests.node.test_reads import GovChain
from tests.node.test_service import FAST
from ledger.keys import KeyPair
from tests.strategies import ALICE, CHAIN_ID, VALIDATORS

PERSON = {"name": "Ines Varga", "email": "ines@example.net"}


@pytest_asyncio.fixture
async def client(aiohttp_client, tmp_path):
    g = GovChain(tmp_path / "db")
    assert g.block((STAFF_1, "register-customer", [ALICE.public_key, 1, b"\x07" * 32]))[0].status == 0
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


@pytest.mark.asyncio
async def test_staff_of_another_branch_get_403_wrong_branch_for_reads_and_writes(client):
    path = f"/v1/vault/customers/{ALICE.public_key.hex()}"
    status, doc = await signed(client, STAFF_2, "GET", path)
    assert status == 403 and doc["error"]["code"] == "wrong_branch"
    assert "registered in branch 'branch-1'; staff of branch 'branch-2'" in doc["error"]["message"]
    body = {"customer": ALICE.public_key.hex(), "data": PERSON, "salt": "00" * 32}
    status, doc = await signed(client, STAFF_2, "POST", "/v1/vault/customers", body)
    assert status == 403 and doc["error"]["code"] == "wrong_branch"


@pytest.mark.asyncio
async def test_staff_of_the_customers_branch_pass_the_scope_and_meet_the_vault_rules(client):
    status, doc = await signed(client, STAFF_1, "GET", f"/v1/vault/customers/{ALICE.public_key.hex()}")
    assert status == 404 and doc["error"]["code"] == "vault_not_found"  # nothing stored on this node yet
    body = {"customer": ALICE.public_key.hex(), "data": PERSON, "salt": "00" * 32}
    status, doc = await signed(client, STAFF_1, "POST", "/v1/vault/customers", body)
    assert status == 409 and doc["error"]["code"] == "commitment_mismatch"  # the on-chain commitment rules


@pytest.mark.asyncio
async def test_staff_of_another_branch_squatting_a_draft_record_do_not_block_the_registering_branch(client):
    carla = KeyPair.generate().public_key.hex()  # not registered yet: both branches write drafts
    squat = {"customer": carla, "data": {"name": "Mallory's placeholder"}}
    assert (await signed(client, STAFF_2, "POST", "/v1/vault/customers", squat))[0] == 201
    status, doc = await signed(client, STAFF_1, "POST", "/v1/vault/customers", {"customer": carla, "data": PERSON})
    assert status == 201, doc  # the registering branch replaces the squatter's draft
    # The draft is now branch-1's: branch-2 staff can no longer read what branch-1 stored.
    status, doc = await signed(client, STAFF_2, "GET", f"/v1/vault/customers/{carla}")
    assert status == 403 and doc["error"]["code"] == "wrong_branch", doc
    status, doc = await signed(client, STAFF_1, "GET", f"/v1/vault/customers/{carla}")
    assert status == 200 and doc["data"] == PERSON, doc
