"""Webhooks: a branch admin registers a URL; every committed event the branch may read is POSTed to it, signed
with the hook's secret, retried with backoff, kept as a dead letter when attempts run out, redriven on request.

Attackers: staff or a customer registering hooks, another branch's staff reading or deleting a hook, anyone
forging a delivery. Promises: a hook gets its branch's events only; each event has one delivery id, the same
on every attempt; nothing is lost across a restart; a dead letter is readable and redriven.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import pytest_asyncio
from aiohttp import web

from ledger.storage import Store
from node.app import create_node_app
from node.service import NodeService
from node.event_feed import EventId
from node.webhook_delivery import RetryPolicy
from node.webhook_routes import WEBHOOKS_KEY
from node.webhooks import verify_payload
from tests.ledger.governance_world import ADMINS, STAFF_1, STAFF_2
from tests.node.events_helpers import commit
from tests.node.signing import read_headers
from tests.node.test_read_access import build_chain
from tests.node.test_service import FAST
from tests.strategies import ALICE, BOB, CHAIN_ID, ISSUER, VALIDATORS

FAST_RETRY = RetryPolicy(attempts=3, base_s=0.01, max_s=0.05, timeout_s=2.0)

RECEIVERS = ("127.0.0.1",)  # the receivers of these tests run on loopback: allowed as an operator would


class Receiver:
    """A webhook receiver: records every request; answers 500 to the event ids in ``failing``."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, dict]] = []  # (headers, body)
        self.failing: set[str] = set()
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), json.loads(body) | {"_raw": body.decode()}))
        self.arrived.set()
        return web.Response(status=500 if request.headers["X-Carecoin-Event-Id"] in self.failing else 204)

    def acknowledged(self) -> list[str]:
        return [b["event"]["id"] for h, b in self.requests if h["X-Carecoin-Event-Id"] not in self.failing]

    async def wait(self, count: int, timeout_s: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.requests) < count:
            assert loop.time() < deadline, f"{len(self.requests)} deliveries after {timeout_s} s; expected {count}"
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.1)
            except asyncio.TimeoutError:
                pass


@pytest_asyncio.fixture
async def world(aiohttp_client, aiohttp_server, tmp_path):
    built = build_chain(tmp_path / "db")
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    svc = NodeService(key=VALIDATORS[0], genesis=built["genesis"], store=Store.open(tmp_path / "db"), options=FAST)
    client = await aiohttp_client(create_node_app(svc, analytics=False, webhook_allow=RECEIVERS))
    client.server.app[WEBHOOKS_KEY].policy = FAST_RETRY
    client.svc, client.receiver, client.hook_url = svc, receiver, str(server.make_url("/hook"))
    yield client
    await client.close()
    svc.close()


async def call(client, method: str, path: str, key, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else b""
    headers = read_headers(key, CHAIN_ID, path, method, data)
    resp = await client.request(method, path, data=data or None, headers=headers)
    return resp.status, await resp.json()


async def register(client, key=ADMINS[1]) -> dict:
    status, doc = await call(client, "POST", "/v1/webhooks", key, {"url": client.hook_url})
    assert status == 201, doc
    return doc


@pytest.mark.asyncio
async def test_a_hook_gets_its_branchs_events_signed_with_its_secret_and_one_delivery_id_each(world):
    hook = await register(world)
    assert len(hook["secret"]) == 64 and hook["branch"] == "branch-1"
    commit(world.svc, (ISSUER, "mint", [BOB.public_key, 5]), (ISSUER, "mint", [ALICE.public_key, 6]))
    await world.receiver.wait(1)
    await asyncio.sleep(0.1)  # Bob's credit (branch-2) must not follow
    [(headers, body)] = world.receiver.requests
    assert body["event"]["id"] == "6:1:0" and body["event"]["fields"]["amount"] == 6
    assert body["delivery_id"] == headers["X-Carecoin-Delivery"] == f"{hook['id']}:6:1:0"
    stamp = int(headers["X-Carecoin-Timestamp"])
    assert verify_payload(hook["secret"], stamp, body["_raw"].encode(), headers["X-Carecoin-Signature"])
    assert not verify_payload("00" * 32, stamp, body["_raw"].encode(), headers["X-Carecoin-Signature"])


@pytest.mark.asyncio
async def test_only_a_branch_admin_registers_and_only_the_branch_lists_reads_or_deletes(world):
    for outsider in (STAFF_1, ALICE):
        status, doc = await call(world, "POST", "/v1/webhooks", outsider, {"url": world.hook_url})
        assert status == 403 and doc["error"]["code"] == "not_entitled" and "branch admin" in doc["error"]["message"]
    status, doc = await call(world, "POST", "/v1/webhooks", ADMINS[1], {"url": "file:///etc/passwd"})
    assert status == 400 and "http:// or https://" in doc["error"]["message"]
    hook = await register(world)
    status, doc = await call(world, "GET", "/v1/webhooks", STAFF_1)
    assert status == 200 and [h["id"] for h in doc["items"]] == [hook["id"]] and "secret" not in doc["items"][0]
    status, doc = await call(world, "GET", "/v1/webhooks", STAFF_2)
    assert status == 200 and doc["items"] == []
    for method, path, key in (("GET", f"/v1/webhooks/{hook['id']}/dead-letters", STAFF_2),
                              ("DELETE", f"/v1/webhooks/{hook['id']}", ADMINS[2])):
        status, doc = await call(world, method, path, key)
        assert status == 403 and doc["error"]["code"] == "wrong_branch" and "branch-1" in doc["error"]["message"]
    status, doc = await call(world, "DELETE", f"/v1/webhooks/{hook['id']}", STAFF_1)  # staff, not admin
    assert status == 403
    status, doc = await call(world, "DELETE", f"/v1/webhooks/{hook['id']}", ADMINS[1])
    assert status == 200 and doc == {"deleted": hook["id"]}
    commit(world.svc, (ISSUER, "mint", [ALICE.public_key, 6]))
    await asyncio.sleep(0.2)
    assert world.receiver.requests == []  # a deleted hook gets nothing
    status, doc = await call(world, "GET", f"/v1/webhooks/{'ab' * 8}/dead-letters", STAFF_1)
    assert status == 404 and doc["error"]["code"] == "webhook_not_found"


@pytest.mark.asyncio
async def test_a_failed_delivery_is_retried_with_the_same_delivery_id_until_acknowledged(world):
    hook = await register(world)
    world.receiver.failing = {"6:0:0"}
    commit(world.svc, (ISSUER, "mint", [ALICE.public_key, 1]))
    await world.receiver.wait(2)
    world.receiver.failing = set()
    await world.receiver.wait(3)
    ids = {h["X-Carecoin-Delivery"] for h, _ in world.receiver.requests}
    assert ids == {f"{hook['id']}:6:0:0"}
    assert [h["X-Carecoin-Attempt"] for h, _ in world.receiver.requests] == ["1", "2", "3"]
    await asyncio.sleep(0.1)
    assert len(world.receiver.requests) == 3  # acknowledged: never sent again


@pytest.mark.asyncio
async def test_an_event_whose_attempts_run_out_is_a_dead_letter_the_hook_goes_on_and_a_redrive_delivers_it(world):
    hook = await register(world)
    world.receiver.failing = {"6:0:0"}
    commit(world.svc, (ISSUER, "mint", [ALICE.public_key, 1]))
    commit(world.svc, (ISSUER, "mint", [ALICE.public_key, 2]))
    await world.receiver.wait(4)  # three attempts of 6:0:0, then 7:0:0
    assert world.receiver.acknowledged() == ["7:0:0"]
    status, doc = await call(world, "GET", f"/v1/webhooks/{hook['id']}/dead-letters", STAFF_1)
    assert status == 200 and [d["delivery_id"] for d in doc["items"]] == [f"{hook['id']}:6:0:0"]
    assert doc["items"][0]["attempts"] == 3 and doc["items"][0]["error"] == "answered 500"
    world.receiver.failing = set()
    status, doc = await call(world, "POST", f"/v1/webhooks/{hook['id']}/dead-letters/redrive", ADMINS[1])
    assert status == 200 and doc["redriven"] == 1
    await world.receiver.wait(5)
    assert world.receiver.requests[-1][0]["X-Carecoin-Delivery"] == f"{hook['id']}:6:0:0"
    status, doc = await call(world, "GET", f"/v1/webhooks/{hook['id']}/dead-letters", STAFF_1)
    assert doc["items"] == [] and doc["redrive_queued"] == 0


@pytest.mark.asyncio
async def test_a_restarted_node_goes_on_from_the_acknowledged_cursor(aiohttp_client, aiohttp_server, tmp_path):
    built = build_chain(tmp_path / "db")
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    hook = None
    for amount in (1, 2):  # the same node started twice on the same data dir
        svc = NodeService(key=VALIDATORS[0], genesis=built["genesis"], store=Store.open(tmp_path / "db"),
                          options=FAST)
        client = await aiohttp_client(create_node_app(svc, analytics=False, webhook_allow=RECEIVERS))
        client.server.app[WEBHOOKS_KEY].policy = FAST_RETRY
        client.hook_url = str(server.make_url("/hook"))
        try:
            if hook is None:
                hook = await register(client)
            commit(svc, (ISSUER, "mint", [ALICE.public_key, amount]))
            await receiver.wait(amount)
        finally:
            await client.close()
            svc.close()
    assert [b["delivery_id"] for _, b in receiver.requests] == [f"{hook['id']}:6:0:0", f"{hook['id']}:7:0:0"]


def test_the_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half():
    policy = RetryPolicy(attempts=8, base_s=0.5, max_s=4.0)
    assert [policy.delay(n, 0.0) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [policy.delay(n, 0.999999) for n in (1, 5)] == pytest.approx([0.5, 4.0])


@pytest.mark.asyncio
async def test_a_branch_admins_receiver_answering_an_endless_body_does_not_fill_the_nodes_memory(world):
    """Attack: a branch admin registers a receiver that acknowledges with a 2xx and then streams an endless
    body; the node read the whole answer into memory (one hook took a node from 70 MB to 1.2 GB). The node reads
    a bounded prefix, counts the acknowledgement and drops the connection."""
    sent = {"bytes": 0, "done": asyncio.Event()}

    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(64):  # 64 MB at most (bounded)
                await resp.write(chunk)
                sent["bytes"] += len(chunk)
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            sent["done"].set()
        return resp

    app = web.Application()
    app.router.add_post("/endless", endless)
    server = web.AppRunner(app)
    await server.setup()
    site = web.TCPSite(server, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        status, hook = await call(world, "POST", "/v1/webhooks", ADMINS[1], {"url": f"http://127.0.0.1:{port}/endless"})
        assert status == 201, hook
        commit(world.svc, (ISSUER, "mint", [ALICE.public_key, 6]))
        await asyncio.wait_for(sent["done"].wait(), 10)
        assert sent["bytes"] < 16 << 20, f"the node read {sent['bytes'] >> 20} MB of one answer; expected a prefix"
        for _ in range(50):  # bounded: the acknowledgement moves the cursor
            status, doc = await call(world, "GET", "/v1/webhooks", ADMINS[1])
            if EventId.parse(doc["items"][0]["cursor"]) >= EventId(6, 1, 0):
                break
            await asyncio.sleep(0.1)
        assert EventId.parse(doc["items"][0]["cursor"]) >= EventId(6, 1, 0), doc
        assert doc["items"][0]["dead_letters"] == 0, doc
    finally:
        await server.cleanup()


@pytest.mark.asyncio
async def test_a_branch_admin_cannot_point_a_webhook_at_the_nodes_own_api(world):
    own = str(world.make_url("/v1/tx"))
    status, doc = await call(world, "POST", "/v1/webhooks", ADMINS[1], {"url": own})
    assert status == 400, doc
    assert doc["error"]["code"] == "target_not_allowed" and "own listener" in doc["error"]["message"], doc


@pytest.mark.asyncio
async def test_a_branch_admin_cannot_point_a_webhook_at_internal_services_the_operator_did_not_allow(world):
    for url in ("http://10.0.0.7:5432/", "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/x",
                "http://127.0.0.2:7001/peer", "http://0.0.0.0:80/"):
        status, doc = await call(world, "POST", "/v1/webhooks", ADMINS[1], {"url": url})
        assert status == 400 and doc["error"]["code"] == "target_not_allowed", (url, doc)
    status, doc = await call(world, "GET", "/v1/webhooks", ADMINS[1])
    assert doc["items"] == []  # nothing registered


@pytest.mark.asyncio
async def test_the_target_policy_allows_listed_networks_and_refuses_other_internal_addresses_and_own_listeners():
    from node.webhook_targets import TargetNotAllowed, TargetPolicy
    assert await TargetPolicy.from_allow(["10.0.0.0/8", "crm.internal"]).check("http://10.1.2.3/hook") is None
    with pytest.raises(TargetNotAllowed, match="internal address 192.168.1.5"):
        await TargetPolicy.from_allow(["10.0.0.0/8"]).check("http://192.168.1.5/hook")
    with pytest.raises(TargetNotAllowed, match="own listener"):
        await TargetPolicy.from_allow(["127.0.0.1"], own=[("127.0.0.1", 7000)]).check("http://127.0.0.1:7000/")
    with pytest.raises(TargetNotAllowed, match="own listener"):  # a node listening on every address
        await TargetPolicy.from_allow(["10.0.0.0/8"], own=[("0.0.0.0", 7001)]).check("http://10.0.0.5:7001/peer")
    assert await TargetPolicy.from_allow(["10.0.0.0/8"], own=[("0.0.0.0", 7001)]).check("http://10.0.0.5:80/") is None
