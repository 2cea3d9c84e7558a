"""Authenticated peer links between validators (asyncio + aiohttp websockets).

Theory of operation
-------------------
Every validator listens on ``ws://host:port/peer`` (``add_routes`` mounts it on the node's peer listener)
and dials every other validator from ``peers``. A link is usable only after a handshake in which each side
proves it holds the genesis node key it claims, over a fresh challenge from the other side:

    dialer   -> listener  ["hello", 1, chain_id, pk_D, c_D]
    listener -> dialer    ["hello", 1, chain_id, pk_L, c_L, sig_L]
    dialer   -> listener  ["auth", sig_D]
    listener -> dialer    ["ok"]

where ``sig_X = Ed25519_X(compute_auth_message(chain_id, c_other, c_X, pk_X, pk_other))`` and
``compute_auth_message = H("carecoin/v1/peer-auth", P([chain_id, verifier_challenge, signer_challenge,
signer_key, verifier_key]))``. A signature is bound to a challenge the verifier drew itself (no replay),
names signer and verifier in a fixed order (a signature cannot be reflected back at its author, and a
link to ourselves is refused) and carries the chain id (no cross-network reuse). The listener refuses a
key outside the validator set before signing anything; the dialer also checks that it reached the key it
meant to dial. A refusal is logged, counted and the websocket closed.

The handshake authenticates the endpoints, not the bytes that follow (there is no transport encryption):
everything that matters on a link (consensus messages, transactions, blocks with certificates) is signed
on its own. Run peers on a private network or behind TLS.

One link per peer pair: both sides dial, and when a pair ends up with two live links both keep the one
dialed by the lower public key, so they converge on the same link without talking about it. A new link in
the same direction as a live one replaces it (the old one is presumed stale). Each dial loop reconnects
with exponential backoff and jitter, capped, while no link to its peer exists.

After the handshake every message is a websocket binary frame holding canonical msgpack
``[channel: str, payload: bin]``. A frame above ``max_frame_bytes``, a text frame, bytes that are not that
shape, or an unknown channel is a remote fault: that one link is closed and counted, the node goes on.
The handler (``async handler(peer_key, channel, payload)``) runs in the link's read task, so a slow
handler slows only that peer; if it raises ``PeerError`` the link is closed, any other exception is
logged and counted and the link stays.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType, web

from ledger import codec
from ledger.errors import DecodeError
from ledger.hashing import TAG_PEER_AUTH, H
from ledger.keys import KeyPair, verify
from node.errors import PeerError

log = logging.getLogger("carecoin.peers")

PEER_PATH = "/peer"
PROTOCOL_VERSION = 1
CHALLENGE_LEN = 32
DEFAULT_CHANNELS = ("consensus", "tx", "sync")
DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024
MAX_HANDSHAKE_BYTES = 1024

CLOSE_REFUSED = 4001
CLOSE_BAD_FRAME = 4002
CLOSE_DUPLICATE = 4003
CLOSE_SHUTDOWN = 1001

Handler = Callable[[bytes, str, bytes], Awaitable[None]]
LinkCallback = Callable[[bytes, bool], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A validator to dial: its name, genesis node key and ``ws://host:port/peer`` URL."""

    name: str
    public_key: bytes
    url: str


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial_s * factor**(attempt-1)``, capped at ``max_s``, +/- ``jitter`` fraction."""

    initial_s: float = 0.1
    max_s: float = 5.0
    factor: float = 2.0
    jitter: float = 0.2

    def compute_delay(self, attempt: int, rng: random.Random) -> float:
        """Delay before dial attempt ``attempt`` (1-based)."""
        base = min(self.max_s, self.initial_s * self.factor ** max(0, min(attempt - 1, 30)))
        return max(0.0, base * (1 + self.jitter * (2 * rng.random() - 1)))


def compute_auth_message(chain_id: str, verifier_challenge: bytes, signer_challenge: bytes,
                         signer_key: bytes, verifier_key: bytes) -> bytes:
    """The 32 bytes a peer signs to prove its key to ``verifier_key`` (see the module docstring)."""
    return H(TAG_PEER_AUTH, codec.encode([chain_id, verifier_challenge, signer_challenge, signer_key,
                                          verifier_key]))


def encode_frame(channel: str, payload: bytes) -> bytes:
    """A post-handshake frame: canonical msgpack ``[channel, payload]``."""
    return codec.encode([channel, payload])


def decode_frame(data: bytes) -> tuple[str, bytes]:
    """Parse a frame; raise ``PeerError(reason="malformed")`` if it is not ``[str, bin]``."""
    try:
        obj = codec.decode(data)
    except DecodeError as exc:
        raise PeerError(f"frame is not canonical msgpack: {exc.message}", "malformed") from None
    if not (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], bytes)):
        raise PeerError("frame is not [channel: str, payload: bin]", "malformed")
    return obj[0], obj[1]


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One live link, for /v1/status: the peer, its genesis name, and who dialed."""

    peer_key: bytes
    name: str
    outbound: bool


@dataclass(eq=False, slots=True)
class _Link:
    peer_key: bytes
    ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse
    outbound: bool
    queue: deque = field(default_factory=deque)  # frames waiting for the writer task
    queued_bytes: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dead: bool = False  # being closed: take no more frames, count as disconnected

    @property
    def live(self) -> bool:
        return not self.dead and not self.ws.closed

    def dialer(self, own_key: bytes) -> bytes:
        return own_key if self.outbound else self.peer_key


class PeerNetwork:
    """The validator's authenticated links: accept, dial, dedupe, frame, dispatch and reconnect."""

    def __init__(self, chain_id: str, key: KeyPair, validators: Mapping[bytes, str],
                 peers: Sequence[PeerAddress], handler: Handler, *,
                 channels: Sequence[str] = DEFAULT_CHANNELS, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 backoff: Backoff = Backoff(), handshake_timeout_s: float = 5.0, heartbeat_s: float = 10.0,
                 close_timeout_s: float = 2.0, send_timeout_s: float = 5.0,
                 max_queue_frames: int = 100_000, max_queue_bytes: int = 64 * 1024 * 1024,
                 max_handshakes: int = 64, on_link: LinkCallback | None = None,
                 rng: random.Random | None = None) -> None:
        self.chain_id = chain_id
        self.key = key
        self.validators = dict(validators)
        self.peers = tuple(p for p in peers if p.public_key != key.public_key)
        self.handler = handler
        self.channels = frozenset(channels)
        self.max_frame_bytes = max_frame_bytes
        self.backoff = backoff
        self.handshake_timeout_s = handshake_timeout_s
        self.heartbeat_s = heartbeat_s
        self.close_timeout_s = close_timeout_s
        self.send_timeout_s = send_timeout_s
        self.max_queue_frames = max_queue_frames
        self.max_queue_bytes = max(max_queue_bytes, max_frame_bytes)
        self.max_handshakes = max_handshakes
        self.on_link = on_link
        self._handshaking = 0
        self.counters: Counter[str] = Counter()
        self._rng = rng or random.Random()
        self._links: dict[bytes, _Link] = {}
        self._gone: dict[bytes, asyncio.Event] = {}
        self._dial_tasks: list[asyncio.Task] = []
        self._inbound_tasks: set[asyncio.Task] = set()
        self._open_ws: set = set()
        self._bg_tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        self._running = False

    # --- lifecycle ---

    def add_routes(self, app: web.Application) -> None:
        """Mount ``GET /peer`` (the websocket endpoint) on the node's peer listener app."""
        app.router.add_get(PEER_PATH, self._handle_inbound)

    async def start(self) -> None:
        """Start accepting links and one dial loop per peer."""
        if self._running:
            return
        self._running = True
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=self.handshake_timeout_s,
                                          sock_connect=self.handshake_timeout_s))
        self._dial_tasks = [asyncio.create_task(self._dial_loop(p), name=f"peer-dial-{p.name}")
                            for p in self.peers]

    async def stop(self) -> None:
        """Close every link and end every task this network started; safe to call twice."""
        self._running = False
        for ev in self._gone.values():
            ev.set()
        self._gone.clear()
        for task in self._dial_tasks:
            task.cancel()
        if self._dial_tasks:
            await asyncio.gather(*self._dial_tasks, return_exceptions=True)
        self._dial_tasks = []
        await asyncio.gather(*(self._close_ws(ws, CLOSE_SHUTDOWN, "shutdown") for ws in list(self._open_ws)),
                             return_exceptions=True)
        pending = list(self._inbound_tasks) + list(self._bg_tasks)
        if pending:
            await asyncio.wait(pending, timeout=self.close_timeout_s + 1)
        self._links.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- reads ---

    def connected(self) -> list[bytes]:
        """Public keys of the peers with an authenticated link now."""
        return [k for k, link in self._links.items() if link.live]

    def is_connected(self, peer_key: bytes) -> bool:
        link = self._links.get(peer_key)
        return link is not None and link.live

    def get_links(self) -> list[LinkInfo]:
        """The live links with their direction (exactly one per connected peer)."""
        return [LinkInfo(k, self._name(k), link.outbound) for k, link in self._links.items() if link.live]

    def get_counters(self) -> dict[str, int]:
        """Counters for metrics: frames/bytes in/out, refusals by reason, closed links by reason, dials."""
        return dict(self.counters)

    async def wait_connected(self, count: int, timeout_s: float) -> bool:
        """Wait until at least ``count`` peers are connected or ``timeout_s`` passes; True if reached."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.connected()) < count:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    # --- sending ---

    async def send(self, peer_key: bytes, channel: str, payload: bytes) -> bool:
        """Queue one frame for one peer; False if there is no live link (or its queue overflowed)."""
        return self._enqueue(peer_key, self._frame(channel, payload))

    async def broadcast(self, channel: str, payload: bytes) -> int:
        """Queue one frame for every connected peer; return how many links took it."""
        data = self._frame(channel, payload)
        return sum(self._enqueue(k, data) for k in self.connected())

    async def send_raw(self, peer_key: bytes, data: bytes) -> bool:
        """Queue bytes unframed (diagnostics and tests: lets a test act as a faulty peer)."""
        return self._enqueue(peer_key, data)

    def _frame(self, channel: str, payload: bytes) -> bytes:
        if channel not in self.channels:
            raise PeerError(f"channel {channel!r} is not one of {sorted(self.channels)}", "local_channel")
        data = encode_frame(channel, payload)
        if len(data) > self.max_frame_bytes:
            raise PeerError(f"frame of {len(data)} bytes exceeds max_frame_bytes {self.max_frame_bytes}",
                            "local_oversize")
        return data

    def _enqueue(self, peer_key: bytes, data: bytes) -> bool:
        # Sending never waits on a peer: a frame goes into the link's bounded queue and the link's writer
        # task puts it on the socket, in order. A peer that stops reading fills its queue and is dropped,
        # so it can never stall the consensus loop that called us.
        link = self._links.get(peer_key)
        if link is None or not link.live:
            return False
        if len(link.queue) >= self.max_queue_frames or link.queued_bytes + len(data) > self.max_queue_bytes:
            self._drop_slow(link, f"{len(link.queue)} frames / {link.queued_bytes} bytes queued")
            return False
        link.queue.append(data)
        link.queued_bytes += len(data)
        link.wake.set()
        return True

    def _drop_slow(self, link: _Link, why: str) -> None:
        link.dead = True  # stop queueing at once; the read task sees the close, ends and unregisters
        self.counters["closed_slow"] += 1
        log.warning("peer %s is not reading (%s); closing the link", self._name(link.peer_key), why)
        link.queue.clear()
        link.queued_bytes = 0
        self._spawn(self._close_ws(link.ws, CLOSE_BAD_FRAME, "slow"))

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._bg_tasks.add(task)
        task.add_done_callback(self._bg_tasks.discard)

    async def _write_loop(self, link: _Link) -> None:
        ws = link.ws
        while not ws.closed:
            if not link.queue:
                link.wake.clear()
                await link.wake.wait()
                continue
            data = link.queue.popleft()
            link.queued_bytes -= len(data)
            try:
                # asyncio.timeout, not wait_for: no extra task per frame on the hot path.
                async with asyncio.timeout(self.send_timeout_s):
                    await ws.send_bytes(data)
            except TimeoutError:
                self._drop_slow(link, f"one frame took over {self.send_timeout_s} s to write")
                return
            except (ConnectionError, RuntimeError) as exc:
                self.counters["send_failures"] += 1
                log.debug("send to %s failed: %s", self._name(link.peer_key), exc)
                return
            self.counters["frames_out"] += 1
            self.counters["bytes_out"] += len(data)

    # --- inbound ---

    async def _handle_inbound(self, request: web.Request) -> web.StreamResponse:
        if not self._running:
            raise web.HTTPServiceUnavailable(text="peer network is not running")
        if self._handshaking >= self.max_handshakes:
            # Unauthenticated sockets are bounded: a flood of silent dialers cannot exhaust the node.
            self.counters["refused_busy"] += 1
            raise web.HTTPServiceUnavailable(text="too many peer handshakes in progress")
        task = asyncio.current_task()
        if task is not None:
            self._inbound_tasks.add(task)
        ws = web.WebSocketResponse(max_msg_size=self.max_frame_bytes, heartbeat=self.heartbeat_s,
                                   compress=False, timeout=self.close_timeout_s)
        try:
            await ws.prepare(request)
            self._open_ws.add(ws)
            self._handshaking += 1
            try:
                peer = await asyncio.wait_for(self._accept_handshake(ws), self.handshake_timeout_s)
            except PeerError as exc:
                await self._refuse(ws, exc, f"inbound from {request.remote}")
                return ws
            except asyncio.TimeoutError:
                await self._refuse(ws, PeerError("handshake timed out", "handshake_timeout"),
                                   f"inbound from {request.remote}")
                return ws
            finally:
                self._handshaking -= 1
            await self._run_link(_Link(peer, ws, outbound=False))
            return ws
        finally:
            self._open_ws.discard(ws)
            if not ws.closed:
                await self._close_ws(ws, CLOSE_SHUTDOWN, "done")
            if task is not None:
                self._inbound_tasks.discard(task)

    async def _accept_handshake(self, ws) -> bytes:
        hello = await self._recv_handshake(ws)
        if not (len(hello) == 5 and hello[0] == "hello" and isinstance(hello[2], str)
                and _is_bin(hello[3], 32) and _is_bin(hello[4], CHALLENGE_LEN)):
            raise PeerError("malformed hello; expected ['hello', version, chain_id, key, challenge]",
                            "bad_handshake")
        _, version, chain_id, peer_key, their_challenge = hello
        self._check_peer(version, chain_id, peer_key)
        my_challenge = os.urandom(CHALLENGE_LEN)
        me = self.key.public_key
        sig = self.key.sign(compute_auth_message(self.chain_id, their_challenge, my_challenge, me, peer_key))
        await ws.send_bytes(codec.encode(["hello", PROTOCOL_VERSION, self.chain_id, me, my_challenge, sig]))
        auth = await self._recv_handshake(ws)
        if not (len(auth) == 2 and auth[0] == "auth" and _is_bin(auth[1], 64)):
            raise PeerError("malformed auth; expected ['auth', signature]", "bad_handshake")
        if not verify(peer_key, compute_auth_message(self.chain_id, my_challenge, their_challenge, peer_key, me),
                      auth[1]):
            raise PeerError(f"signature of {self._name(peer_key)} does not verify over our challenge",
                            "bad_signature")
        await ws.send_bytes(codec.encode(["ok"]))
        return peer_key

    # --- outbound ---

    async def _dial_loop(self, addr: PeerAddress) -> None:
        attempt = 0
        while self._running:
            if self.is_connected(addr.public_key):
                attempt = 0
                ev = self._gone.get(addr.public_key)
                if ev is None or ev.is_set():  # a set event would make this loop spin
                    ev = self._gone[addr.public_key] = asyncio.Event()
                await ev.wait()
                continue
            try:
                await self._dial_once(addr)
                attempt = 0
            except asyncio.CancelledError:
                raise
            except PeerError as exc:
                self.counters["dial_failures"] += 1
                log.debug("dial %s failed: %s", addr.name, exc.message)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                self.counters["dial_failures"] += 1
                log.debug("dial %s (%s) failed: %r", addr.name, addr.url, exc)
            attempt += 1
            if self._running:
                await asyncio.sleep(self.backoff.compute_delay(attempt, self._rng))

    async def _dial_once(self, addr: PeerAddress) -> None:
        if self._session is None:
            return
        self.counters["dials"] += 1
        ws = await asyncio.wait_for(
            self._session.ws_connect(addr.url, max_msg_size=self.max_frame_bytes, heartbeat=self.heartbeat_s,
                                     compress=0, timeout=aiohttp.ClientWSTimeout(ws_close=self.close_timeout_s)),
            self.handshake_timeout_s)
        self._open_ws.add(ws)
        try:
            try:
                await asyncio.wait_for(self._dial_handshake(ws, addr), self.handshake_timeout_s)
            except PeerError as exc:
                await self._refuse(ws, exc, f"outbound to {addr.name}")
                raise
            await self._run_link(_Link(addr.public_key, ws, outbound=True))
        finally:
            self._open_ws.discard(ws)
            if not ws.closed:
                await self._close_ws(ws, CLOSE_SHUTDOWN, "done")

    async def _dial_handshake(self, ws, addr: PeerAddress) -> None:
        me = self.key.public_key
        my_challenge = os.urandom(CHALLENGE_LEN)
        await ws.send_bytes(codec.encode(["hello", PROTOCOL_VERSION, self.chain_id, me, my_challenge]))
        hello = await self._recv_handshake(ws)
        if not (len(hello) == 6 and hello[0] == "hello" and isinstance(hello[2], str) and _is_bin(hello[3], 32)
                and _is_bin(hello[4], CHALLENGE_LEN) and _is_bin(hello[5], 64)):
            raise PeerError("malformed hello reply", "bad_handshake")
        _, version, chain_id, peer_key, their_challenge, sig = hello
        self._check_peer(version, chain_id, peer_key)
        if peer_key != addr.public_key:
            raise PeerError(f"{addr.url} answered with key {peer_key.hex()[:16]}…; expected {addr.name}'s "
                            f"{addr.public_key.hex()[:16]}…", "unexpected_key")
        if their_challenge == my_challenge:
            raise PeerError("peer echoed our challenge (reflection)", "bad_handshake")
        if not verify(peer_key, compute_auth_message(self.chain_id, my_challenge, their_challenge, peer_key, me),
                      sig):
            raise PeerError(f"signature of {addr.name} does not verify over our challenge", "bad_signature")
        mine = self.key.sign(compute_auth_message(self.chain_id, their_challenge, my_challenge, me, peer_key))
        await ws.send_bytes(codec.encode(["auth", mine]))
        ok = await self._recv_handshake(ws)
        if ok != ["ok"]:
            raise PeerError("expected ['ok'] to end the handshake", "bad_handshake")

    # --- shared handshake helpers ---

    def _check_peer(self, version: object, chain_id: str, peer_key: bytes) -> None:
        if version != PROTOCOL_VERSION:
            raise PeerError(f"peer protocol version {version!r}; expected {PROTOCOL_VERSION}", "bad_version")
        if chain_id != self.chain_id:
            raise PeerError(f"peer is on chain {chain_id!r}; expected {self.chain_id!r}", "wrong_chain")
        if peer_key == self.key.public_key:
            raise PeerError("peer presented our own key (a link to ourselves?)", "self_key")
        if peer_key not in self.validators:
            raise PeerError(f"key {peer_key.hex()[:16]}… is not in the validator set", "unknown_key")

    async def _recv_handshake(self, ws) -> list:
        msg = await ws.receive()
        if msg.type != WSMsgType.BINARY:
            code = ws.close_code
            raise PeerError(f"link closed or sent {msg.type.name} during the handshake (close code {code})",
                            "handshake_closed")
        if len(msg.data) > MAX_HANDSHAKE_BYTES:
            raise PeerError(f"handshake message of {len(msg.data)} bytes; limit {MAX_HANDSHAKE_BYTES}",
                            "bad_handshake")
        try:
            obj = codec.decode(msg.data)
        except DecodeError as exc:
            raise PeerError(f"handshake message is not canonical msgpack: {exc.message}", "bad_handshake") from None
        if not isinstance(obj, list) or not obj:
            raise PeerError("handshake message is not a non-empty array", "bad_handshake")
        return obj

    async def _refuse(self, ws, exc: PeerError, where: str) -> None:
        self.counters[f"refused_{exc.reason}"] += 1
        log.warning("peer link refused (%s): %s", where, exc.message)
        await self._close_ws(ws, CLOSE_REFUSED, exc.reason)

    async def _close_ws(self, ws, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(ws.close(code=code, message=reason.encode()[:120]), self.close_timeout_s + 1)
        except (ConnectionError, RuntimeError, asyncio.TimeoutError):
            pass

    # --- registered links ---

    async def _run_link(self, link: _Link) -> None:
        if not self._running:
            return
        if not self._register(link):
            self.counters["duplicates_closed"] += 1
            await self._close_ws(link.ws, CLOSE_DUPLICATE, "duplicate")
            return
        self.counters["links_up"] += 1
        log.info("peer link up: %s (%s)", self._name(link.peer_key), "outbound" if link.outbound else "inbound")
        writer = asyncio.create_task(self._write_loop(link), name=f"peer-write-{self._name(link.peer_key)}")
        await self._notify(link.peer_key, True)
        try:
            await self._read_loop(link)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            if self._unregister(link):
                log.info("peer link down: %s", self._name(link.peer_key))
                await self._notify(link.peer_key, False)

    def _register(self, link: _Link) -> bool:
        old = self._links.get(link.peer_key)
        if old is not None and old.live:
            me = self.key.public_key
            if old.outbound != link.outbound and old.dialer(me) == min(me, link.peer_key):
                return False
            # The new link wins: same direction (the old one is stale) or dialed by the lower key.
            self.counters["duplicates_closed"] += 1
            self._links[link.peer_key] = link
            old.dead = True
            self._spawn(self._close_ws(old.ws, CLOSE_DUPLICATE, "duplicate"))
            return True
        self._links[link.peer_key] = link
        return True

    def _unregister(self, link: _Link) -> bool:
        if self._links.get(link.peer_key) is not link:
            return False
        del self._links[link.peer_key]
        ev = self._gone.pop(link.peer_key, None)
        if ev is not None:
            ev.set()
        return True

    async def _notify(self, peer_key: bytes, up: bool) -> None:
        if self.on_link is None:
            return
        try:
            await self.on_link(peer_key, up)
        except Exception:  # a callback bug must not take the link down with it
            self.counters["callback_errors"] += 1
            log.exception("on_link callback failed for %s", self._name(peer_key))

    async def _read_loop(self, link: _Link) -> None:
        ws = link.ws
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.BINARY:
                fault = await self._on_frame(link, msg.data)
                if fault is not None:
                    await self._close_bad(link, fault)
                    return
            elif msg.type == WSMsgType.TEXT:
                await self._close_bad(link, PeerError("text frame; expected binary", "malformed"))
                return
            elif msg.type == WSMsgType.ERROR:
                exc = msg.data if isinstance(msg.data, BaseException) else ws.exception()
                if isinstance(exc, aiohttp.WebSocketError) and exc.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                    await self._close_bad(link, PeerError(f"frame above {self.max_frame_bytes} bytes", "oversized"))
                else:
                    self.counters["link_errors"] += 1
                    log.info("peer link error with %s: %r", self._name(link.peer_key), exc)
                return
            else:  # CLOSE, CLOSING, CLOSED
                return

    async def _on_frame(self, link: _Link, data: bytes) -> PeerError | None:
        if len(data) > self.max_frame_bytes:
            return PeerError(f"frame of {len(data)} bytes; limit {self.max_frame_bytes}", "oversized")
        try:
            channel, payload = decode_frame(data)
        except PeerError as exc:
            return exc
        if channel not in self.channels:
            return PeerError(f"unknown channel {channel[:32]!r}", "unknown_channel")
        self.counters["frames_in"] += 1
        self.counters["bytes_in"] += len(data)
        try:
            await self.handler(link.peer_key, channel, payload)
        except PeerError as exc:
            return exc
        except Exception:  # a local handler bug: keep the link, make it visible
            self.counters["handler_errors"] += 1
            log.exception("handler failed on channel %s from %s", channel, self._name(link.peer_key))
        return None

    async def _close_bad(self, link: _Link, exc: PeerError) -> None:
        self.counters[f"closed_{exc.reason}"] += 1
        log.warning("closing link to %s: %s", self._name(link.peer_key), exc.message)
        await self._close_ws(link.ws, CLOSE_BAD_FRAME, exc.reason)

    def _name(self, peer_key: bytes) -> str:
        return self.validators.get(peer_key) or peer_key.hex()[:16] + "…"


def _is_bin(value: object, length: int) -> bool:
    return isinstance(value, bytes) and len(value) == length
