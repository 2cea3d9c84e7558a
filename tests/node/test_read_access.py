"""Who may read what, over a real node whose store holds four branches: a customer of branch-1 (Alice) with an
order and a ticket, a customer of branch-2 (Bob), staff of both branches, an auditor and compliance.

Attackers: anyone who can reach the API without a key, with a forged or replayed signature, another customer,
staff of another branch. Promises: no route that shows a customer's data answers them (401 unsigned/badly
signed/stale/replayed, 403 ``not_entitled`` naming who may read), and a refusal does not reveal whether the
object exists; the entitled readers read.
"""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import pytest_asyncio

from ledger import chain as ledger_chain
from ledger.block import make_seal
from ledger.keys import KeyPair
from ledger.storage import Store
from ledger.tx import make_tx
from node.app import create_node_app
from node.http import AUTH_OPEN, AUTH_READ
from node.routes import OPEN_ROUTES, OPENAPI, ROUTES
from node.service import NodeService
from node.vault import MAX_CLOCK_SKEW_MS, compute_request_headers
from tests.ledger.governance_world import STAFF_1, STAFF_2, make_gov_genesis
from tests.node.signing import next_stamp_ms, read_headers, signed_get, signed_url
from tests.node.test_service import FAST
from tests.strategies import ALICE, BOB, CHAIN_ID, ISSUER, VALIDATORS

AUDITOR, COMPLIANCE, STRANGER = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
H = b"\x07" * 32


def build_chain(path) -> dict:
    """Four branches; Alice registered by branch-1 staff with order O1 and ticket T1; Bob by branch-2 staff."""
    base = make_gov_genesis()
    genesis = dataclasses.replace(base, roles={**base.roles, "auditor": (AUDITOR.public_key,),
                                               "compliance": (COMPLIANCE.public_key,)})
    store = Store.open(path)
    block, execution = ledger_chain.genesis_block(genesis)
    store.commit_block(block, (), execution.results, execution.state_writes, execution.smt_nodes)
    nonces: dict[bytes, int] = {}
    now = [int(time.time() * 1000) - 60_000]
    hashes = {}

    def commit(*sent) -> None:
        txs = []
        for key, kind, payload in sent:
            n = nonces[key.public_key] = nonces.get(key.public_key, 0) + 1
            txs.append(make_tx(CHAIN_ID, kind, key, n, payload))
            hashes[kind] = txs[-1].tx_hash.hex()
        now[0] += 1000
        parent = store.get_header(store.head().height)
        ex = ledger_chain.execute_block(store, store, parent, txs, now[0], VALIDATORS[0].public_key, CHAIN_ID,
                                        genesis.validator_set_hash)
        assert all(r.status == 0 for r in ex.results), ex.results
        seal = make_seal(VALIDATORS[0], CHAIN_ID, ex.header.height, ex.block.hash)
        store.commit_block(ex.block, (seal,), ex.results, ex.state_writes, ex.smt_nodes)

    commit((STAFF_1, "register-customer", [ALICE.public_key, 1, H]),
           (STAFF_2, "register-customer", [BOB.public_key, 1, H]))
    commit((ISSUER, "mint", [ALICE.public_key, 100]))
    commit((STAFF_1, "create-order", ["O1", ALICE.public_key, 1000, "EUR", H]))
    commit((ALICE, "open-ticket", ["T1", "complaint", 2, "O1", H]))
    commit((STAFF_1, "respond-ticket", ["T1", H]))  # names no account: Alice is a party through her ticket
    store.close()
    return {"genesis": genesis, "hashes": hashes}


@pytest_asyncio.fixture
async def node(aiohttp_client, tmp_path):
    built = build_chain(tmp_path / "db")
    svc = NodeService(key=VALIDATORS[0], genesis=built["genesis"], store=Store.open(tmp_path / "db"), options=FAST)
    client = await aiohttp_client(create_node_app(svc, analytics=True))
    client.hashes = built["hashes"]
    yield client
    await client.close()
    svc.close()


async def read(client, key: KeyPair, path: str) -> tuple[int, dict]:
    resp = await signed_get(client, path, key, CHAIN_ID)
    return resp.status, await resp.json()


def alice_paths(client) -> list[str]:
    """Every data route, naming Alice's objects."""
    a = ALICE.public_key.hex()
    tx = client.hashes["open-ticket"]
    return [f"/v1/accounts/{a}", f"/v1/accounts/{a}/coin", f"/v1/accounts/{a}/proof", f"/v1/accounts/{a}/history",
            f"/v1/customers/{a}", "/v1/tickets/T1", "/v1/orders/O1", f"/v1/tx/{tx}", f"/v1/tx/{tx}/receipt"]


def sample_path(route) -> str:
    """The route's path with a plausible value in each parameter."""
    return (route.path.replace("{id}", ALICE.public_key.hex() if "accounts" in route.path or "customers" in route.path
                               else "T1")
            .replace("{hash}", "ab" * 32).replace("{height}", "1").replace("{commitment}", "cd" * 32))


# ---- the table ------------------------------------------------------------------------------------------

def test_every_route_is_either_on_the_reasoned_open_list_or_requires_a_signature():
    for route in ROUTES:
        key = (route.method, route.path)
        if route.auth == AUTH_OPEN:
            assert key in OPEN_ROUTES and len(OPEN_ROUTES[key]) > 20, f"{key} is open without a stated reason"
        else:
            assert key not in OPEN_ROUTES, f"{key} is on the open list but requires a signature"
        if route.auth == AUTH_READ:
            assert route.rule is not None and route.rule.readers, key
    assert set(OPEN_ROUTES) <= {(r.method, r.path) for r in ROUTES}, "the open list names a route that is gone"
    customer_data = ("/v1/accounts", "/v1/customers", "/v1/tickets", "/v1/orders", "/v1/tx/", "/v1/blocks",
                     "/v1/report", "/v1/vault")
    for route in ROUTES:
        if route.method == "GET" and route.path.startswith(customer_data):
            assert route.auth != AUTH_OPEN, f"{route.path} shows a customer's data and is open"


def test_openapi_shows_the_read_rule_and_the_signature_scheme_of_each_operation():
    assert "carecoinSignature" in OPENAPI["components"]["securitySchemes"]
    for route in ROUTES:
        op = OPENAPI["paths"][route.path][route.method.lower()]
        if route.auth == AUTH_OPEN:
            assert op["security"] == [] and "x-carecoin-access" not in op
        else:
            assert op["security"] == [{"carecoinSignature": []}], route.path
        if route.auth == AUTH_READ:
            assert op["x-carecoin-access"] == {"rule": route.rule.name, "readers": route.rule.readers}
            assert {"401", "403"} <= set(op["responses"])


# ---- 401: no key, a forged key, stale, replayed ---------------------------------------------------------

@pytest.mark.asyncio
async def test_an_unsigned_request_to_every_data_route_is_401(node):
    for route in ROUTES:
        if route.auth == AUTH_OPEN:
            continue
        path = sample_path(route)
        resp = await node.request(route.method, path, json={} if route.method == "POST" else None)
        doc = await resp.json()
        assert resp.status == 401 and doc["error"]["code"] == "unsigned_request", (route.path, doc)
        assert "X-Carecoin-Signature" in doc["error"]["message"]


@pytest.mark.asyncio
async def test_a_forger_who_names_alice_but_signs_with_another_key_gets_401_on_every_data_route(node):
    for path in alice_paths(node):
        url, raw = signed_url(node, path)
        headers = read_headers(STRANGER, CHAIN_ID, raw)
        headers["X-Carecoin-Staff"] = ALICE.public_key.hex()  # claims to be Alice
        resp = await node.get(url, headers=headers)
        doc = await resp.json()
        assert resp.status == 401 and doc["error"]["code"] == "bad_signature", (path, doc)


@pytest.mark.asyncio
async def test_a_signature_for_one_path_does_not_open_another(node):
    url, raw = signed_url(node, "/v1/accounts/" + ALICE.public_key.hex())
    headers = read_headers(BOB, CHAIN_ID, "/v1/accounts/" + BOB.public_key.hex())  # Bob signed his own read
    resp = await node.get(url, headers=headers)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "bad_signature"


@pytest.mark.asyncio
async def test_a_stale_signed_read_is_401(node):
    path = "/v1/accounts/" + ALICE.public_key.hex()
    stale = int(time.time() * 1000) - MAX_CLOCK_SKEW_MS - 60_000
    resp = await node.get(path, headers=compute_request_headers(ALICE, CHAIN_ID, "GET", path, b"", stale))
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "stale_request"


@pytest.mark.asyncio
async def test_a_captured_signed_read_replayed_with_the_same_headers_is_401(node):
    path = "/v1/accounts/" + ALICE.public_key.hex()
    headers = read_headers(ALICE, CHAIN_ID, path)
    first = await node.get(path, headers=headers)
    again = await node.get(path, headers=headers)
    assert first.status == 200
    doc = await again.json()
    assert again.status == 401 and doc["error"]["code"] == "replayed_request", doc


@pytest.mark.asyncio
async def test_the_same_reader_reads_the_same_path_in_quick_succession(node):
    path = "/v1/accounts/" + ALICE.public_key.hex()
    statuses = [(await read(node, ALICE, path))[0] for _ in range(5)]  # each with its own time stamp
    assert statuses == [200] * 5


@pytest.mark.asyncio
async def test_a_signed_read_replayed_after_a_node_restart_is_refused(aiohttp_client, tmp_path):
    built = build_chain(tmp_path / "db")
    path = "/v1/accounts/" + ALICE.public_key.hex()
    headers = read_headers(ALICE, CHAIN_ID, path)
    answers = []
    for _ in range(2):  # the same node started twice on the same data dir
        svc = NodeService(key=VALIDATORS[0], genesis=built["genesis"], store=Store.open(tmp_path / "db"),
                          options=FAST)
        http = await aiohttp_client(create_node_app(svc, analytics=False))
        try:
            resp = await http.get(path, headers=headers)
            answers.append((resp.status, (await resp.json()).get("error", {}).get("code")))
        finally:
            await http.close()
            svc.close()
    assert answers == [(200, None), (401, "replayed_request")]


# ---- 403: signed, not entitled ----------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_customer_reads_their_own_account_customer_record_order_ticket_and_tx(node):
    for path in alice_paths(node):
        status, doc = await read(node, ALICE, path)
        assert status == 200, (path, doc)


@pytest.mark.asyncio
async def test_a_customer_reads_the_receipt_of_staffs_response_to_her_ticket_and_nobody_else_does(node):
    tx = node.hashes["respond-ticket"]
    for path in (f"/v1/tx/{tx}", f"/v1/tx/{tx}/receipt"):
        assert (await read(node, ALICE, path))[0] == 200, path
        status, doc = await read(node, BOB, path)
        assert status == 403 and doc["error"]["code"] == "not_entitled", (path, doc)
        status, doc = await read(node, STAFF_2, path)
        assert status == 403 and doc["error"]["code"] == "wrong_branch", (path, doc)


@pytest.mark.asyncio
async def test_another_customer_reading_alices_data_is_403_naming_who_may_read(node):
    for path in alice_paths(node):
        status, doc = await read(node, BOB, path)
        assert status == 403 and doc["error"]["code"] == "not_entitled", (path, doc)
        assert BOB.public_key.hex()[:16] in doc["error"]["message"]
    status, doc = await read(node, BOB, "/v1/accounts/" + ALICE.public_key.hex())
    assert ("readable by the account itself, staff of its branch, auditors and compliance"
            in doc["error"]["message"])


@pytest.mark.asyncio
async def test_staff_of_another_branch_are_refused_and_staff_of_the_customers_branch_read(node):
    for path in alice_paths(node):
        status, doc = await read(node, STAFF_2, path)
        assert status == 403 and doc["error"]["code"] == "wrong_branch", (path, doc)
        assert "staff of branch 'branch-2'" in doc["error"]["message"]
        status, doc = await read(node, STAFF_1, path)
        assert status == 200, (path, doc)
    status, doc = await read(node, STAFF_1, "/v1/accounts/" + BOB.public_key.hex())  # Bob is branch-2's
    assert status == 403 and "not of the account's branch" in doc["error"]["message"]


@pytest.mark.asyncio
async def test_a_refusal_does_not_reveal_whether_a_ticket_order_or_tx_exists(node):
    for real, missing in (("/v1/tickets/T1", "/v1/tickets/T9"), ("/v1/orders/O1", "/v1/orders/O9"),
                          (f"/v1/tx/{node.hashes['open-ticket']}", f"/v1/tx/{'ee' * 32}")):
        s1, d1 = await read(node, BOB, real)
        s2, d2 = await read(node, BOB, missing)
        assert s1 == s2 == 403
        strip = (lambda text, ident: text.replace(ident, "…"))
        ident = (lambda p: p.rsplit("/", 1)[1][:16])
        assert strip(d1["error"]["message"], ident(real)) == strip(d2["error"]["message"], ident(missing))


@pytest.mark.asyncio
async def test_auditor_and_compliance_read_everything_and_alone_are_told_what_does_not_exist(node):
    for reader in (AUDITOR, COMPLIANCE):
        for path in alice_paths(node) + [f"/v1/accounts/{BOB.public_key.hex()}", "/v1/blocks/1", "/v1/report"]:
            status, doc = await read(node, reader, path)
            assert status == 200, (path, doc)
        status, doc = await read(node, reader, "/v1/tickets/T9")
        assert status == 404


@pytest.mark.asyncio
async def test_whole_blocks_go_to_validators_auditors_and_compliance_not_to_customers_or_staff(node):
    assert (await read(node, VALIDATORS[1], "/v1/blocks/latest"))[0] == 200
    for outsider in (ALICE, STAFF_1, STRANGER):
        status, doc = await read(node, outsider, "/v1/blocks/1")
        assert status == 403 and "auditors, compliance and the validators" in doc["error"]["message"]


@pytest.mark.asyncio
async def test_the_report_goes_to_role_holders_only(node):
    assert (await read(node, STAFF_2, "/v1/report"))[0] == 200
    status, doc = await read(node, ALICE, "/v1/report")
    assert status == 403 and doc["error"]["code"] == "not_entitled"


@pytest.mark.asyncio
async def test_refused_readers_fill_no_replay_guard(node):
    from node.app_keys import STAFF_GUARD_KEY
    guard = node.server.app[STAFF_GUARD_KEY]
    before = len(guard.replay)
    for _ in range(3):
        assert (await read(node, STRANGER, "/v1/accounts/" + ALICE.public_key.hex()))[0] == 403
    assert len(guard.replay) == before


@pytest.mark.asyncio
async def test_open_routes_answer_without_a_signature(node):
    for method, path in OPEN_ROUTES:
        if method != "GET":
            continue
        resp = await node.get(path.replace("{id}", "nothing-here"))
        # /readyz of this lone node of a 4-branch chain answers 503 (no peer links), never 401/403
        expected = (200, 503) if path == "/readyz" else (200, 404)
        assert resp.status in expected, (path, await resp.text())
    body = json.dumps({"tx": "00"})
    assert (await node.post("/v1/tx", data=body, headers={"Content-Type": "application/json"})).status == 400


def test_next_stamp_is_strictly_increasing():
    stamps = [next_stamp_ms() for _ in range(100)]
    assert stamps == sorted(set(stamps))
