"""Authenticated peer links between validators (asyncio + aiohttp websockets).

Theory of operation
-------------------
Every validator listens on ``wss://host:port/peer`` (``add_routes`` mounts it on the node's peer listener)
and dials every other validator of ``peers``. With ``tls`` (``node.tls``; every network ``network init``
makes) the links are mutual TLS against the CA genesis pins, and the certificate must name the key the
challenge-response handshake of ``node.handshake`` proves (which also bounds pending inbound handshakes per
remote address and in total, each with a deadline); a refusal is logged, counted and the websocket closed.

The set follows the chain: ``set_validators`` replaces the keys the handshake accepts and the addresses
dialed (a dial loop starts for an added validator, stops for a removed one) and closes the links of keys
that left the set. One link per peer pair: both sides dial, and ``node.peer_link.LinkTable`` keeps the one
dialed by the lower public key. Each dial loop reconnects with exponential backoff and jitter, capped.

After the handshake every message is a binary frame ``[channel, payload]`` (``node.peer_link``); a bad
frame is a remote fault: that one link is closed and counted. The handler (``async handler(peer_key,
channel, payload)``) runs in the link's read task, so a slow handler slows only that peer; if it raises
``PeerError`` the link is closed, any other exception is logged and counted and the link stays.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence

import aiohttp
from aiohttp import web

from ledger.keys import KeyPair
from node.errors import PeerError
# compute_auth_message, encode_frame, Backoff and PeerAddress are re-exported: tests and callers use them from here
from node.handshake import (DEFAULT_HANDSHAKES_PER_ADDRESS, DEFAULT_MAX_HANDSHAKES, HandshakeSlots,  # noqa: F401
                            accept_handshake, compute_auth_message, dial_handshake, encode_frame, server_options)
from node.peer_link import (Backoff, DialSet, Link, LinkInfo, LinkTable, PeerAddress, parse_frame,  # noqa: F401
                            read_frames, write_loop)
from node.tls import PeerTls, check_peer_identity, get_peercert, to_tls_url

log = logging.getLogger("carecoin.peers")

PEER_PATH = "/peer"
DEFAULT_CHANNELS = ("consensus", "tx", "sync", "vault")  # vault: node.vault_sync (replication)
DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024

CLOSE_REFUSED = 4001
CLOSE_BAD_FRAME = 4002
CLOSE_DUPLICATE = 4003
CLOSE_SHUTDOWN = 1001

Handler = Callable[[bytes, str, bytes], Awaitable[None]]
LinkCallback = Callable[[bytes, bool], Awaitable[None]]


class PeerNetwork:
    """The validator's authenticated links: accept, dial, dedupe, frame, dispatch and reconnect."""

    def __init__(self, chain_id: str, key: KeyPair, validators: Mapping[bytes, str],
                 peers: Sequence[PeerAddress], handler: Handler, *,
                 channels: Sequence[str] = DEFAULT_CHANNELS, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 backoff: Backoff = Backoff(), handshake_timeout_s: float = 5.0, heartbeat_s: float = 10.0,
                 close_timeout_s: float = 2.0, send_timeout_s: float = 5.0,
                 max_queue_frames: int = 100_000, max_queue_bytes: int = 64 * 1024 * 1024,
                 max_handshakes: int = DEFAULT_MAX_HANDSHAKES,
                 max_handshakes_per_address: int = DEFAULT_HANDSHAKES_PER_ADDRESS, on_link: LinkCallback | None = None,
                 rng: random.Random | None = None, tls: PeerTls | None = None) -> None:
        self.chain_id, self.key, self.handler, self.backoff, self.tls = chain_id, key, handler, backoff, tls
        self.validators = dict(validators)
        self.peers = tuple(p for p in peers if p.public_key != key.public_key)
        self.channels = frozenset(channels)
        self.max_frame_bytes, self.max_queue_frames = max_frame_bytes, max_queue_frames
        self.handshake_timeout_s, self.heartbeat_s = handshake_timeout_s, heartbeat_s
        self.close_timeout_s, self.send_timeout_s = close_timeout_s, send_timeout_s
        self.max_queue_bytes = max(max_queue_bytes, max_frame_bytes)
        self.max_handshakes = max_handshakes
        self.on_link = on_link
        self._slots = HandshakeSlots(max_handshakes_per_address, max_handshakes)
        self.counters: Counter[str] = Counter()
        self._rng = rng or random.Random()
        self._links = LinkTable(key.public_key)
        self._dials = DialSet(self._dial_loop)
        self._inbound_tasks: set[asyncio.Task] = set()
        self._open_ws: set = set()
        self._bg_tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        self._running = False

    # --- lifecycle ---

    def add_routes(self, app: web.Application) -> None:
        """Mount ``GET /peer`` (the websocket endpoint) on the node's peer listener app."""
        app.router.add_get(PEER_PATH, self._handle_inbound)

    def server_options(self) -> dict[str, float]:
        """Keyword options for the peer listener's ``web.AppRunner`` (sockets that never speak are closed)."""
        return server_options(self.handshake_timeout_s)

    def get_pending_handshakes(self) -> int:
        """Inbound handshakes in progress now (each holds a slot until it ends or its deadline passes)."""
        return len(self._slots)

    async def start(self) -> None:
        """Start accepting links and one dial loop per peer."""
        if self._running:
            return
        self._running = True
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=self.handshake_timeout_s,
                                          sock_connect=self.handshake_timeout_s))
        self._dials.update(self.peers)

    async def stop(self) -> None:
        """Close every link and end every task this network started; safe to call twice."""
        self._running = False
        self._links.release()
        await self._dials.cancel()
        await asyncio.gather(*(self._close_ws(ws, CLOSE_SHUTDOWN, "shutdown") for ws in list(self._open_ws)),
                             return_exceptions=True)
        pending = list(self._inbound_tasks) + list(self._bg_tasks)
        if pending:
            await asyncio.wait(pending, timeout=self.close_timeout_s + 1)
        self._links.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def set_validators(self, validators: Mapping[bytes, str], peers: Sequence[PeerAddress]) -> None:
        """Follow a new validator set: the handshake accepts exactly ``validators``' keys from now on, one dial
        loop runs per address of ``peers`` (new or moved ones start, gone ones stop), and live links of keys
        no longer in ``validators`` are closed."""
        self.validators = dict(validators)
        self.peers = tuple(p for p in peers if p.public_key != self.key.public_key)
        if self._running:
            self._dials.update(self.peers)
        for key, link in self._links.get_live().items():
            if key not in self.validators:
                self.counters["closed_not_validator"] += 1
                log.info("closing the link to %s: it left the validator set", key.hex()[:16])
                link.drop_queue()
                self._spawn(self._close_ws(link.ws, CLOSE_REFUSED, "not_validator"))

    # --- reads ---

    def connected(self) -> list[bytes]:
        """Public keys of the peers with an authenticated link now."""
        return list(self._links.get_live())

    def is_connected(self, peer_key: bytes) -> bool:
        return self._links.is_connected(peer_key)

    def get_links(self) -> list[LinkInfo]:
        """The live links with their direction (exactly one per connected peer)."""
        return [LinkInfo(k, self._name(k), link.outbound) for k, link in self._links.get_live().items()]

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
        if not link.enqueue(data, self.max_queue_frames, self.max_queue_bytes):
            self._drop_slow(link, f"{len(link.queue)} frames / {link.queued_bytes} bytes queued")
            return False
        return True

    def _drop_slow(self, link: Link, why: str) -> None:
        self.counters["closed_slow"] += 1
        log.warning("peer %s is not reading (%s); closing the link", self._name(link.peer_key), why)
        link.drop_queue()  # stop queueing at once; the read task sees the close, ends and unregisters
        self._spawn(self._close_ws(link.ws, CLOSE_BAD_FRAME, "slow"))

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._bg_tasks.add(task)
        task.add_done_callback(self._bg_tasks.discard)

    # --- inbound ---

    async def _handle_inbound(self, request: web.Request) -> web.StreamResponse:
        if not self._running:
            raise web.HTTPServiceUnavailable(text="peer network is not running")
        address = request.remote or "unknown"
        try:
            # Unauthenticated sockets are bounded per address and in total: silent dialers from one address
            # cannot take the slots a genuine validator needs.
            self._slots.acquire(address)
        except PeerError as exc:
            self.counters[f"refused_{exc.reason}"] += 1
            raise web.HTTPServiceUnavailable(text=exc.message) from None
        task = asyncio.current_task()
        if task is not None:
            self._inbound_tasks.add(task)
        ws = web.WebSocketResponse(max_msg_size=self.max_frame_bytes, heartbeat=self.heartbeat_s,
                                   compress=False, timeout=self.close_timeout_s)
        self._open_ws.add(ws)
        try:
            peer = await self._accept(request, ws, address)
            if peer is not None:
                await self._run_link(Link(peer, ws, outbound=False))
            return ws
        finally:
            self._open_ws.discard(ws)
            if not ws.closed:
                await self._close_ws(ws, CLOSE_SHUTDOWN, "done")
            if task is not None:
                self._inbound_tasks.discard(task)

    async def _accept(self, request: web.Request, ws: web.WebSocketResponse, address: str) -> bytes | None:
        """The handshake, within the deadline from the request's arrival, holding ``address``'s slot."""
        try:
            async with asyncio.timeout(self.handshake_timeout_s):
                await ws.prepare(request)
                peer = await accept_handshake(ws, self.chain_id, self.key, self.validators)
                check_peer_identity(get_peercert(request.transport), peer, self.tls is not None)
                return peer
        except TimeoutError:
            exc = PeerError(f"handshake not done within {self.handshake_timeout_s} s", "handshake_timeout")
        except PeerError as refused:
            exc = refused
        finally:
            self._slots.release(address)
        await self._refuse(ws, exc, f"inbound from {address}")
        return None

    # --- outbound ---

    async def _dial_loop(self, addr: PeerAddress) -> None:
        attempt = 0
        while self._running:
            if self.is_connected(addr.public_key):
                attempt = 0
                await self._links.wait_gone(addr.public_key)
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
        url, tls = (to_tls_url(addr.url), {"ssl": self.tls.client}) if self.tls else (addr.url, {})
        ws = await asyncio.wait_for(
            self._session.ws_connect(url, max_msg_size=self.max_frame_bytes, heartbeat=self.heartbeat_s, compress=0,
                                     timeout=aiohttp.ClientWSTimeout(ws_close=self.close_timeout_s), **tls),
            self.handshake_timeout_s)
        self._open_ws.add(ws)
        try:
            try:
                check_peer_identity(get_peercert(ws), addr.public_key, self.tls is not None)  # before we say a word
                await asyncio.wait_for(dial_handshake(ws, self.chain_id, self.key, self.validators,
                                                      addr.public_key, url), self.handshake_timeout_s)
            except PeerError as exc:
                await self._refuse(ws, exc, f"outbound to {addr.name}")
                raise
            await self._run_link(Link(addr.public_key, ws, outbound=True))
        finally:
            self._open_ws.discard(ws)
            if not ws.closed:
                await self._close_ws(ws, CLOSE_SHUTDOWN, "done")

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

    async def _run_link(self, link: Link) -> None:
        if not self._running:
            return
        if not self._register(link):
            self.counters["duplicates_closed"] += 1
            await self._close_ws(link.ws, CLOSE_DUPLICATE, "duplicate")
            return
        self.counters["links_up"] += 1
        log.info("peer link up: %s (%s)", self._name(link.peer_key), "outbound" if link.outbound else "inbound")
        writer = asyncio.create_task(write_loop(link, self.send_timeout_s, self.counters, self._drop_slow,
                                                self._name(link.peer_key)), name=f"peer-write-{self._name(link.peer_key)}")
        await self._notify(link.peer_key, True)
        try:
            await self._read_loop(link)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            if self._links.unregister(link):
                log.info("peer link down: %s", self._name(link.peer_key))
                await self._notify(link.peer_key, False)

    def _register(self, link: Link) -> bool:
        kept, replaced = self._links.register(link)
        if replaced is not None:
            self.counters["duplicates_closed"] += 1
            self._spawn(self._close_ws(replaced.ws, CLOSE_DUPLICATE, "duplicate"))
        return kept

    async def _notify(self, peer_key: bytes, up: bool) -> None:
        if self.on_link is None:
            return
        try:
            await self.on_link(peer_key, up)
        except Exception:  # a callback bug must not take the link down with it
            self.counters["callback_errors"] += 1
            log.exception("on_link callback failed for %s", self._name(peer_key))

    async def _read_loop(self, link: Link) -> None:
        frames = read_frames(link, self.max_frame_bytes, self.counters, self._name(link.peer_key))
        try:
            async for data in frames:
                fault = await self._on_frame(link, data)
                if fault is not None:
                    await self._close_bad(link, fault)
                    return
        except PeerError as exc:
            await self._close_bad(link, exc)
        finally:
            await frames.aclose()

    async def _on_frame(self, link: Link, data: bytes) -> PeerError | None:
        try:
            channel, payload = parse_frame(data, self.max_frame_bytes, self.channels)
        except PeerError as exc:
            return exc
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

    async def _close_bad(self, link: Link, exc: PeerError) -> None:
        self.counters[f"closed_{exc.reason}"] += 1
        log.warning("closing link to %s: %s", self._name(link.peer_key), exc.message)
        await self._close_ws(link.ws, CLOSE_BAD_FRAME, exc.reason)

    def _name(self, peer_key: bytes) -> str:
        return self.validators.get(peer_key) or peer_key.hex()[:16] + "…"

