"""GET /v1/events: committed events as server-sent events, each sent only to readers entitled to it; resumable
with Last-Event-ID; a reader too far behind is cut with a final event instead of holding the node.

Attackers: another customer, staff of another branch, a key unknown on chain, a slow reader. Promises: nobody
sees an event they may not read; the node never waits for a reader; a reconnecting reader misses nothing.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from ledger.storage import Store
from node.app import create_node_app
from node.event_stream import EVENT_HUB_KEY, EventHub, StreamClient
from node.service import NodeService
from tests.node.events_helpers import commit, read_frames
from tests.node.signing import signed_get
from tests.node.test_read_access import AUDITOR, COMPLIANCE, STRANGER, build_chain
from tests.node.test_service import FAST
from tests.ledger.governance_world import STAFF_1, STAFF_2
from tests.strategies import ALICE, BOB, CHAIN_ID, ISSUER, VALIDATORS


@pytest_asyncio.fixture
async def node(aiohttp_client, tmp_path):
    built = build_chain(tmp_path / "db")
    svc = NodeService(key=VALIDATORS[0], genesis=built["genesis"], store=Store.open(tmp_path / "db"), options=FAST)
    client = await aiohttp_client(create_node_app(svc, analytics=False))
    client.svc = svc
    yield client
    await client.close()
    svc.close()


async def stream(client, key, last_event_id: str | None = None):
    headers = {"Last-Event-ID": last_event_id} if last_event_id else None
    resp = await signed_get(client, "/v1/events", key, CHAIN_ID, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/event-stream"
    return resp


@pytest.mark.asyncio
async def test_a_customer_replaying_from_the_start_sees_her_events_and_her_tickets_but_not_bobs(node):
    resp = await stream(node, ALICE, "0:0:0")
    frames = await read_frames(resp, 6)
    assert [f["event"] for f in frames] == ["customer_registered", "credited", "order_created", "ticket_opened",
                                            "sla_clock", "ticket_responded"]  # the response names staff only
    assert all(f["data"]["fields"].get("customer", ALICE.public_key.hex()) == ALICE.public_key.hex()
               for f in frames)
    assert [f["id"] for f in frames] == [f["data"]["id"] for f in frames]
    assert frames[0]["id"].startswith("1:") and frames[-1]["id"] == "5:0:0"
    assert frames[1]["data"]["time"].endswith("Z") and frames[1]["data"]["fields"]["amount"] == 100
    resp.close()


@pytest.mark.asyncio
async def test_staff_see_their_branchs_events_only_and_auditors_see_all(node):
    resp = await stream(node, STAFF_2, "0:0:0")
    frames = await read_frames(resp, 1)
    assert frames[0]["event"] == "customer_registered"
    assert frames[0]["data"]["fields"]["customer"] == BOB.public_key.hex()
    resp.close()
    resp = await stream(node, STAFF_1, "0:0:0")
    frames = await read_frames(resp, 6)
    assert BOB.public_key.hex() not in str([f["data"] for f in frames])
    resp.close()
    for reader in (AUDITOR, COMPLIANCE):
        resp = await stream(node, reader, "0:0:0")
        frames = await read_frames(resp, 7)
        assert [f["id"] for f in frames[:2]] == ["1:0:0", "1:1:0"] and frames[-1]["id"] == "5:0:0"
        resp.close()


@pytest.mark.asyncio
async def test_a_key_unknown_on_chain_is_refused_and_a_bad_or_future_event_id_is_400(node):
    resp = await signed_get(node, "/v1/events", STRANGER, CHAIN_ID)
    doc = await resp.json()
    assert resp.status == 403 and doc["error"]["code"] == "not_entitled" and "unknown on chain" in doc["error"]["message"]
    for bad, says in (("5:x:0", "height:index:event"), ("999:0:0", "beyond this node's head")):
        resp = await signed_get(node, "/v1/events", ALICE, CHAIN_ID, headers={"Last-Event-ID": bad})
        doc = await resp.json()
        assert resp.status == 400 and doc["error"]["code"] == "bad_event_id" and says in doc["error"]["message"]


@pytest.mark.asyncio
async def test_a_live_reader_gets_each_new_event_once_and_only_hers(node):
    resp = await stream(node, ALICE)  # from the head: nothing old
    results = commit(node.svc, (ISSUER, "mint", [BOB.public_key, 7]), (ISSUER, "mint", [ALICE.public_key, 9]))
    commit(node.svc, (ISSUER, "mint", [ALICE.public_key, 11]))
    frames = await read_frames(resp, 2)
    assert [(f["id"], f["data"]["fields"]["amount"]) for f in frames] == [("6:1:0", 9), ("7:0:0", 11)]
    assert frames[0]["data"]["tx_hash"] == results[1].tx_hash.hex()
    resp.close()


@pytest.mark.asyncio
async def test_a_reader_resuming_with_last_event_id_gets_what_followed_it_without_repeats(node):
    first = await read_frames(await stream(node, AUDITOR, "0:0:0"), 7)
    commit(node.svc, (ISSUER, "mint", [ALICE.public_key, 3]))
    resumed = await read_frames(await stream(node, AUDITOR, first[2]["id"]), 5)
    assert [f["id"] for f in resumed] == [f["id"] for f in first[3:]] + ["6:0:0"]


@pytest.mark.asyncio
async def test_a_slow_reader_is_cut_with_a_final_event_naming_where_to_resume_and_the_node_goes_on(node):
    hub = node.server.app[EVENT_HUB_KEY]
    hub.max_queued_blocks = 2
    resp = await stream(node, AUDITOR)
    for amount in (1, 2, 3):  # three blocks commit before the reader's task runs once: its queue holds two
        commit(node.svc, (ISSUER, "mint", [ALICE.public_key, amount]))
    assert not hub.clients  # dropped by the commit path itself, which never waited
    assert node.svc.store.head().height == 8
    frames = await read_frames(resp, 10, until="cut")
    assert [f["event"] for f in frames] == ["credited", "credited", "cut"]
    assert frames[-1]["data"]["reason"] == "slow_client"
    resume = frames[-1]["data"]["resume_from"]
    assert resume.startswith("7:")
    assert b"carecoin_event_streams_cut_total 1.0" in await (await node.get("/metrics")).read()
    rest = await read_frames(await stream(node, AUDITOR, resume), 1)
    assert rest[0]["id"] == "8:0:0" and rest[0]["data"]["fields"]["amount"] == 3


def test_the_hub_feeds_a_bounded_queue_per_client_and_drops_only_the_full_one():
    hub = EventHub(store=None, max_queued_blocks=1)
    cut = []
    hub.on_cut = lambda: cut.append(1)
    slow, fast = StreamClient(1), StreamClient(3)
    hub.clients |= {slow, fast}
    hub.on_commit(1, [])
    hub.on_commit(2, [])
    assert slow.cut == "slow_client" and hub.clients == {fast} and len(fast.queue) == 2 and cut == [1]


@pytest.mark.asyncio
async def test_a_customer_opening_stream_after_stream_cannot_lock_auditors_and_staff_out(node):
    """Attack: one customer key opened MAX_STREAMS streams and every other reader got 503 too_many_streams.
    Promise: one key holds at most a few streams; the others still get theirs."""
    hub = node.server.app[EVENT_HUB_KEY]
    hub.max_streams = 12
    opened = []
    for _ in range(hub.max_per_signer):
        opened.append(await stream(node, ALICE))
    resp = await signed_get(node, "/v1/events", ALICE, CHAIN_ID)
    doc = await resp.json()
    assert resp.status == 503 and doc["error"]["code"] == "too_many_streams" and "per key" in doc["error"]["message"]
    assert hub.max_per_signer < hub.max_streams
    for reader in (AUDITOR, STAFF_1):
        opened.append(await stream(node, reader))
    for resp in opened:
        resp.close()
