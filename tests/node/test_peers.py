"""Peer links over real sockets on 127.0.0.1: handshake, refusals, frame faults, dedupe, reconnect, stop."""

from __future__ import annotations

import asyncio
import os
import socket

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from ledger import codec
from ledger.keys import KeyPair
from node.peers import (
    Backoff,
    PeerAddress,
    PeerNetwork,
    compute_auth_message,
    encode_frame,
)

pytestmark = [pytest.mark.timeout(40)]

CHAIN = "peer-test"
FAST = Backoff(initial_s=0.05, max_s=0.4)
MAX_FRAME = 64 * 1024


def _bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


class Node:
    def __init__(self, name: str, key: KeyPair, port: int, sock: socket.socket) -> None:
        self.name, self.key, self.port, self.sock = name, key, port, sock
        self.inbox: asyncio.Queue[tuple[bytes, str, bytes]] = asyncio.Queue()
        self.net: PeerNetwork | None = None
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/peer"

    async def handler(self, peer: bytes, channel: str, payload: bytes) -> None:
        self.inbox.put_nowait((peer, channel, payload))

    async def start(self, validators: dict[bytes, str], peers: list[PeerAddress], **options) -> None:
        if self.sock is None:
            self.sock = _bound_socket(self.port)
        settings = dict(max_frame_bytes=MAX_FRAME, backoff=FAST, handshake_timeout_s=3.0, heartbeat_s=5.0,
                        close_timeout_s=1.0)
        settings.update(options)
        self.net = PeerNetwork(CHAIN, self.key, validators, peers, self.handler, **settings)
        app = web.Application()
        self.net.add_routes(app)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, **self.net.server_options())
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        await self.net.start()

    async def stop(self) -> None:
        if self.net is not None:
            await self.net.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        self.sock = None


class Cluster:
    def __init__(self, n: int, extra_validators: int = 0) -> None:
        self.nodes = []
        for i in range(n):
            sock = _bound_socket()
            self.nodes.append(Node(f"v{i}", KeyPair.generate(), sock.getsockname()[1], sock))
        self.extra = [KeyPair.generate() for _ in range(extra_validators)]
        self.validators = {nd.key.public_key: nd.name for nd in self.nodes}
        self.validators.update({k.public_key: f"x{i}" for i, k in enumerate(self.extra)})

    def addresses(self) -> list[PeerAddress]:
        return [PeerAddress(nd.name, nd.key.public_key, nd.url) for nd in self.nodes]

    async def start(self) -> None:
        for nd in self.nodes:
            await nd.start(self.validators, self.addresses())

    async def stop(self) -> None:
        for nd in self.nodes:
            await nd.stop()

    async def wait_full_mesh(self, timeout: float = 10.0) -> None:
        n = len(self.nodes) - 1
        ok = await asyncio.gather(*(nd.net.wait_connected(n, timeout) for nd in self.nodes))
        assert all(ok), {nd.name: len(nd.net.connected()) for nd in self.nodes}


async def _next(node: Node, timeout: float = 5.0) -> tuple[bytes, str, bytes]:
    return await asyncio.wait_for(node.inbox.get(), timeout)


@pytest_asyncio.fixture()
async def cluster4():
    c = Cluster(4)
    await c.start()
    yield c
    await c.stop()


@pytest.mark.asyncio
async def test_four_validators_connect_once_each_and_exchange_frames_on_channels(cluster4):
    await cluster4.wait_full_mesh()
    await asyncio.sleep(0.3)  # let any simultaneous-dial duplicates settle
    for nd in cluster4.nodes:
        assert sorted(nd.net.connected()) == sorted(o.key.public_key for o in cluster4.nodes if o is not nd)
    for i, nd in enumerate(cluster4.nodes):
        assert await nd.net.broadcast("consensus", b"from-%d" % i) == 3
    for i, nd in enumerate(cluster4.nodes):
        got = {await _next(nd) for _ in range(3)}
        assert got == {(o.key.public_key, "consensus", b"from-%d" % j)
                       for j, o in enumerate(cluster4.nodes) if o is not nd}
    a, b = cluster4.nodes[0], cluster4.nodes[1]
    assert await a.net.send(b.key.public_key, "tx", b"\x01" * 1000)
    assert await _next(b) == (a.key.public_key, "tx", b"\x01" * 1000)
    assert a.net.get_counters()["frames_out"] >= 4 and b.net.get_counters()["frames_in"] >= 4


@pytest.mark.asyncio
async def test_key_outside_validator_set_is_refused_and_never_connected():
    c = Cluster(2)
    await c.start()
    rogue_key = KeyPair.generate()
    rogue = Node("rogue", rogue_key, 0, None)
    rogue.sock = _bound_socket()
    rogue.port = rogue.sock.getsockname()[1]
    try:
        target = c.nodes[0]
        # The rogue believes it is a validator; the cluster's genesis says otherwise.
        await rogue.start({**c.validators, rogue_key.public_key: "rogue"},
                          [PeerAddress(target.name, target.key.public_key, target.url)])
        for _ in range(100):
            if target.net.get_counters().get("refused_unknown_key", 0) >= 1:
                break
            await asyncio.sleep(0.05)
        assert target.net.get_counters()["refused_unknown_key"] >= 1
        assert rogue_key.public_key not in target.net.connected()
        assert rogue.net.connected() == []
        assert await target.net.wait_connected(1, 5)  # the real peer is unaffected
    finally:
        await rogue.stop()
        await c.stop()


async def _raw_handshake(url: str, key: KeyPair, target_key: bytes, session: aiohttp.ClientSession,
                         forge: bytes | None = None):
    """Dial as ``key`` by hand; return (ws, signature sent, reply after auth)."""
    ws = await session.ws_connect(url)
    challenge = os.urandom(32)
    await ws.send_bytes(codec.encode(["hello", 1, CHAIN, key.public_key, challenge]))
    msg = await ws.receive(timeout=3)
    assert msg.type == aiohttp.WSMsgType.BINARY
    _, _, _, their_key, their_challenge, _ = codec.decode(msg.data)
    assert their_key == target_key
    sig = forge or key.sign(compute_auth_message(CHAIN, their_challenge, challenge, key.public_key, their_key))
    await ws.send_bytes(codec.encode(["auth", sig]))
    reply = await ws.receive(timeout=3)
    return ws, sig, reply


@pytest.mark.asyncio
async def test_wrong_or_replayed_signature_is_refused():
    c = Cluster(1, extra_validators=1)  # x0 is a validator with no running node: we play it by hand
    await c.start()
    target, member = c.nodes[0], c.extra[0]
    try:
        async with aiohttp.ClientSession() as session:
            # A valid handshake succeeds...
            ws, good_sig, reply = await _raw_handshake(target.url, member, target.key.public_key, session)
            assert reply.type == aiohttp.WSMsgType.BINARY and codec.decode(reply.data) == ["ok"]
            assert await target.net.wait_connected(1, 3)
            await ws.close()
            # ...a signature by another key is refused...
            impostor = KeyPair.generate()
            ws, _, reply = await _raw_handshake(target.url, member, target.key.public_key, session,
                                                forge=impostor.sign(b"x" * 32))
            assert reply.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            assert ws.close_code == 4001
            await ws.close()
            # ...and so is replaying the earlier valid signature against a fresh challenge.
            ws, _, reply = await _raw_handshake(target.url, member, target.key.public_key, session,
                                                forge=good_sig)
            assert reply.type != aiohttp.WSMsgType.BINARY
            await ws.close()
        assert target.net.get_counters()["refused_bad_signature"] == 2
    finally:
        await c.stop()


def test_auth_message_binds_direction_so_a_signature_cannot_be_reflected():
    a, b, ca, cb = b"A" * 32, b"B" * 32, b"1" * 32, b"2" * 32
    as_listener = compute_auth_message(CHAIN, ca, cb, b, a)  # b signs for verifier a
    as_dialer = compute_auth_message(CHAIN, cb, ca, a, b)    # a signs for verifier b
    assert as_listener != as_dialer
    assert compute_auth_message("other-chain", ca, cb, b, a) != as_listener


@pytest.mark.parametrize("bad, reason", [
    (b"\xc1", "closed_malformed"),                                      # not msgpack
    (codec.encode(["tx"]), "closed_malformed"),                         # wrong shape
    (encode_frame("no-such-channel", b""), "closed_unknown_channel"),
    (encode_frame("tx", b"x" * (MAX_FRAME + 10)), "closed_oversized"),
])
@pytest.mark.asyncio
async def test_bad_frame_closes_only_that_link_and_the_peer_reconnects(bad, reason):
    c = Cluster(3)
    await c.start()
    try:
        await c.wait_full_mesh()
        a, b, other = c.nodes
        await asyncio.sleep(0.2)
        assert await b.net.send_raw(a.key.public_key, bad)
        for _ in range(100):
            if a.net.get_counters().get(reason, 0) >= 1:
                break
            await asyncio.sleep(0.05)
        assert a.net.get_counters().get(reason) == 1, a.net.get_counters()
        assert a.net.is_connected(other.key.public_key)  # the other link never dropped
        assert await other.net.send(a.key.public_key, "sync", b"still-here")
        assert await _next(a) == (other.key.public_key, "sync", b"still-here")
        # b reconnects and frames flow again
        for _ in range(200):
            if a.net.is_connected(b.key.public_key) and b.net.is_connected(a.key.public_key):
                if await b.net.send(a.key.public_key, "tx", b"again"):
                    break
            await asyncio.sleep(0.05)
        assert await _next(a) == (b.key.public_key, "tx", b"again")
        assert a.net.get_counters()["links_up"] >= 3
    finally:
        await c.stop()


@pytest.mark.asyncio
async def test_links_come_back_after_a_peer_restarts():
    c = Cluster(3)
    await c.start()
    try:
        await c.wait_full_mesh()
        a, b, gone = c.nodes
        await gone.stop()
        for _ in range(100):
            if gone.key.public_key not in a.net.connected() and gone.key.public_key not in b.net.connected():
                break
            await asyncio.sleep(0.05)
        assert gone.key.public_key not in a.net.connected()
        assert await a.net.send(gone.key.public_key, "tx", b"lost") is False
        await asyncio.sleep(0.5)  # a and b are backing off against a closed port
        await gone.start(c.validators, c.addresses())
        await c.wait_full_mesh()
        assert await a.net.send(gone.key.public_key, "consensus", b"welcome back")
        assert await _next(gone) == (a.key.public_key, "consensus", b"welcome back")
        assert a.net.get_counters()["dial_failures"] >= 1
    finally:
        await c.stop()


@pytest.mark.asyncio
async def test_stop_closes_links_and_leaves_no_tasks_behind():
    c = Cluster(3)
    await c.start()
    await c.wait_full_mesh()
    await c.stop()
    for nd in c.nodes:
        assert nd.net.connected() == []
    await asyncio.sleep(0.05)
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert leftover == [], leftover


@pytest.mark.asyncio
async def test_send_refuses_local_frame_above_limit_and_unknown_channel():
    from node.errors import PeerError
    c = Cluster(2)
    await c.start()
    try:
        await c.wait_full_mesh()
        a, b = c.nodes
        with pytest.raises(PeerError, match="exceeds max_frame_bytes"):
            await a.net.send(b.key.public_key, "tx", b"x" * (MAX_FRAME + 1))
        with pytest.raises(PeerError, match="is not one of"):
            await a.net.broadcast("nope", b"")
    finally:
        await c.stop()


@pytest.mark.asyncio
async def test_both_sides_keep_the_same_single_link_dialed_by_the_lower_key(cluster4):
    await cluster4.wait_full_mesh()
    await asyncio.sleep(0.3)
    by_key = {nd.key.public_key: nd for nd in cluster4.nodes}
    for nd in cluster4.nodes:
        links = nd.net.get_links()
        assert len(links) == 3
        for info in links:
            mine = nd.key.public_key
            dialer = mine if info.outbound else info.peer_key
            assert dialer == min(mine, info.peer_key)
            theirs = {i.peer_key: i for i in by_key[info.peer_key].net.get_links()}[mine]
            assert theirs.outbound != info.outbound  # the same link seen from its two ends


@pytest.mark.asyncio
async def test_handshake_refuses_wrong_chain_and_silent_dialers():
    c = Cluster(1, extra_validators=1)
    target = c.nodes[0]
    await target.start(c.validators, [])
    target.net.handshake_timeout_s = 0.3
    try:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(target.url)
            await ws.send_bytes(codec.encode(["hello", 1, "other-chain", c.extra[0].public_key, os.urandom(32)]))
            msg = await ws.receive(timeout=3)
            assert msg.type != aiohttp.WSMsgType.BINARY and ws.close_code == 4001
            await ws.close()
            ws = await session.ws_connect(target.url)  # says nothing
            msg = await ws.receive(timeout=3)
            assert msg.type != aiohttp.WSMsgType.BINARY
            await ws.close()
        counters = target.net.get_counters()
        assert counters["refused_wrong_chain"] == 1 and counters["refused_handshake_timeout"] == 1
        assert target.net.connected() == []
    finally:
        await c.stop()


@pytest.mark.asyncio
async def test_dialer_refuses_a_listener_with_another_key_than_configured():
    c = Cluster(3)
    a, b, other = c.nodes
    # a's peer list points b's URL at other's key: a misconfiguration, or someone squatting the port.
    await a.start(c.validators, [PeerAddress(other.name, other.key.public_key, b.url)])
    await b.start(c.validators, [])
    try:
        for _ in range(100):
            if a.net.get_counters().get("refused_unexpected_key", 0) >= 1:
                break
            await asyncio.sleep(0.05)
        assert a.net.get_counters()["refused_unexpected_key"] >= 1
        assert a.net.connected() == [] and b.net.connected() == []
    finally:
        await a.stop()
        await b.stop()
        other.sock.close()


@pytest.mark.asyncio
async def test_handler_bug_is_counted_and_the_link_stays_up():
    c = Cluster(2)
    await c.start()
    try:
        await c.wait_full_mesh()
        a, b = c.nodes

        async def broken(peer: bytes, channel: str, payload: bytes) -> None:
            if payload == b"boom":
                raise ValueError("handler bug")
            a.inbox.put_nowait((peer, channel, payload))

        a.net.handler = broken
        assert await b.net.send(a.key.public_key, "tx", b"boom")
        assert await b.net.send(a.key.public_key, "tx", b"fine")
        assert await _next(a) == (b.key.public_key, "tx", b"fine")
        assert a.net.get_counters()["handler_errors"] == 1
        assert a.net.is_connected(b.key.public_key)
    finally:
        await c.stop()


@pytest.mark.asyncio
async def test_a_peer_that_stops_reading_is_dropped_and_never_blocks_the_sender():
    c = Cluster(1, extra_validators=1)
    target, member = c.nodes[0], c.extra[0]
    await target.start(c.validators, [], max_queue_bytes=256 * 1024, send_timeout_s=1.0)
    try:
        async with aiohttp.ClientSession() as session:
            ws, _, reply = await _raw_handshake(target.url, member, target.key.public_key, session)
            assert codec.decode(reply.data) == ["ok"]
            assert await target.net.wait_connected(1, 3)
            loop = asyncio.get_running_loop()
            started = loop.time()
            sent = 0
            for _ in range(2000):  # up to 120 MB offered; the peer reads none of it
                if not await target.net.send(member.public_key, "sync", b"z" * 60_000):
                    break
                sent += 1
                if sent % 20 == 0:
                    await asyncio.sleep(0.01)  # let the writer push what the socket takes
            assert target.net.get_counters()["closed_slow"] == 1
            assert not target.net.is_connected(member.public_key)
            assert loop.time() - started < 10
            await ws.close()
    finally:
        await c.stop()


def test_backoff_grows_exponentially_with_jitter_and_stays_capped():
    import random

    b = Backoff(initial_s=0.1, max_s=2.0, factor=2.0, jitter=0.2)
    rng = random.Random(7)
    delays = [b.compute_delay(n, rng) for n in range(1, 200)]
    assert 0.08 <= delays[0] <= 0.12 and 0.16 <= delays[1] <= 0.24
    assert all(0 <= d <= 2.0 * 1.2 for d in delays)
    assert min(delays[10:]) >= 2.0 * 0.8  # capped, not reset or overflowing at high attempt counts
    assert len(set(delays[10:])) > 100  # jittered: reconnecting peers do not dial in lockstep


@pytest.mark.asyncio
async def test_a_stopped_network_can_start_again_and_reconnect():
    c = Cluster(2)
    await c.start()
    try:
        await c.wait_full_mesh()
        a, b = c.nodes
        await a.net.stop()
        await a.net.start()
        await c.wait_full_mesh()
        assert await a.net.send(b.key.public_key, "tx", b"again")
        assert await _next(b) == (a.key.public_key, "tx", b"again")
    finally:
        await c.stop()


@pytest.mark.asyncio
async def test_silent_sockets_cannot_exhaust_handshake_slots_and_are_closed_after_the_deadline():
    """64 silent websockets from one address and 64 silent raw sockets: a genuine validator still links."""
    c = Cluster(2)
    a, b = c.nodes
    deadline = 2.0
    await a.start(c.validators, [], handshake_timeout_s=deadline, max_handshakes_per_address=4)
    loop = asyncio.get_running_loop()
    raw = []
    attacker = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), limit=0))
    try:
        # The attacker upgrades 64 websockets from 127.0.0.2 and never says hello...
        attempts = await asyncio.gather(*(attacker.ws_connect(a.url) for _ in range(64)), return_exceptions=True)
        silent_ws = [w for w in attempts if isinstance(w, aiohttp.ClientWebSocketResponse)]
        busy = [e for e in attempts if isinstance(e, aiohttp.WSServerHandshakeError) and e.status == 503]
        assert len(silent_ws) == 4 and len(busy) == 60
        assert a.net.get_pending_handshakes() == 4
        # ...and opens 64 raw TCP sockets from 127.0.0.1 that never send a byte.
        for _ in range(64):
            raw.append(await asyncio.open_connection("127.0.0.1", a.port))
        started = loop.time()
        await b.start(c.validators, [PeerAddress(a.name, a.key.public_key, a.url)])
        assert await b.net.wait_connected(1, deadline / 2), "the validator waited for the attack to time out"
        assert loop.time() - started < deadline
        # After the deadline every silent socket has been closed by the listener.
        for w in silent_ws:
            msg = await w.receive(timeout=deadline + 2)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and w.close_code == 4001
        for reader, _ in raw:
            assert await asyncio.wait_for(reader.read(1), deadline + 2) == b""  # EOF: closed by the server
        assert loop.time() - started >= deadline * 0.9
        counters = a.net.get_counters()
        assert counters["refused_busy_address"] == 60 and counters["refused_handshake_timeout"] == 4
        assert a.net.get_pending_handshakes() == 0
        # The genuine link outlives the deadline: the idle timeout only closes sockets that never spoke.
        assert a.net.is_connected(b.key.public_key)
        assert await b.net.send(a.key.public_key, "tx", b"after the attack")
        assert await _next(a) == (b.key.public_key, "tx", b"after the attack")
    finally:
        for _, writer in raw:
            writer.close()
        await attacker.close()
        await c.stop()
