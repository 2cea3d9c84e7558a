"""GET /v1/tickets and GET /v1/orders over a real node app: who may list what, paging, and the answers to
malformed queries.

Attackers: anyone without a key, another customer, staff of another branch, a customer asking for a whole
branch. Promises: a branch's queue goes to its staff, a customer's tickets and orders to the customer and staff
of their branch, every list to auditors and compliance; a refusal names who may read and reads the same for a
branch with tickets and one without; paging with ``next_cursor`` shows every record once.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from ledger.storage import Store
from node.app import create_node_app
from node.routes import OPENAPI
from node.service import NodeService
from tests.ledger.governance_world import ADMINS, STAFF_1, STAFF_2
from tests.node.list_world import AUDITOR, COMPLIANCE, STRANGER, ListWorld
from tests.node.signing import signed_get
from tests.node.test_service import FAST
from tests.strategies import ALICE, BOB, CHAIN_ID, VALIDATORS

A, B = ALICE.public_key.hex(), BOB.public_key.hex()


@pytest_asyncio.fixture
async def node(aiohttp_client, tmp_path):
    world = ListWorld(str(tmp_path / "db"))
    world.store.close()
    svc = NodeService(key=VALIDATORS[0], genesis=world.genesis, store=Store.open(tmp_path / "db"), options=FAST)
    client = await aiohttp_client(create_node_app(svc, analytics=False))
    yield client
    await client.close()
    svc.close()


async def ask(client, key, path: str, **params) -> tuple[int, dict]:
    resp = await signed_get(client, path, key, CHAIN_ID, params=params or None)
    return resp.status, await resp.json()


def ids(doc: dict, field: str = "ticket_id") -> list[str]:
    return [item[field] for item in doc["items"]]


# ---- who lists what -------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_staff_list_their_branchs_queue_and_branch_admins_too(node):
    for reader in (STAFF_1, ADMINS[1]):
        status, doc = await ask(node, reader, "/v1/tickets", branch="branch-1")
        assert status == 200, doc
        assert ids(doc) == ["A-T5", "A-T4", "A-T3", "A-T2", "A-T1"] and doc["total"] == 5
        assert doc["next_cursor"] is None and doc["items"][0]["state"] == "open"


@pytest.mark.asyncio
async def test_staff_of_another_branch_are_refused_a_branchs_queue_naming_who_may_read(node):
    status, doc = await ask(node, STAFF_2, "/v1/tickets", branch="branch-1")
    assert status == 403 and doc["error"]["code"] == "wrong_branch"
    assert "staff of that branch, auditors and compliance" in doc["error"]["message"]
    assert "staff of branch 'branch-2'" in doc["error"]["message"]


@pytest.mark.asyncio
async def test_a_customer_lists_her_own_tickets_and_orders(node):
    status, doc = await ask(node, ALICE, "/v1/tickets", customer=A)
    assert status == 200 and ids(doc) == ["A-T5", "A-T4", "A-T3", "A-T2", "A-T1"]
    status, doc = await ask(node, ALICE, "/v1/orders", customer=A)
    assert status == 200 and ids(doc, "order_id") == ["A-O3", "A-O2", "A-O1"]
    assert doc["items"][0]["fiat_amount"] == 3000 and doc["items"][0]["status"] == "created"


@pytest.mark.asyncio
async def test_another_customer_is_refused_alices_tickets_orders_and_her_branchs_queue(node):
    for path, params in (("/v1/tickets", {"customer": A}), ("/v1/orders", {"customer": A}),
                         ("/v1/tickets", {"branch": "branch-1"}), ("/v1/tickets", {})):
        status, doc = await ask(node, BOB, path, **params)
        assert status == 403 and doc["error"]["code"] == "not_entitled", (path, params, doc)
        assert BOB.public_key.hex()[:16] in doc["error"]["message"]


@pytest.mark.asyncio
async def test_staff_of_the_customers_branch_list_her_orders_and_tickets_and_other_staff_do_not(node):
    for path in ("/v1/orders", "/v1/tickets"):
        assert (await ask(node, STAFF_1, path, customer=A))[0] == 200
        status, doc = await ask(node, STAFF_2, path, customer=A)
        assert status == 403 and doc["error"]["code"] == "wrong_branch", doc
        assert "the customer, staff of the customer's branch, auditors and compliance" in doc["error"]["message"]


@pytest.mark.asyncio
async def test_auditors_and_compliance_list_every_ticket_and_any_customers_orders(node):
    for reader in (AUDITOR, COMPLIANCE):
        status, doc = await ask(node, reader, "/v1/tickets")
        assert status == 200 and doc["total"] == 6 and set(ids(doc)) == {"A-T1", "A-T2", "A-T3", "A-T4", "A-T5",
                                                                          "B-T1"}
        assert ids((await ask(node, reader, "/v1/orders", customer=B))[1], "order_id") == ["B-O1"]
        assert ids((await ask(node, reader, "/v1/tickets", branch="branch-2"))[1]) == ["B-T1"]


@pytest.mark.asyncio
async def test_staff_are_refused_the_list_of_every_ticket(node):
    status, doc = await ask(node, STAFF_1, "/v1/tickets")
    assert status == 403 and "auditors and compliance" in doc["error"]["message"]


@pytest.mark.asyncio
async def test_an_unsigned_list_request_is_401(node):
    for path in ("/v1/tickets?branch=branch-1", f"/v1/orders?customer={A}"):
        resp = await node.get(path)
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "unsigned_request"


@pytest.mark.asyncio
async def test_a_refusal_reads_the_same_for_a_branch_with_tickets_and_one_without(node):
    _, with_tickets = await ask(node, STRANGER, "/v1/tickets", branch="branch-1")
    _, without = await ask(node, STRANGER, "/v1/tickets", branch="branch-3")
    assert with_tickets["error"]["message"].replace("branch-1", "X") == without["error"]["message"].replace(
        "branch-3", "X")
    _, alice = await ask(node, STRANGER, "/v1/orders", customer=A)
    _, nobody = await ask(node, STRANGER, "/v1/orders", customer="ab" * 32)
    assert alice["error"]["message"].replace(A[:16], "X") == nobody["error"]["message"].replace("ab" * 8, "X")


# ---- paging and filters ---------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_following_next_cursor_shows_every_ticket_once_newest_first(node):
    seen, cursor = [], None
    for _ in range(10):
        params = {"customer": A, "limit": "2", **({"cursor": cursor} if cursor else {})}
        status, doc = await ask(node, ALICE, "/v1/tickets", **params)
        assert status == 200 and doc["count"] <= 2 and doc["total"] == 5
        seen += ids(doc)
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert seen == ["A-T5", "A-T4", "A-T3", "A-T2", "A-T1"]


@pytest.mark.asyncio
async def test_state_active_lists_the_tickets_still_worked_on(node):
    status, doc = await ask(node, STAFF_1, "/v1/tickets", branch="branch-1", state="active")
    assert status == 200 and ids(doc) == ["A-T5", "A-T4", "A-T2", "A-T1"]  # A-T3 is resolved
    status, doc = await ask(node, STAFF_1, "/v1/tickets", branch="branch-1", state="resolved,in_progress")
    assert ids(doc) == ["A-T3", "A-T2"]


@pytest.mark.asyncio
@pytest.mark.parametrize("path,params,expected", [
    ("/v1/tickets", {"branch": "branch-1", "customer": A}, "together"),
    ("/v1/tickets", {"branch": "branch-1", "state": "lost"}, "expected a comma-separated list"),
    ("/v1/tickets", {"branch": "branch-1", "limit": "201"}, "1..200"),
    ("/v1/tickets", {"branch": "branch-1", "cursor": "!!"}, "expected the next_cursor of a page"),
    ("/v1/orders", {}, "customer=<64 hex digits> is required"),
    ("/v1/orders", {"customer": "zz"}, "customer"),
])
async def test_a_malformed_list_query_is_400_saying_what_was_expected(node, path, params, expected):
    status, doc = await ask(node, AUDITOR, path, **params)
    assert status == 400 and doc["error"]["code"] == "bad_request" and expected in doc["error"]["message"], doc


def test_openapi_documents_the_list_routes_with_their_read_rules_and_parameters():
    tickets = OPENAPI["paths"]["/v1/tickets"]["get"]
    assert {p["name"] for p in tickets["parameters"]} == {"branch", "customer", "state", "limit", "cursor"}
    assert tickets["x-carecoin-access"]["rule"] == "list-scope"
    orders = OPENAPI["paths"]["/v1/orders"]["get"]
    assert [p for p in orders["parameters"] if p["name"] == "customer"][0]["required"] is True
