"""The governance routes over a node whose store holds a four-branch chain with open, expired and decided
proposals (the node reads; it need not reach consensus with the absent branches)."""

from __future__ import annotations

import pytest
import pytest_asyncio

from ledger.keys import KeyPair
from ledger.storage import Store
from node.app import create_node_app
from node.routes import OPENAPI
from node.service import NodeService
from tests.ledger.governance_world import ADMINS, BRANCHES
from tests.node.test_reads import GovChain
from tests.node.test_service import FAST
from tests.strategies import VALIDATORS

CLERK = KeyPair.generate()


@pytest_asyncio.fixture
async def client(aiohttp_client, tmp_path):
    g = GovChain(tmp_path / "db", {"proposal_lifetime_ms": 60_000})
    g.block((ADMINS[0], "propose-set-policy", ["old", "feedback_reward", 1]))
    g.block(after_ms=60_001)
    g.block((ADMINS[0], "propose-grant-role", ["clerk", CLERK.public_key, "staff", BRANCHES[1]]),
            (ADMINS[1], "approve-proposal", ["clerk"]), (ADMINS[3], "approve-proposal", ["clerk"]))
    g.block((ADMINS[2], "propose-remove-validator", ["drop-3", VALIDATORS[3].public_key]))
    g.store.close()
    svc = NodeService(key=VALIDATORS[0], genesis=g.genesis, store=Store.open(tmp_path / "db"), options=FAST)
    c = await aiohttp_client(create_node_app(svc))
    yield c
    await c.close()
    svc.close()


async def get(client, path: str) -> tuple[int, dict]:
    resp = await client.get(path)
    return resp.status, await resp.json()


@pytest.mark.asyncio
async def test_proposal_route_shows_an_open_proposal_and_a_decided_one_with_its_effect(client):
    status, doc = await get(client, "/v1/governance/proposals/drop-3")
    assert status == 200 and doc["status"] == "open" and doc["action"] == "remove-validator"
    assert doc["args"] == {"node_public_key": VALIDATORS[3].public_key.hex()}
    assert (doc["approval_count"], doc["quorum"]) == (1, 3) and doc["proposer_branch"] == BRANCHES[2]
    status, doc = await get(client, "/v1/governance/proposals/clerk")
    assert status == 200 and doc["status"] == "decided" and doc["decided_height"] == 3
    assert doc["decision"]["summary"] == f"staff role granted to {CLERK.public_key.hex()[:8]}… in {BRANCHES[1]}"


@pytest.mark.asyncio
async def test_proposal_list_route_puts_open_first_filters_and_pages(client):
    status, doc = await get(client, "/v1/governance/proposals")
    assert status == 200 and [p["proposal_id"] for p in doc["items"]] == ["drop-3", "old", "clerk"]
    assert [p["status"] for p in doc["items"]] == ["open", "expired", "decided"] and doc["total"] == 3
    status, doc = await get(client, "/v1/governance/proposals?status=decided")
    assert status == 200 and [p["proposal_id"] for p in doc["items"]] == ["clerk"]
    status, doc = await get(client, "/v1/governance/proposals?limit=1&offset=1")
    assert status == 200 and [p["proposal_id"] for p in doc["items"]] == ["old"] and doc["next_offset"] == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("path", [
    "/v1/governance/proposals/" + "x" * 65,         # id too long
    "/v1/governance/proposals/%20padded",           # surrounding space
    "/v1/governance/proposals?status=rejected",     # no such status
    "/v1/governance/proposals?limit=0",
    "/v1/governance/proposals?limit=101",
    "/v1/governance/proposals?offset=-1",
    "/v1/governance/proposals?offset=%C2%B2",       # "²" is no ASCII digit
])
async def test_malformed_governance_requests_answer_400(client, path):
    status, doc = await get(client, path)
    assert status == 400 and doc["error"]["code"] == "bad_request", doc


@pytest.mark.asyncio
async def test_unknown_proposal_answers_404(client):
    status, doc = await get(client, "/v1/governance/proposals/never-proposed")
    assert status == 404 and doc["error"]["code"] == "not_found"
    assert "proposal 'never-proposed' does not exist" in doc["error"]["message"]


def test_openapi_documents_the_governance_routes():
    paths = OPENAPI["paths"]
    assert set(paths["/v1/governance/proposals"]["get"]["responses"]) == {"200", "400"}
    assert set(paths["/v1/governance/proposals/{id}"]["get"]["responses"]) == {"200", "400", "404"}
